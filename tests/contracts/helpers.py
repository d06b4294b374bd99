"""Shared helpers for the contract tests (and scripts/bench_gas.py).

Everything goes through `ledger_node.chain.Chain` against a real anvil: transactions are signed
with the well-known dev keys, reverts arrive as `RevertError(name, args_dict)`, events are
decoded from the receipts with the contracts' own ABIs.
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from ledger_node import DEV_KEYS
from ledger_node.chain import Chain, RevertError

ROOT = Path(__file__).resolve().parents[2]
OZ_TREE = Path(__file__).resolve().parent / "oz_tree.mjs"

GOV = DEV_KEYS[0]  # governance + regulator of the `deployment` fixture
BUSINESS_LICENCE, OPERATING_PERMIT, DATA_ASSET_CERTIFICATE = 1, 2, 3
NONE, VALID, REVOKED, SUSPENDED = 0, 1, 2, 3  # IAnchorRegistry.Status
ISSUER_NONE, ISSUER_ACTIVE, ISSUER_SUSPENDED = 0, 1, 2  # IIssuerRegistry.IssuerStatus
SECP256K1, SM2SM3 = 0, 1  # IIssuerRegistry.Suite
D_NONE, D_PENDING, D_APPROVED, D_REJECTED = 0, 1, 2, 3  # IDataFlowLedger.Decision
SECURITY_ASSESSMENT, STANDARD_CONTRACT, CERTIFICATION, GBA_STANDARD_CONTRACT, EXEMPTION = range(5)
GOVERNANCE_ROLE = Web3.keccak(text="GOVERNANCE_ROLE")
REGULATOR_ROLE = Web3.keccak(text="REGULATOR_ROLE")
DEFAULT_ADMIN_ROLE = b"\0" * 32
USCC = "91440101MA59TEST0X"  # 18 bytes (shape only; the contract checks the length)


def addr(key: str) -> str:
    return Account.from_key(key).address


def b32() -> bytes:
    return os.urandom(32)


def kk(text: str) -> bytes:
    """keccak256(utf8(text)) — subject hashes, participant ids, purpose hashes."""
    return bytes(Web3.keccak(text=text))


def jur(code: str) -> bytes:
    """An ISO 3166 code as bytes8, right-padded with zero bytes."""
    return code.encode("ascii").ljust(8, b"\0")


def h(v: bytes | str) -> str:
    return v if isinstance(v, str) else "0x" + bytes(v).hex()


@dataclass
class Contracts:
    chain: Chain
    ir: Any  # IssuerRegistry
    ar: Any  # AnchorRegistry
    fl: Any  # DataFlowLedger

    def tx(self, fn, key: str) -> dict:
        return self.chain.transact(fn, key)

    def call(self, fn) -> Any:
        return self.chain.call(fn)


def contracts(chain: Chain, deployment) -> Contracts:
    return Contracts(
        chain,
        chain.contract("IssuerRegistry", deployment.issuer_registry),
        chain.contract("AnchorRegistry", deployment.anchor_registry),
        chain.contract("DataFlowLedger", deployment.data_flow_ledger),
    )


def events(contract, name: str, receipt: dict) -> list[dict]:
    """The decoded `name` events of `contract` in `receipt`, as plain dicts of their args."""
    return [
        dict(ev["args"]) for ev in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    ]


def one_event(contract, name: str, receipt: dict) -> dict:
    evs = events(contract, name, receipt)
    assert len(evs) == 1, f"expected one {name} event, got {evs}"
    return evs[0]


@contextmanager
def reverts(name: str, args: dict | None = None):
    """Assert the block raises RevertError with this custom error name (and exactly these args)."""
    with pytest.raises(RevertError) as exc:
        yield exc
    assert exc.value.name == name, f"expected {name}, got {exc.value}"
    if args is not None:
        got, want = _norm(exc.value.args_dict), _norm(args)
        assert got == want, f"{name}: expected {want}, got {got}"


def _norm(args: dict) -> dict:
    """Compare addresses case-insensitively (eth_abi decodes them lower-case, web3 checksums them)
    and bytes as bytes (HexBytes vs bytes)."""
    out = {}
    for k, v in args.items():
        if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
            v = v.lower()
        elif isinstance(v, bytes):
            v = bytes(v)
        out[k] = v
    return out


def register_issuer(
    c: Contracts,
    key: str,
    types=(BUSINESS_LICENCE, OPERATING_PERMIT, DATA_ASSET_CERTIFICATE),
    *,
    name: str = "Guangzhou Market Regulation Bureau",
    uscc: str = USCC,
    suite: int = SECP256K1,
    sm2: bytes = b"",
    active_from: int = 0,
    active_until: int = 0,
    gov: str = GOV,
) -> tuple[int, dict]:
    receipt = c.tx(
        c.ir.functions.registerIssuer(
            addr(key), name, uscc, list(types), suite, sm2, active_from, active_until
        ),
        gov,
    )
    issuer_id = one_event(c.ir, "IssuerRegistered", receipt)["issuerId"]
    return issuer_id, receipt


def anchor(
    c: Contracts, key: str, root: bytes, credential_type: int = BUSINESS_LICENCE, count: int = 1
) -> dict:
    return c.tx(c.ar.functions.anchor(root, credential_type, count), key)


def oz_tree(values: list[tuple[bytes, bytes]], indices: list[int] | None = None) -> dict:
    """Root, leaf hashes and proofs from `@openzeppelin/merkle-tree` (node subprocess), as bytes."""
    payload = {"values": [[h(a), h(b)] for a, b in values]}
    if indices is not None:
        payload["indices"] = indices
    out = subprocess.run(
        ["node", str(OZ_TREE)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(out.stdout)
    return {
        "root": bytes.fromhex(data["root"][2:]),
        "leafHashes": {int(i): bytes.fromhex(v[2:]) for i, v in data["leafHashes"].items()},
        "proofs": {int(i): [bytes.fromhex(p[2:]) for p in ps] for i, ps in data["proofs"].items()},
    }


@dataclass
class Batch:
    """A batch of credentials `(targetHash, subjectHash)` with the OZ tree built over them."""

    values: list[tuple[bytes, bytes]]
    root: bytes
    leaves: dict[int, bytes]
    proofs: dict[int, list[bytes]]

    def cred(self, i: int) -> tuple[bytes, bytes, list[bytes]]:
        t, s = self.values[i]
        return t, s, self.proofs[i]


def make_batch(n: int = 8, subjects: list[bytes] | None = None, indices: list[int] | None = None) -> Batch:
    subjects = subjects or []
    values = [
        (b32(), subjects[i] if i < len(subjects) else kk(f"USCC-{os.urandom(4).hex()}")) for i in range(n)
    ]
    tree = oz_tree(values, indices)
    return Batch(values, tree["root"], tree["leafHashes"], tree["proofs"])
