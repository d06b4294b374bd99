#!/usr/bin/env python3
"""Measure the gas of every state-changing contract call on a fresh local anvil.

    python scripts/bench_gas.py          # markdown table
    python scripts/bench_gas.py --json   # one JSON object

Starts its own anvil (temporary data directory, free port), deploys the committed artifacts,
and reads `gasUsed` from each receipt. Merkle proofs come from `@openzeppelin/merkle-tree`
(tests/contracts/oz_tree.mjs), so revocation is measured with real proofs of depth ~10 (a batch
of 1,000) and ~14 (a batch of 10,000). An anchor's gas does not depend on the batch size (one
storage slot per root), so the per-credential cost falls with the batch.

The peer rows are published figures, not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OZ_TREE = ROOT / "tests" / "contracts" / "oz_tree.mjs"
PEERS = [
    {
        "operation": "OpenAttestation DocumentStore `issue` (one root)",
        "gas": 48_000,
        "perCredential": None,
        "note": "published figure, not measured",
    },
    {
        "operation": "EAS `attest` (one credential)",
        "gas": 200_000,
        "perCredential": 200_000,
        "note": "published figure, not measured",
    },
]


def oz_tree(values: list[tuple[bytes, bytes]]) -> tuple[bytes, list[list[bytes]]]:
    payload = {"values": [["0x" + a.hex(), "0x" + b.hex()] for a, b in values]}
    out = subprocess.run(
        ["node", str(OZ_TREE)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(out.stdout)
    proofs = [[bytes.fromhex(p[2:]) for p in data["proofs"][str(i)]] for i in range(len(values))]
    return bytes.fromhex(data["root"][2:]), proofs


def measure() -> list[dict]:
    from eth_account import Account
    from web3 import Web3

    from ledger_node import DEV_KEYS, AnvilNode, Chain, deploy
    from ledger_node.node import free_port

    rows: list[dict] = []

    def row(operation: str, receipt: dict, per: int | None = None, note: str = "") -> None:
        gas = int(receipt["gasUsed"])
        rows.append(
            {
                "operation": operation,
                "gas": gas,
                "perCredential": round(gas / per, 2) if per else None,
                "note": note,
            }
        )

    gov, issuer_key, exporter_key, importer_key = DEV_KEYS[0], DEV_KEYS[1], DEV_KEYS[5], DEV_KEYS[6]
    addr = lambda k: Account.from_key(k).address  # noqa: E731
    kk = lambda s: bytes(Web3.keccak(text=s))  # noqa: E731

    with tempfile.TemporaryDirectory(prefix="certledger-gas-") as tmp:
        node = AnvilNode(Path(tmp) / "node", port=free_port())
        node.start()
        try:
            chain = Chain(node.rpc_url)
            dep, _ = deploy(chain, gov, Path(tmp) / "deployment.json")
            ir = chain.contract("IssuerRegistry", dep.issuer_registry)
            ar = chain.contract("AnchorRegistry", dep.anchor_registry)
            fl = chain.contract("DataFlowLedger", dep.data_flow_ledger)
            tx = chain.transact

            row(
                "registerIssuer (3 credential types)",
                tx(
                    ir.functions.registerIssuer(
                        addr(issuer_key),
                        "Guangzhou Market Regulation Bureau",
                        "91440101MA59TEST0X",
                        [1, 2, 3],
                        0,
                        b"",
                        0,
                        0,
                    ),
                    gov,
                ),
            )
            row(
                "registerIssuer (1 credential type)",
                tx(
                    ir.functions.registerIssuer(
                        addr(DEV_KEYS[2]), "Guangdong Data Bureau", "11440000MB2C12345X", [3], 0, b"", 0, 0
                    ),
                    gov,
                ),
            )

            for n in (1, 100, 1_000, 10_000):
                row(
                    f"anchor (batch of {n:,})",
                    tx(ar.functions.anchor(os.urandom(32), 1, n), issuer_key),
                    per=n,
                    note="gas independent of the count",
                )

            # real batches with OZ proofs: 1,000 leaves (depth ~10), 10,000 leaves (depth ~14)
            exporter_id = kk("91440101MA5EXPORT1")
            batches = {}
            for n in (1_000, 10_000):
                values = [(os.urandom(32), exporter_id if i < 4 else os.urandom(32)) for i in range(n)]
                root, proofs = oz_tree(values)
                tx(ar.functions.anchor(root, 3, n), issuer_key)
                batches[n] = (root, values, proofs)

            for n in (1_000, 10_000):
                root, values, proofs = batches[n]
                i = max(range(4, n), key=lambda j: len(proofs[j]))
                t, s = values[i]
                row(
                    f"revokeCredential (proof depth {len(proofs[i])}, batch of {n:,})",
                    tx(ar.functions.revokeCredential(root, t, s, proofs[i], 1), issuer_key),
                )
            root, values, proofs = batches[10_000]
            i = max(range(5_000, 10_000), key=lambda j: len(proofs[j]))
            t, s = values[i]
            row(
                f"suspendCredential (proof depth {len(proofs[i])})",
                tx(ar.functions.suspendCredential(root, t, s, proofs[i], 7), issuer_key),
            )
            leaf = chain.call(ar.functions.leafHash(t, s))
            row("reinstateCredential", tx(ar.functions.reinstateCredential(root, leaf), issuer_key))

            batch_root = os.urandom(32)
            tx(ar.functions.anchor(batch_root, 1, 1_000), issuer_key)
            row("suspendBatch", tx(ar.functions.suspendBatch(batch_root, 4), issuer_key))
            row("reinstateBatch", tx(ar.functions.reinstateBatch(batch_root), issuer_key))
            row("revokeBatch", tx(ar.functions.revokeBatch(batch_root, 3), issuer_key))

            # data flows: the exporter holds leaves 0..3 of the 1,000 batch
            importer_id, third_id = kk("HK-BR-12345678"), kk("SG-UEN-201912345K")
            row(
                "registerParticipant",
                tx(fl.functions.registerParticipant(addr(exporter_key), exporter_id), gov),
            )
            tx(fl.functions.registerParticipant(addr(importer_key), importer_id), gov)
            root, values, proofs = batches[1_000]
            t, s = values[0]
            asset = (root, t, s, proofs[0])
            j = lambda c: c.encode().ljust(8, b"\0")  # noqa: E731
            decl = (
                0,
                importer_id,
                j("CN-GD"),
                j("HK"),
                3,
                True,
                1200,
                1 << 30,
                kk("credit risk assessment"),
                kk("payload"),
                kk("declaration"),
            )
            row(
                f"declareFlow (original, proof depth {len(proofs[0])})",
                tx(fl.functions.declareFlow(decl, asset), exporter_key),
            )
            row(
                "decideFlow (approve)",
                tx(fl.functions.decideFlow(1, 2, "GBA standard contract on file"), gov),
            )
            onward = (
                1,
                third_id,
                j("HK"),
                j("SG"),
                1,
                False,
                0,
                1 << 20,
                kk("analytics"),
                kk("payload2"),
                kk("declaration2"),
            )
            row(
                f"declareFlow (onward, proof depth {len(proofs[0])})",
                tx(fl.functions.declareFlow(onward, asset), importer_key),
            )
            row("decideFlow (reject)", tx(fl.functions.decideFlow(2, 3, "no security assessment"), gov))
        finally:
            node.stop()
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| operation | gas | gas per credential | note |", "|---|---:|---:|---|"]
    for r in rows + PEERS:
        per = "" if r["perCredential"] is None else f"{r['perCredential']:,.2f}"
        lines.append(f"| {r['operation']} | {r['gas']:,} | {per} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args(argv)
    from ledger_node.errors import LedgerNodeError

    try:
        rows = measure()
    except LedgerNodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"error: building the Merkle tree with node failed: {exc.stderr.strip()[:300]}", file=sys.stderr
        )
        return 1
    if args.json:
        print(json.dumps({"measured": rows, "peers": PEERS}, indent=2))
    else:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
