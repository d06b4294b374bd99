"""The committed artifacts can't drift from the sources, and the storage layout they record is the
one the deployed AnchorRegistry really uses (docs/FORMAT.md §4: the proof-carrying anchor relies
on it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from ledger_node import DEV_KEYS, load_artifact
from ledger_node.artifacts import ARTIFACT_NAMES, BUILD_DIR

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():
    PYTHON = Path(sys.executable)

# (name, bytes) from the low-order end of the slot up — docs/FORMAT.md §4
ANCHOR_LAYOUT = [
    ("issuerId", 4),
    ("keyVersion", 2),
    ("credentialType", 2),
    ("count", 4),
    ("blockNumber", 8),
    ("timestamp", 8),
    ("status", 1),
    ("reason", 1),
]


def test_recompile_is_byte_identical(tmp_path):
    if not (ROOT / "node_modules" / "solc").exists():
        pytest.skip("no solc-js in node_modules (run `npm ci`)")
    out = subprocess.run(
        [str(PYTHON), str(ROOT / "scripts" / "compile_contracts.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == sorted([*(f"{n}.json" for n in ARTIFACT_NAMES), "contracts.json"])
    for name in ARTIFACT_NAMES:
        assert (tmp_path / f"{name}.json").read_bytes() == (BUILD_DIR / f"{name}.json").read_bytes(), (
            f"{name} drifted from the sources"
        )
    # the verifier's package data: each contract's ABI and storage layout, from the same output
    assert (tmp_path / "contracts.json").read_bytes() == (
        ROOT / "verifier" / "_data" / "contracts.json"
    ).read_bytes()


def test_the_artifacts_are_package_data():
    """What the installed packages read is inside them (pyproject's package-data globs match it),
    not in the source tree around them."""
    from verifier._anchor_proof import CONTRACTS_DATA

    assert (
        BUILD_DIR == ROOT / "ledger_node" / "build"
        and CONTRACTS_DATA == ROOT / "verifier" / "_data" / "contracts.json"
    )
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"build/*.json"' in text and '"_data/*.json"' in text
    assert not (ROOT / "contracts" / "build").exists()


def test_artifacts_record_the_storage_layout():
    art = load_artifact("AnchorRegistry")
    entry = next(e for e in art.storage_layout["storage"] if e["label"] == "_anchors")
    assert entry["offset"] == 0
    anchor_type = art.storage_layout["types"][art.storage_layout["types"][entry["type"]]["value"]]
    assert anchor_type["numberOfBytes"] == "32"  # one slot per root
    members = [(m["label"], int(m["offset"]), int(m["slot"])) for m in anchor_type["members"]]
    offset = 0
    expected = []
    for name, size in ANCHOR_LAYOUT:
        expected.append((name, offset, 0))
        offset += size
    assert members == expected


@pytest.mark.chain
def test_anchor_slot_matches_anchor_of(chain, deployment):
    ir = chain.contract("IssuerRegistry", deployment.issuer_registry)
    ar = chain.contract("AnchorRegistry", deployment.anchor_registry)
    issuer_key = DEV_KEYS[1]
    issuer = Account.from_key(issuer_key).address
    chain.transact(
        ir.functions.registerIssuer(
            Account.from_key(DEV_KEYS[2]).address, "First", "91440101MA59TEST0X", [1], 0, b"", 0, 0
        ),
        DEV_KEYS[0],
    )
    chain.transact(
        ir.functions.registerIssuer(issuer, "Second", "91440101MA59TEST0X", [2, 3], 0, b"", 0, 0), DEV_KEYS[0]
    )
    new_key = DEV_KEYS[3]
    chain.transact(
        ir.functions.rotateKey(2, Account.from_key(new_key).address, b""), issuer_key
    )  # key version 2
    root = os.urandom(32)
    chain.transact(ar.functions.anchor(root, 3, 123_456), new_key)
    chain.transact(ar.functions.suspendBatch(root, 6), new_key)  # status 3, reason 6

    slot = load_artifact("AnchorRegistry").storage_slot("_anchors")
    key = Web3.keccak(root + slot.to_bytes(32, "big"))
    raw = int.from_bytes(bytes(chain.w3.eth.get_storage_at(deployment.anchor_registry, key)), "big")
    fields = {}
    for name, size in ANCHOR_LAYOUT:
        fields[name] = raw & ((1 << (8 * size)) - 1)
        raw >>= 8 * size
    assert raw == 0  # the top two bytes are unused

    record = chain.call(ar.functions.anchorOf(root))
    assert tuple(fields.values()) == tuple(record)
    assert (
        fields["issuerId"],
        fields["keyVersion"],
        fields["credentialType"],
        fields["count"],
        fields["status"],
        fields["reason"],
    ) == (2, 2, 3, 123_456, 3, 6)
    # an unanchored root's slot is empty
    other = Web3.keccak(os.urandom(32) + slot.to_bytes(32, "big"))
    assert int.from_bytes(bytes(chain.w3.eth.get_storage_at(deployment.anchor_registry, other)), "big") == 0
