#!/usr/bin/env python3
"""Trust bundles carrying sealed proofs (docs/FORMAT.md §16), validator mode, against a real anvil.

1. **Verification** — ``--count`` real business licences (scripts/bench_verifier.py's documents) issued
   as one batch, anchored on anvil, 1 % revoked with ``revokeCredential``; a bundle carrying one proof
   package (header sealed by the 4 development validators, every credential's anchor and status slot)
   and the issuer records (``issuerProof``) is opened against the pinned validators
   (:func:`verifier.open_bundle_proofs`, seal cache cleared
   each pass) and every credential verified (all checks; anchor and status only from the sealed state),
   one core, best of 3. Bundle mode (``bench_verifier.run_python``, operator-signed bundle, status
   lists) is measured in the same run for comparison.
2. **Size at scale** — ``--scale`` credentials in batches of ``--batch`` (real StandardMerkleTree roots
   over random pairs), all anchored, 1 % revoked on-chain; a bundle whose package proves the anchor
   slot of every batch and the status slot of every one of the credentials (``eth_getProof`` of every
   slot, pooled), its size, a holder package for one credential, and every credential's status proven
   from the pooled package (checked, not assumed).

    .venv/bin/python scripts/bench_proof_bundle.py [--count 10000] [--scale 1000000] [--batch 10000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from scripts._benchlib import fresh_chain  # noqa: E402

OPERATOR_KEY = b"\x42" * 32


def _size(obj: object) -> int:
    return len(json.dumps(obj, separators=(",", ":")))


def _send_many(chain, key: str, calls: list, gas: int = 300_000, chunk: int = 100) -> None:
    """Sign and send ``calls`` from ``key`` with consecutive nonces, ``chunk`` at a time (waiting for the
    chunk's last receipt: an automining anvil falls behind a flood of sends)."""
    from eth_account import Account

    acct = Account.from_key(key)
    w3 = chain.w3
    nonce = w3.eth.get_transaction_count(acct.address, "pending")
    chain_id, price = w3.eth.chain_id, w3.eth.gas_price * 2
    last = None
    for i, fn in enumerate(calls):
        tx = fn.build_transaction(
            {"from": acct.address, "nonce": nonce + i, "chainId": chain_id, "gas": gas, "gasPrice": price}
        )
        last = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
        if (i + 1) % chunk == 0:
            assert w3.eth.wait_for_transaction_receipt(last, timeout=600)["status"] == 1
    if last is not None:
        receipt = w3.eth.wait_for_transaction_receipt(last, timeout=600)
        assert receipt["status"] == 1


def _setup(chain, dep):
    from web3 import Web3

    from ledger_node import DEV_KEYS
    from verifier import eth_address

    ir = chain.contract("IssuerRegistry", dep["contracts"]["issuerRegistry"])
    ar = chain.contract("AnchorRegistry", dep["contracts"]["anchorRegistry"])
    issuer_key = bytes.fromhex(DEV_KEYS[1].removeprefix("0x"))
    return ir, ar, issuer_key, Web3.to_checksum_address(eth_address(issuer_key))


def verification(count: int) -> dict:
    import bench_verifier as bv

    from ledger_node import DEV_KEYS, Chain
    from ledger_node.node import DEV_VALIDATOR_KEYS
    from verifier import (
        RpcTrust,
        StandardMerkleTree,
        TrustBundle,
        ValidatorHeaderTrust,
        ValidatorPinnedTrust,
        ValidatorSet,
        Verifier,
        attach_bundle_proofs,
        build_trust_bundle,
        eth_address,
        fetch_issuer_proof,
        fetch_sealed_proof_package,
        leaf_hash,
        open_bundle_proofs,
        sign_trust_bundle,
    )
    from verifier._issuer_proof import ProvenIssuerTrust
    from verifier._qbft import _verify_cached

    with (
        tempfile.TemporaryDirectory(prefix="certledger-bundleproofs-") as tmp,
        fresh_chain(Path(tmp)) as (url, manifest),
    ):
        dep = json.loads(Path(manifest).read_text())
        chain = Chain(url)
        registry = dep["contracts"]["anchorRegistry"].lower()
        bv.CHAIN_ID, bv.REGISTRY = int(chain.w3.eth.chain_id), registry
        ir, ar, issuer_key, issuer_addr = _setup(chain, dep)
        name, uscc = "广东省市场监督管理局", bv._uscc(9_999_999)
        chain.transact(
            ir.functions.registerIssuer(issuer_addr, name, uscc, [1, 2, 3], 0, b"", 0, 0), DEV_KEYS[0]
        )
        _, _, _, root, copies, _ = bv._batch(count, "secp256k1", issuer_key, name, uscc, 0)
        receipt = chain.transact(ar.functions.anchor(root, 1, count), DEV_KEYS[1])
        for c in copies:
            c["proof"]["anchor"]["blockNumber"] = int(receipt["blockNumber"])
        pairs = [
            (bytes.fromhex(c["proof"]["targetHash"][2:]), bytes.fromhex(c["proof"]["subjectHash"][2:]))
            for c in copies
        ]
        tree = StandardMerkleTree.of(pairs)
        revoked = list(range(0, count, 100))  # 1 %
        _send_many(
            chain,
            DEV_KEYS[1],
            [
                ar.functions.revokeCredential(root, *pairs[i], tree.proof(tree.leaf_index(*pairs[i])), 2)
                for i in revoked
            ],
        )
        rpc = RpcTrust(url, manifest)
        block = chain.w3.eth.get_block(rpc.block_number)
        body = build_trust_bundle(
            chain_id=rpc.chain_id,
            contracts={k: v.lower() for k, v in dep["contracts"].items()},
            block={
                "number": rpc.block_number,
                "hash": "0x" + bytes(block["hash"]).hex(),
                "timestamp": rpc.block_timestamp,
                "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
            },
            issuers=[rpc.issuer(1)],
            anchors=[],
        )  # the operator's word: no anchors, nothing revoked
        package = fetch_sealed_proof_package(
            chain.w3,
            registry,
            [(root, leaf_hash(*p)) for p in pairs],
            validator_keys=DEV_VALIDATOR_KEYS,
            block=rpc.block_number,
        )
        issuer_proof = fetch_issuer_proof(chain.w3, dep["contracts"]["issuerRegistry"], [1], rpc.block_number)
        bundle = sign_trust_bundle(
            attach_bundle_proofs(body, package, issuer_proof=issuer_proof), OPERATOR_KEY
        )
        pinned = ValidatorSet(rpc.chain_id, tuple(eth_address(k) for k in DEV_VALIDATOR_KEYS))
        trust = TrustBundle.load(bundle)
        gc.collect()
        best = float("inf")
        for _ in range(3):
            _verify_cached.cache_clear()
            t0 = time.perf_counter()
            proofs = open_bundle_proofs(trust, pinned)  # issuer records proven too: the CLI's path
            verifier = Verifier(
                trust=ProvenIssuerTrust(ValidatorPinnedTrust(trust, proofs.validators), proofs.issuers),
                header_trust=ValidatorHeaderTrust(proofs.validators),
                proven_only=True,
                proof_package=proofs.package,
            )
            results = [verifier.verify(c, at=bv.AT) for c in copies]
            best = min(best, time.perf_counter() - t0)
        invalid = [i for i, r in enumerate(results) if not r.valid]
        assert invalid == revoked, (invalid[:5], results[invalid[0]].failed if invalid else None)
        assert all(results[i].check("status").reason.startswith("revoked on ") for i in revoked)
    bundle_mode, _ = bv.run_python(count, "secp256k1")
    return {
        "count": count,
        "revoked": len(revoked),
        "validatorRate": round(count / best),
        "bundleBytes": _size(bundle),
        "bundleModeRate": round(bundle_mode["verifyPerSecond"]),
    }


def scale(credentials: int, batch: int) -> dict:
    from ledger_node import DEV_KEYS, Chain
    from ledger_node.node import DEV_VALIDATOR_KEYS
    from verifier import (
        RpcTrust,
        StandardMerkleTree,
        TrustBundle,
        ValidatorSet,
        attach_bundle_proofs,
        build_trust_bundle,
        eth_address,
        fetch_sealed_proof_package,
        leaf_hash,
        open_bundle_proofs,
        sign_trust_bundle,
    )
    from verifier._proof_package import ProvenState
    from verifier._qbft import ValidatorHeaderTrust

    with (
        tempfile.TemporaryDirectory(prefix="certledger-bundleproofs-") as tmp,
        fresh_chain(Path(tmp)) as (url, manifest),
    ):
        dep = json.loads(Path(manifest).read_text())
        chain = Chain(url)
        registry = dep["contracts"]["anchorRegistry"].lower()
        ir, ar, issuer_key, issuer_addr = _setup(chain, dep)
        chain.transact(
            ir.functions.registerIssuer(issuer_addr, "Bench Bureau", "91440101MA59TEST0X", [1], 0, b"", 0, 0),
            DEV_KEYS[0],
        )
        t0 = time.perf_counter()
        creds: list[tuple[bytes, bytes]] = []
        anchors, revocations = [], []
        revoked_leaves = set()
        for _ in range(credentials // batch):
            pairs = [(os.urandom(32), os.urandom(32)) for _ in range(batch)]
            tree = StandardMerkleTree.of(pairs)
            anchors.append(ar.functions.anchor(tree.root, 1, batch))
            for i in range(0, batch, 100):  # 1 %
                revocations.append(
                    ar.functions.revokeCredential(
                        tree.root, *pairs[i], tree.proof(tree.leaf_index(*pairs[i])), 2
                    )
                )
                revoked_leaves.add((tree.root, leaf_hash(*pairs[i])))
            creds += [(tree.root, leaf_hash(*p)) for p in pairs]
        _send_many(chain, DEV_KEYS[1], anchors)
        _send_many(chain, DEV_KEYS[1], revocations)
        setup = time.perf_counter() - t0
        rpc = RpcTrust(url, manifest)
        block = chain.w3.eth.get_block(rpc.block_number)
        t0 = time.perf_counter()
        package = fetch_sealed_proof_package(
            chain.w3, registry, creds, validator_keys=DEV_VALIDATOR_KEYS, block=rpc.block_number
        )
        fetch = time.perf_counter() - t0
        roots = sorted({r for r, _ in creds})
        anchor_records = [rpc.anchor(r) for r in roots]
        body = build_trust_bundle(
            chain_id=rpc.chain_id,
            contracts={k: v.lower() for k, v in dep["contracts"].items()},
            block={
                "number": rpc.block_number,
                "hash": "0x" + bytes(block["hash"]).hex(),
                "timestamp": rpc.block_timestamp,
                "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
            },
            issuers=[rpc.issuer(1)],
            anchors=anchor_records,
            revoked={
                i: {"reason": 2, "timestamp": rpc.block_timestamp, "by": "Bench Bureau"}
                for i in range(0, credentials, 100)
            },
            status_list_bits=max(131_072, credentials),
        )
        plain = sign_trust_bundle(body, OPERATOR_KEY)
        bundle = sign_trust_bundle(attach_bundle_proofs(body, package), OPERATOR_KEY)
        holder = fetch_sealed_proof_package(
            chain.w3, registry, [creds[1]], validator_keys=DEV_VALIDATOR_KEYS, block=rpc.block_number
        )
        # every credential's status proven from the pooled package (not assumed)
        pinned = ValidatorSet(rpc.chain_id, tuple(eth_address(k) for k in DEV_VALIDATOR_KEYS))
        proofs = open_bundle_proofs(TrustBundle.load(bundle), pinned)
        state = ProvenState(
            proofs.package,
            chain_id=rpc.chain_id,
            anchor_registry=registry,
            header_trust=ValidatorHeaderTrust(pinned),
        )
        t0 = time.perf_counter()
        wrong = sum((state.status(r, leaf).status == 2) != ((r, leaf) in revoked_leaves) for r, leaf in creds)
        anchored = sum(state.anchor(r) is not None for r in roots)
        walk = time.perf_counter() - t0
        assert wrong == 0 and anchored == len(roots)
        return {
            "credentials": credentials,
            "batches": len(roots),
            "revoked": len(revocations),
            "setupSeconds": round(setup),
            "fetchSeconds": round(fetch),
            "bundleBytes": _size(bundle),
            "bundleWithoutProofsBytes": _size(plain),
            "packageBytes": _size(package),
            "storageNodes": len(package["storageProof"]),
            "accountProofNodes": len(package["accountProof"]),
            "holderPackageBytes": _size(holder),
            "provenPerSecond": round((len(creds) + len(roots)) / walk),
        }


def markdown(r: dict) -> str:
    out = []
    if "verification" in r:
        v = r["verification"]
        out += [
            f"| validator mode: a bundle's sealed package, {v['count']:,} credentials each with its own status "
            f"proof ({v['revoked']} revoked), one core | **{v['validatorRate']:,}/s** |",
            f"| bundle mode (operator-signed status lists), same run | {v['bundleModeRate']:,}/s |",
            f"| that bundle with proofs ({v['count']:,} credentials) | {v['bundleBytes']:,} bytes |",
        ]
    if "scale" in r:
        s = r["scale"]
        out += [
            f"| bundle with proofs for {s['credentials']:,} credentials ({s['batches']} batches, {s['revoked']:,} "
            f"revoked) | **{s['bundleBytes']:,} bytes** (package {s['packageBytes']:,}: {s['storageNodes']:,} "
            f"storage nodes, {s['accountProofNodes']} account nodes; the same bundle without proofs "
            f"{s['bundleWithoutProofsBytes']:,}) |",
            f"| per credential in that bundle | {s['packageBytes'] / s['credentials']:.2f} bytes |",
            f"| a holder's package for one credential, alone | {s['holderPackageBytes']:,} bytes |",
            f"| slots proven from the pooled package (all {s['credentials']:,} status + {s['batches']} anchors, "
            f"checked) | {s['provenPerSecond']:,}/s |",
            f"| chain set-up / eth_getProof of every slot | {s['setupSeconds']} s / {s['fetchSeconds']} s |",
        ]
    return "\n".join(["| measure | value |", "|---|---:|", *out])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--count", type=int, default=10_000, help="credentials verified in validator mode (0: skip)"
    )
    ap.add_argument(
        "--scale", type=int, default=1_000_000, help="credentials in the size measurement (0: skip)"
    )
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import bench_verifier

    bench_verifier._pin()
    r: dict = {}
    if a.count:
        r["verification"] = verification(a.count)
    if a.scale:
        r["scale"] = scale(a.scale, a.batch)
    print(json.dumps(r, indent=1) if a.json else markdown(r))


if __name__ == "__main__":
    main()
