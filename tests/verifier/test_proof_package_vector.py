"""The worked proof package of docs/FORMAT.md §12 (tests/assets/proof_package_vector.json, captured
from anvil's eth_getProof), checked offline: slots, proven anchor and status, and the FORMAT text."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from verifier import OperatorHeaderTrust, ProvenState, anchor_storage_key, keccak256, status_storage_key
from verifier.errors import InvalidProofPackage

ROOT = Path(__file__).resolve().parents[2]
VECTOR = json.loads((ROOT / "tests" / "assets" / "proof_package_vector.json").read_text("utf-8"))
FORMAT = (ROOT / "docs" / "FORMAT.md").read_text("utf-8")


def _state(package):
    return ProvenState(
        package,
        chain_id=VECTOR["chainId"],
        anchor_registry=VECTOR["anchorRegistry"],
        header_trust=OperatorHeaderTrust(lambda a: a == VECTOR["operator"]),
    )


def _b(h: str) -> bytes:
    return bytes.fromhex(h[2:])


@pytest.mark.parametrize("cred", VECTOR["credentials"], ids=lambda c: c["expected"])
def test_the_vector_proves_its_anchor_and_status(cred):
    root, leaf = _b(VECTOR["root"]), _b(cred["leaf"])
    assert anchor_storage_key(root) == _b(cred["anchorSlot"])
    assert status_storage_key(root, leaf) == _b(cred["statusSlot"])
    state = _state(cred["package"])
    anchor = state.anchor(root)
    assert anchor is not None
    assert (
        anchor.issuer_id,
        anchor.key_version,
        anchor.credential_type,
        anchor.count,
        anchor.block_number,
        anchor.status,
    ) == (1, 1, 1, 3, VECTOR["anchoredBlock"], 1)
    status = state.status(root, leaf)
    if cred["expected"] == "revoked":
        assert (status.status, status.reason, status.timestamp) == (2, 2, VECTOR["revokedAt"])
    else:
        assert status.status == 1
    assert state.header.number >= VECTOR["revokedBlock"]


def test_format_md_states_the_vector():
    revoked = VECTOR["credentials"][0]
    for value in (
        VECTOR["root"],
        revoked["leaf"],
        revoked["anchorSlot"],
        revoked["statusSlot"],
        "0x" + keccak256(_b(revoked["statusSlot"])).hex(),
        "0x" + keccak256(_b(VECTOR["root"]) + (4).to_bytes(32, "big")).hex(),
    ):
        assert value in FORMAT, value
    assert "tests/assets/proof_package_vector.json" in FORMAT


def test_every_node_of_the_vector_matters():
    cred = VECTOR["credentials"][0]
    root, leaf = _b(VECTOR["root"]), _b(cred["leaf"])
    for member in ("accountProof", "storageProof"):
        for i in range(len(cred["package"][member])):
            package = copy.deepcopy(cred["package"])
            node = package[member][i]
            package[member][i] = node[:-2] + ("00" if node[-2:] != "00" else "01")
            with pytest.raises(InvalidProofPackage, match=f"^{member}"):
                state = _state(package)
                state.anchor(root)
                state.status(root, leaf)
