#!/usr/bin/env python3
"""Produce tests/assets/proof_package_vector.json: the worked proof package of docs/FORMAT.md §12.

    .venv/bin/python tests/assets/make_proof_package_vector.py > tests/assets/proof_package_vector.json

Captured once from a real anvil (so block hashes and times differ on every run; the committed file
is the vector): a fresh chain, the committed contracts deployed, one issuer registered, the §10
three-credential batch anchored, its first credential (the §10 licence) revoked with reason 2
(superseded), and two packages from ``eth_getProof`` at the latest block, headers signed by the
operator key 0x42…42: one for the revoked licence, one for the batch's second credential (valid,
an exclusion proof). tests/verifier/test_proof_package_vector.py checks the file offline.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts._benchlib import fresh_chain  # noqa: E402
from verifier import anchor_storage_key, eth_address, fetch_proof_package, leaf_hash, status_storage_key  # noqa: E402

OPERATOR_KEY = b"\x42" * 32


def main() -> None:
    from web3 import Web3

    from ledger_node import DEV_KEYS, Chain

    vectors = json.loads((ROOT / "tests" / "assets" / "format_vectors.json").read_text("utf-8"))
    batch = vectors["batch"]
    pairs = [(bytes.fromhex(t[2:]), bytes.fromhex(s[2:])) for t, s in batch["pairs"]]
    root = bytes.fromhex(batch["root"][2:])
    proof0 = [bytes.fromhex(x[2:]) for x in batch["proof0"]]
    with tempfile.TemporaryDirectory() as tmp, fresh_chain(Path(tmp)) as (url, manifest):
        dep = json.loads(Path(manifest).read_text())
        chain = Chain(url)
        ir = chain.contract("IssuerRegistry", dep["contracts"]["issuerRegistry"])
        ar = chain.contract("AnchorRegistry", dep["contracts"]["anchorRegistry"])
        gov, issuer_key = DEV_KEYS[0], DEV_KEYS[1]
        issuer = Web3.to_checksum_address(eth_address(bytes.fromhex(issuer_key.removeprefix("0x"))))
        chain.transact(
            ir.functions.registerIssuer(
                issuer, "广东省市场监督管理局", "11440000MB2C12345X", [1], 0, b"", 0, 0
            ),
            gov,
        )
        anchored = chain.transact(ar.functions.anchor(root, 1, 3), issuer_key)
        revoked = chain.transact(ar.functions.revokeCredential(root, *pairs[0], proof0, 2), issuer_key)
        registry = dep["contracts"]["anchorRegistry"].lower()
        leaves = [leaf_hash(*p) for p in pairs[:2]]
        block = int(chain.w3.eth.block_number)
        out = {
            "source": "captured from anvil by tests/assets/make_proof_package_vector.py",
            "chainId": int(chain.w3.eth.chain_id),
            "anchorRegistry": registry,
            "operator": eth_address(OPERATOR_KEY),
            "root": batch["root"],
            "anchoredBlock": int(anchored["blockNumber"]),
            "revokedBlock": int(revoked["blockNumber"]),
            "revokedAt": int(chain.w3.eth.get_block(int(revoked["blockNumber"]))["timestamp"]),
            "credentials": [],
        }
        for leaf, state in zip(leaves, ("revoked", "valid"), strict=True):
            out["credentials"].append(
                {
                    "leaf": "0x" + leaf.hex(),
                    "expected": state,
                    "anchorSlot": "0x" + anchor_storage_key(root).hex(),
                    "statusSlot": "0x" + status_storage_key(root, leaf).hex(),
                    "package": fetch_proof_package(
                        chain.w3, registry, [(root, leaf)], operator_key=OPERATOR_KEY, block=block
                    ),
                }
            )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
