#!/usr/bin/env python3
"""Gas of the PledgeRegistry calls (issue 22) on a fresh local anvil.

    python scripts/bench_pledge_gas.py          # markdown table
    python scripts/bench_pledge_gas.py --json   # one JSON object

Starts its own anvil (temporary data directory, free port), deploys the committed PledgeRegistry
artifact and reads `gasUsed` from each receipt. Consent signatures are EIP-712 typed data signed
with eth_account, so `pledge` pays for two `ecrecover`s; a first pledge of an asset writes three
fresh storage slots (the asset slot is updated, the pledge's two slots are new), a pledge after a
release rewrites them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAR = 2**63 - 1
PLEDGE_TYPES = {
    "Pledge": [
        {"name": "assetKey", "type": "bytes32"},
        {"name": "rank", "type": "uint8"},
        {"name": "holder", "type": "address"},
        {"name": "lender", "type": "address"},
        {"name": "loanRef", "type": "bytes32"},
        {"name": "nonce", "type": "uint32"},
        {"name": "deadline", "type": "uint64"},
    ]
}
RELEASE_TYPES = {
    "Release": [
        {"name": "assetKey", "type": "bytes32"},
        {"name": "rank", "type": "uint8"},
        {"name": "lender", "type": "address"},
        {"name": "nonce", "type": "uint32"},
    ]
}


def measure() -> list[dict]:
    from eth_account import Account
    from web3 import Web3

    from ledger_node import DEV_KEYS, AnvilNode, Chain
    from ledger_node.node import free_port

    gov, holder, bank_a, bank_b, court = DEV_KEYS[0], DEV_KEYS[1], DEV_KEYS[2], DEV_KEYS[3], DEV_KEYS[4]
    addr = lambda k: Account.from_key(k).address  # noqa: E731
    kk = lambda s: bytes(Web3.keccak(text=s))  # noqa: E731
    rows: list[dict] = []

    def row(operation: str, receipt: dict, note: str = "") -> None:
        rows.append({"operation": operation, "gas": int(receipt["gasUsed"]), "note": note})

    with tempfile.TemporaryDirectory(prefix="certledger-pledge-gas-") as tmp:
        node = AnvilNode(Path(tmp) / "node", port=free_port())
        node.start()
        try:
            chain = Chain(node.rpc_url)
            tx = chain.transact
            address, _ = chain.deploy_contract("PledgeRegistry", gov, addr(gov))
            reg = chain.contract("PledgeRegistry", address)
            tx(reg.functions.grantRole(kk("COURT_ROLE"), addr(court)), gov)
            domain = {
                "name": "certledger-pledges",
                "version": "1",
                "chainId": chain.w3.eth.chain_id,
                "verifyingContract": address,
            }

            def sign(key, asset, rank, lender, loan):
                a = reg.functions.assetOf(asset).call()
                msg = {
                    "assetKey": asset,
                    "rank": rank,
                    "holder": a[0],
                    "lender": addr(lender),
                    "loanRef": loan,
                    "nonce": a[6],
                    "deadline": FAR,
                }
                return bytes(Account.sign_typed_data(key, domain, PLEDGE_TYPES, msg).signature)

            def pledge(asset, lender, rank=1):
                loan = os.urandom(32)
                return tx(
                    reg.functions.pledge(
                        asset,
                        rank,
                        addr(lender),
                        loan,
                        FAR,
                        sign(holder, asset, rank, lender, loan),
                        sign(lender, asset, rank, lender, loan),
                    ),
                    gov,
                )

            asset = kk("did:certledger:31337:issuer:3/DA-2026-0001")
            row(
                "registerAsset (first registration, number assigned)",
                tx(reg.functions.registerAsset(asset, addr(holder), 1), gov),
            )
            row(
                "pledge (holder + lender EIP-712 signatures, first pledge)",
                pledge(asset, bank_a),
                "relayed by the registry; 2 ecrecover",
            )
            row("release (sent by the lender)", tx(reg.functions.release(asset, 1, b""), bank_a))
            row("pledge (after a release: slots rewritten)", pledge(asset, bank_b))
            nonce = reg.functions.assetOf(asset).call()[6]
            sig = bytes(
                Account.sign_typed_data(
                    bank_b,
                    domain,
                    RELEASE_TYPES,
                    {"assetKey": asset, "rank": 1, "lender": addr(bank_b), "nonce": nonce},
                ).signature
            )
            row(
                "release (lender's EIP-712 signature, relayed)", tx(reg.functions.release(asset, 1, sig), gov)
            )
            pledge(asset, bank_a)
            row("cancelPledge (court)", tx(reg.functions.cancelPledge(asset, 1, 2), court))
            loan = kk("SM2")
            row(
                "pledgeAttested (SM2 holder, consent digest)",
                tx(
                    reg.functions.pledgeAttested(
                        asset, 1, addr(bank_a), loan, FAR, sign(bank_a, asset, 1, bank_a, loan), kk("consent")
                    ),
                    gov,
                ),
            )
            tx(reg.functions.release(asset, 1, b""), bank_a)
            row("openDispute", tx(reg.functions.openDispute(asset, kk("case")), court))
            row("resolveDispute", tx(reg.functions.resolveDispute(asset, kk("case")), court))
            row(
                "transferAsset",
                tx(reg.functions.transferAsset(asset, addr(DEV_KEYS[5]), os.urandom(32)), gov),
            )
            row("changeAsset", tx(reg.functions.changeAsset(asset, kk("v2")), gov))
            row("cancelAsset", tx(reg.functions.cancelAsset(asset, 1), gov))
            ranked = kk("did:certledger:31337:issuer:3/DA-2026-0002")
            tx(reg.functions.registerAsset(ranked, addr(holder), 2), gov)
            pledge(ranked, bank_a, 1)
            row("pledge (rank 2 of a ranked asset)", pledge(ranked, bank_b, 2))
        finally:
            node.stop()
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| operation | gas | note |", "|---|---:|---|"]
    lines += [f"| {r['operation']} | {r['gas']:,} | {r['note']} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = measure()
    print(json.dumps({"rows": rows}, indent=2) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
