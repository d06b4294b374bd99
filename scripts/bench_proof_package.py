#!/usr/bin/env python3
"""Proof packages (docs/FORMAT.md §12): verification rate and sizes, against a real anvil.

Starts its own anvil, deploys the committed contracts, registers an issuer, anchors ``--batches``
batches of ``--count`` credentials each (real StandardMerkleTree roots over random pairs) and
revokes ``--revoked`` of them per batch with ``revokeCredential`` (real Merkle proofs), so the
AnchorRegistry's storage trie holds anchors and status slots. Then, from ``eth_getProof``:

* **bundle-wide package** for every credential (one header + account proof, the storage-trie
  nodes of all 2 × N slot paths pooled once): its size, and the rate of proving each
  credential's anchor + status from it (:class:`ProvenState`, one core);
* **holder packages** for ``--holders`` credentials, one each: size per credential, and the rate
  of checking each on its own (header signature, account proof, both slots) — nothing shared;
* the pooled size for growing subsets of credentials, to extrapolate to 1,000,000.

Printed as a markdown fragment for docs/BENCHMARKS.md (``--json`` for one JSON object).

    .venv/bin/python scripts/bench_proof_package.py [--batches 10] [--count 1000] [--revoked 10] [--json]
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

from scripts._benchlib import fresh_chain  # noqa: E402
from verifier import StandardMerkleTree, eth_address, leaf_hash  # noqa: E402
from verifier._proof_package import OperatorHeaderTrust, ProvenState, fetch_proof_package  # noqa: E402

OPERATOR_KEY = b"\x42" * 32


def _size(obj: object) -> int:
    return len(json.dumps(obj, separators=(",", ":")))


def run(batches: int, count: int, revoked: int, holders: int) -> dict:
    from web3 import Web3

    from ledger_node import DEV_KEYS, Chain

    with (
        tempfile.TemporaryDirectory(prefix="certledger-proofpkg-") as tmp,
        fresh_chain(Path(tmp)) as (url, manifest),
    ):
        dep = json.loads(Path(manifest).read_text())
        chain = Chain(url)
        w3 = chain.w3
        contracts = dep["contracts"]
        ir = chain.contract("IssuerRegistry", contracts["issuerRegistry"])
        ar = chain.contract("AnchorRegistry", contracts["anchorRegistry"])
        gov, issuer_key = DEV_KEYS[0], DEV_KEYS[1]
        issuer_addr = Web3.to_checksum_address(eth_address(bytes.fromhex(issuer_key.removeprefix("0x"))))
        chain.transact(
            ir.functions.registerIssuer(issuer_addr, "Bench Bureau", "91440101MA59TEST0X", [1], 0, b"", 0, 0),
            gov,
        )
        creds: list[tuple[bytes, bytes]] = []
        for _ in range(batches):
            pairs = [(os.urandom(32), os.urandom(32)) for _ in range(count)]
            tree = StandardMerkleTree.of(pairs)
            chain.transact(ar.functions.anchor(tree.root, 1, count), issuer_key)
            for i in range(revoked):
                t, s = pairs[i * (count // max(revoked, 1))]
                j = tree.leaf_index(t, s)
                chain.transact(ar.functions.revokeCredential(tree.root, t, s, tree.proof(j), 2), issuer_key)
            creds += [(tree.root, leaf_hash(t, s)) for t, s in pairs]
        registry = contracts["anchorRegistry"].lower()
        chain_id = int(w3.eth.chain_id)
        block = int(w3.eth.block_number)
        trust = OperatorHeaderTrust(lambda a: a == eth_address(OPERATOR_KEY))

        t0 = time.perf_counter()
        package = fetch_proof_package(w3, registry, creds, operator_key=OPERATOR_KEY, block=block)
        fetch_s = time.perf_counter() - t0

        # 1. bundle-wide: one package, every credential's anchor + status walked through the pool
        best = float("inf")
        statuses: dict[int, int] = {}
        for _ in range(3):
            gc.collect()
            t0 = time.perf_counter()
            state = ProvenState(package, chain_id=chain_id, anchor_registry=registry, header_trust=trust)
            statuses = {}
            for root, leaf in creds:
                assert state.anchor(root) is not None
                st = state.status(root, leaf).status
                statuses[st] = statuses.get(st, 0) + 1
            best = min(best, time.perf_counter() - t0)
        assert statuses.get(2, 0) == batches * revoked, statuses

        # 2. holder packages: each credential with its own package, checked on its own
        step = max(1, len(creds) // holders)
        sample = creds[::step][:holders]
        singles = [
            fetch_proof_package(w3, registry, [c], operator_key=OPERATOR_KEY, block=block) for c in sample
        ]
        gc.collect()
        t0 = time.perf_counter()
        for (root, leaf), pkg in zip(sample, singles, strict=True):
            s = ProvenState(pkg, chain_id=chain_id, anchor_registry=registry, header_trust=trust)
            s.anchor(root)
            s.status(root, leaf)
        holder_s = time.perf_counter() - t0
        verified: dict = {}  # a bank verifying many holder copies proven at the same block
        gc.collect()
        t0 = time.perf_counter()
        for (root, leaf), pkg in zip(sample, singles, strict=True):
            s = ProvenState(
                pkg, chain_id=chain_id, anchor_registry=registry, header_trust=trust, verified=verified
            )
            s.anchor(root)
            s.status(root, leaf)
        holder_cached_s = time.perf_counter() - t0
        single_sizes = sorted(_size(p) for p in singles)

        # 3. pooled size for growing subsets (the same header and account proof each time)
        growth = []
        n = max(100, len(creds) // 100)
        while True:
            n = min(n, len(creds))
            sub = (
                package
                if n == len(creds)
                else fetch_proof_package(
                    w3, registry, creds[:: len(creds) // n][:n], operator_key=OPERATOR_KEY, block=block
                )
            )
            growth.append({"credentials": n, "bytes": _size(sub), "storageNodes": len(sub["storageProof"])})
            if n == len(creds):
                break
            n *= 10
        trie_nodes = len(package["storageProof"])
        return {
            "credentials": len(creds),
            "batches": batches,
            "revoked": batches * revoked,
            "block": block,
            "fetchSeconds": round(fetch_s, 2),
            "bundleRate": round(len(creds) / best),
            "bundleBytes": _size(package),
            "bundleStorageNodes": trie_nodes,
            "accountProofNodes": len(package["accountProof"]),
            "holderRate": round(len(sample) / holder_s),
            "holders": len(sample),
            "holderCachedRate": round(len(sample) / holder_cached_s),
            "holderBytesMedian": single_sizes[len(single_sizes) // 2],
            "holderBytesMax": single_sizes[-1],
            "growth": growth,
        }


def full_verify(count: int) -> dict:
    """``count`` real business licences (scripts/bench_verifier.py's documents) issued as one batch,
    anchored on anvil, some revoked; then ``Verifier.verify`` of every holder copy with one
    bundle-wide package (every check, anchor and status from the package), on one core."""
    from web3 import Web3

    import scripts.bench_verifier as bv
    from ledger_node import DEV_KEYS, Chain
    from verifier import RpcTrust, TrustBundle, Verifier, build_trust_bundle, sign_trust_bundle

    with (
        tempfile.TemporaryDirectory(prefix="certledger-proofpkg-") as tmp,
        fresh_chain(Path(tmp)) as (url, manifest),
    ):
        dep = json.loads(Path(manifest).read_text())
        chain = Chain(url)
        registry = dep["contracts"]["anchorRegistry"].lower()
        bv.CHAIN_ID, bv.REGISTRY = int(chain.w3.eth.chain_id), registry
        ir = chain.contract("IssuerRegistry", dep["contracts"]["issuerRegistry"])
        ar = chain.contract("AnchorRegistry", registry)
        issuer_key = bytes.fromhex(DEV_KEYS[1].removeprefix("0x"))
        name, uscc = "广东省市场监督管理局", bv._uscc(9_999_999)
        chain.transact(
            ir.functions.registerIssuer(
                Web3.to_checksum_address(eth_address(issuer_key)), name, uscc, [1, 2, 3], 0, b"", 0, 0
            ),
            DEV_KEYS[0],
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
        for i in revoked:
            j = tree.leaf_index(*pairs[i])
            chain.transact(ar.functions.revokeCredential(root, *pairs[i], tree.proof(j), 2), DEV_KEYS[1])
        rpc = RpcTrust(url, manifest)
        block = chain.w3.eth.get_block(rpc.block_number)
        bundle = build_trust_bundle(
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
        )  # no anchors, no status lists: all from the package
        trust = TrustBundle.load(
            sign_trust_bundle(bundle, OPERATOR_KEY), operators=[eth_address(OPERATOR_KEY)]
        )
        package = fetch_proof_package(
            chain.w3,
            registry,
            [(root, leaf_hash(*p)) for p in pairs],
            operator_key=OPERATOR_KEY,
            block=rpc.block_number,
        )
        gc.collect()
        best = float("inf")
        for _ in range(3):
            verifier = Verifier(trust=trust, proof_package=package)
            t0 = time.perf_counter()
            results = [verifier.verify(c, at=bv.AT) for c in copies]
            best = min(best, time.perf_counter() - t0)
        invalid = [i for i, r in enumerate(results) if not r.valid]
        assert invalid == revoked, (invalid[:5], results[invalid[0]].failed if invalid else None)
        return {
            "count": count,
            "revoked": len(revoked),
            "rate": round(count / best),
            "packageBytes": _size(package),
        }


def model(credentials: int, batches: int, revoked: int, lookups: int = 100_000) -> dict:
    """The AnchorRegistry storage trie modelled locally with the same ``trie`` package: ``batches``
    anchor slots and ``revoked`` status slots at random keys (slot keys are keccak outputs, so
    random keys have the same trie shape), then the nodes that a package proving every one of
    ``credentials`` status slots (mostly exclusion proofs) and every anchor must carry. At most
    ``lookups`` of the credentials are walked (a package can never hold more than the whole trie,
    which is reported too, so beyond that the walked count is a lower bound and the trie an upper
    bound)."""
    import rlp
    from trie import HexaryTrie

    db: dict[bytes, bytes] = {}
    t = HexaryTrie(db)
    set_keys = [os.urandom(32) for _ in range(batches + revoked)]
    with t.squash_changes() as batch:
        for k in set_keys:
            batch[k] = rlp.encode((1 << 230 | int.from_bytes(os.urandom(20), "big")).to_bytes(30, "big"))
    whole = sum(len(n) for n in db.values())
    touched: set[bytes] = set()
    walked = min(credentials, lookups) + batches
    for i in range(walked):
        key = set_keys[i] if i < len(set_keys) else os.urandom(32)
        for node in t.get_proof(key):
            touched.add(rlp.encode(node))
    return {
        "credentials": credentials,
        "batches": batches,
        "revoked": revoked,
        "trieNodes": len(db),
        "trieBytes": whole,
        "trieJsonBytes": sum(2 * len(n) + 5 for n in db.values()),
        "walked": walked - batches,
        "packageNodes": len(touched),
        "packageJsonBytes": sum(2 * len(n) + 5 for n in touched),
    }


def markdown(r: dict) -> str:
    lines = [
        f"Chain state: {r['batches']} batches, {r['credentials']:,} credentials, {r['revoked']} revoked "
        f"(`revokeCredential` with real Merkle proofs), block {r['block']}; packages from anvil's `eth_getProof` "
        f"(fetching the bundle-wide one: {r['fetchSeconds']} s).",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| bundle-wide package: anchor + status proven per credential, one core | **{r['bundleRate']:,}/s** |",
        f"| bundle-wide package for {r['credentials']:,} credentials | {r['bundleBytes']:,} bytes "
        f"({r['bundleStorageNodes']:,} storage-trie nodes, {r['accountProofNodes']} account-proof nodes) |",
        f"| holder package (one credential, alone), median / max | {r['holderBytesMedian']:,} / "
        f"{r['holderBytesMax']:,} bytes |",
        f"| holder packages checked one by one (nothing shared), one core | {r['holderRate']:,}/s "
        f"({r['holders']:,} packages) |",
        f"| holder packages of one block, header + account proof checked once (`Verifier` cache) | "
        f"{r['holderCachedRate']:,}/s |",
        "",
        "| credentials in the package | bytes | storage-trie nodes |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {g['credentials']:,} | {g['bytes']:,} | {g['storageNodes']:,} |" for g in r["growth"]]
    if r.get("full"):
        f = r["full"]
        lines += [
            "",
            f"Full `Verifier.verify` (all eight checks) of {f['count']:,} real business licences of one "
            f"anchored batch, {f['revoked']} revoked on-chain, with one bundle-wide package "
            f"({f['packageBytes']:,} bytes) as the only source of anchor and status, one core: "
            f"**{f['rate']:,}/s** (every revoked one refused, every other valid).",
        ]
    if r.get("models"):
        lines += [
            "",
            "Storage trie modelled with the `trie` package (random slot keys), nodes a package covering every "
            "credential must carry (storage pool only; add the header and account proof above):",
            "",
            "| credentials | batches | revoked (slots set) | walked | package nodes | package JSON bytes | "
            "whole trie: nodes / JSON bytes (upper bound) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {m['credentials']:,} | {m['batches']:,} | {m['revoked']:,} | {m['walked']:,} | "
            f"{m['packageNodes']:,} | {m['packageJsonBytes']:,} | {m['trieNodes']:,} / {m['trieJsonBytes']:,} |"
            for m in r["models"]
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--revoked", type=int, default=10, help="revoked credentials per batch")
    ap.add_argument(
        "--holders", type=int, default=1000, help="holder packages fetched and checked one by one"
    )
    ap.add_argument(
        "--model",
        type=int,
        default=0,
        help="also model a bundle covering this many credentials (batches of 10,000, 1%% revoked)",
    )
    ap.add_argument(
        "--full", type=int, default=10_000, help="credentials for the full-verify measure (0: skip)"
    )
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a.batches, a.count, a.revoked, a.holders)
    # the model at the measured scale first (to compare with the real package), then the asked one
    if a.full:
        r["full"] = full_verify(a.full)
    r["models"] = [model(r["credentials"], a.batches, r["revoked"])]
    if a.model:
        r["models"].append(model(a.model, max(1, a.model // 10_000), a.model // 100))
    print(json.dumps(r) if a.json else markdown(r))


if __name__ == "__main__":
    main()
