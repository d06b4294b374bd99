"""Proof packages (docs/FORMAT.md §12) against a real anvil's ``eth_getProof``: a credential's anchor
and status proven from chain state; every single-field change refused, the failing check named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.support.contracts import ISSUER_KEY, OTHER_KEY
from tests.support.factory import AT, World
from tests.support.proofs import OPERATOR_KEY, _b, _leaf, _trust
from verifier import (
    RpcTrust,
    Verifier,
    build_trust_bundle,
    eth_address,
    verify,
)
from verifier._anchor_proof import sign_header
from verifier._internal.keccak import keccak256
from verifier._proof_package import (
    OperatorHeaderTrust,
    ProvenState,
    decode_credential_status_word,
    fetch_proof_package,
    status_storage_key,
)
from verifier.errors import InvalidProofPackage

pytestmark = pytest.mark.chain


def _carry(anvil, deployed, c: dict[str, Any], root: bytes) -> dict[str, Any]:
    holder = copy.deepcopy(c)
    holder["proof"]["proofPackage"] = fetch_proof_package(
        anvil.w3, deployed.anchors.address, [(root, _leaf(c))], operator_key=OPERATOR_KEY
    )
    return holder


def test_a_carried_package_proves_anchor_and_status(anvil, deployed, batch):
    copies, root = batch
    trust = _trust(anvil, deployed)
    assert verify(copies[0], trust=trust, at=AT).check("anchor").status == "failed"  # not in the bundle
    result = verify(_carry(anvil, deployed, copies[0], root), trust=trust, at=AT)
    assert result.valid, result.checks
    status = result.check("status")
    assert "proven from chain state attested by operator " + eth_address(OPERATOR_KEY) in status.reason


def test_revocation_and_suspension_are_proven_with_reason_and_date(anvil, deployed, batch):
    copies, root = batch
    trust = _trust(anvil, deployed)
    on_chain = deployed.anchors.functions.credentialStatusOf(root, _leaf(copies[1])).call()
    revoked = verify(_carry(anvil, deployed, copies[1], root), trust=trust, at=AT).check("status")
    assert revoked.status == "failed" and revoked.reason.startswith("revoked on ")
    assert revoked.reason.endswith("reason superseded") and "unrecorded" not in revoked.reason
    assert on_chain[0] == 2 and on_chain[1] == 2
    suspended = verify(_carry(anvil, deployed, copies[2], root), trust=trust, at=AT).check("status")
    assert suspended.status == "failed" and suspended.reason.startswith("suspended on ")
    assert suspended.reason.endswith("reason holder request")


def test_status_slot_layout_matches_the_contract(anvil, deployed, batch):
    copies, root = batch
    for c in copies[:3]:
        leaf = _leaf(c)
        word = int.from_bytes(
            anvil.w3.eth.get_storage_at(deployed.anchors.address, status_storage_key(root, leaf)), "big"
        )
        assert decode_credential_status_word(word) == tuple(
            deployed.anchors.functions.credentialStatusOf(root, leaf).call()
        )


def test_a_bundle_wide_package_outranks_a_forged_bundle(anvil, deployed, batch):
    """The bundle says nothing is revoked; the package proves #1 revoked and #2 suspended."""
    copies, root = batch
    trust = _trust(anvil, deployed)
    package = fetch_proof_package(
        anvil.w3,
        deployed.anchors.address,
        [(root, _leaf(c)) for c in copies],
        operator_key=OPERATOR_KEY,
        chunk=4,
    )
    # shared: one header and account proof; the storage pool holds each trie node once
    assert len(package["storageProof"]) == len(set(package["storageProof"]))
    verifier = Verifier(trust=trust, proof_package=package)
    results = [verifier.verify(c, at=AT) for c in copies]
    assert [r.valid for r in results] == [True, False, False, True, True, True]
    assert results[1].check("status").reason.endswith("reason superseded")
    assert results[2].check("status").reason.startswith("suspended")


def test_a_package_of_another_block_sees_the_state_of_that_block(anvil, deployed, batch):
    copies, root = batch
    before = fetch_proof_package(
        anvil.w3, deployed.anchors.address, [(root, _leaf(copies[5]))], operator_key=OPERATOR_KEY
    )
    p = copies[5]["proof"]
    deployed.revoke_credential(
        ISSUER_KEY, root, _b(p["targetHash"]), _b(p["subjectHash"]), [_b(x) for x in p["merkleProof"]], 8
    )
    trust = _trust(anvil, deployed)
    assert Verifier(trust=trust, proof_package=before).verify(copies[5], at=AT).valid
    after = _carry(anvil, deployed, copies[5], root)
    check = verify(after, trust=trust, at=AT).check("status")
    assert check.status == "failed" and check.reason.endswith("reason court order")


def test_an_unanchored_root_is_proven_absent(anvil, deployed, batch):
    w = World(chain_id=deployed.chain_id, anchor_registry=deployed.anchors.address.lower())
    stranger = w.add_issuer()
    holder = w.issue(stranger, [w.document(stranger)], anchor=False)[0]
    carried = _carry(anvil, deployed, holder, _b(holder["proof"]["merkleRoot"]))
    check = verify(carried, trust=_trust(anvil, deployed), at=AT).check("anchor")
    assert (
        check.status == "failed"
        and "proves the batch root" in check.reason
        and "not anchored" in check.reason
    )


def test_an_untrusted_operator_header_is_refused(anvil, deployed, batch):
    copies, root = batch
    carried = _carry(anvil, deployed, copies[0], root)
    other = _trust(anvil, deployed, operator_key=OTHER_KEY)  # pins another operator
    check = verify(carried, trust=other, at=AT).check("anchor")
    assert (
        check.status == "failed"
        and "headerSignature" in check.reason
        and "not a trusted operator" in check.reason
    )


# -- every single-field change is refused, and the failing check is named ---------------------------


def _flip(hex_text: str, at: int) -> str:
    chars = list(hex_text)
    chars[at] = "0" if chars[at] != "0" else "1"
    return "".join(chars)


def _tampers(package: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """(what, tamper, failing check, words in its reason)."""
    out: list[tuple[str, Any, str, str]] = [
        ("type", lambda p: p.__setitem__("type", "CertledgerProofPackageX"), "anchor", "type:"),
        ("version", lambda p: p.__setitem__("version", 2), "anchor", "version:"),
        ("chainId", lambda p: p.__setitem__("chainId", p["chainId"] + 1), "anchor", "chainId:"),
        (
            "anchorRegistry",
            lambda p: p.__setitem__("anchorRegistry", "0x" + "11" * 20),
            "anchor",
            "anchorRegistry:",
        ),
        (
            "blockHeader",
            lambda p: p.__setitem__("blockHeader", _flip(p["blockHeader"], 200)),
            "anchor",
            "signature does not verify",
        ),
        (
            "headerSignature.value",
            lambda p: p["headerSignature"].__setitem__("value", _flip(p["headerSignature"]["value"], 20)),
            "anchor",
            "headerSignature",
        ),
        (
            "headerSignature.signer",
            lambda p: p["headerSignature"].__setitem__("signer", eth_address(OTHER_KEY)),
            "anchor",
            "signature does not verify",
        ),
        (
            "headerSignature by another key",
            lambda p: p.__setitem__(
                "headerSignature", sign_header(p["chainId"], keccak256(_b(p["blockHeader"])), OTHER_KEY)
            ),
            "anchor",
            "not a trusted operator",
        ),
        ("headerSignature removed", lambda p: p.pop("headerSignature"), "anchor", "headerSignature: missing"),
        ("member added", lambda p: p.__setitem__("extra", 1), "anchor", "unknown member"),
    ]
    for i in range(len(package["accountProof"])):
        out.append(
            (
                f"accountProof[{i}]",
                lambda p, i=i: p["accountProof"].__setitem__(i, _flip(p["accountProof"][i], 40)),
                "anchor",
                "accountProof",
            )
        )
        out.append(
            (f"accountProof[{i}] removed", lambda p, i=i: p["accountProof"].pop(i), "anchor", "accountProof")
        )
    for i in range(len(package["storageProof"])):
        # the anchor's path is walked first, so a node on it fails `anchor`; one only on the
        # status slot's path fails `status`
        out.append(
            (
                f"storageProof[{i}]",
                lambda p, i=i: p["storageProof"].__setitem__(i, _flip(p["storageProof"][i], 40)),
                "anchor|status",
                "storageProof",
            )
        )
        out.append(
            (
                f"storageProof[{i}] removed",
                lambda p, i=i: p["storageProof"].pop(i),
                "anchor|status",
                "storageProof",
            )
        )
    return out


@pytest.mark.parametrize("which", [0, 1])  # a valid credential (exclusion proof) and a revoked one
def test_every_single_field_change_is_refused(anvil, deployed, batch, which):
    copies, root = batch
    carried = _carry(anvil, deployed, copies[which], root)
    trust = _trust(anvil, deployed)
    baseline = verify(carried, trust=trust, at=AT)
    assert baseline.check("anchor").status == "passed"
    seen_status_failure = False
    tampers = _tampers(carried["proof"]["proofPackage"])
    assert len(tampers) > 14
    for what, tamper, checks, words in tampers:
        holder = copy.deepcopy(carried)
        tamper(holder["proof"]["proofPackage"])
        result = verify(holder, trust=trust, at=AT)
        failed = [c for c in result.checks if c.status == "failed"]
        assert not result.valid, what
        assert failed[0].name in checks.split("|"), (what, failed)
        assert words in failed[0].reason, (what, failed[0].reason)
        if failed[0].name == "status":
            seen_status_failure = True
            assert result.check("anchor").status == "passed"
    # the revoked credential's slot is set, so its leaf node lies on the status slot's path only
    assert seen_status_failure or which == 0


def test_proven_state_errors_name_the_member(anvil, deployed, batch):
    copies, root = batch
    package = fetch_proof_package(
        anvil.w3, deployed.anchors.address, [(root, _leaf(copies[0]))], operator_key=OPERATOR_KEY
    )
    header_trust = OperatorHeaderTrust(lambda a: a == eth_address(OPERATOR_KEY))
    registry = deployed.anchors.address.lower()
    state = ProvenState(
        package, chain_id=deployed.chain_id, anchor_registry=registry, header_trust=header_trust
    )
    assert state.anchor(root) is not None and state.status(root, _leaf(copies[0])).status == 1
    bare = ProvenState(
        {**package, "storageProof": []},
        chain_id=deployed.chain_id,
        anchor_registry=registry,
        header_trust=header_trust,
    )
    with pytest.raises(InvalidProofPackage, match="^storageProof: the status slot's path leaves"):
        bare.status(root, _leaf(copies[0]))
    with pytest.raises(InvalidProofPackage, match="^storageProof: the anchor slot's path leaves"):
        bare.anchor(root)
    with pytest.raises(InvalidProofPackage, match="^accountProof: must be a list"):
        ProvenState(
            {**package, "accountProof": "0x00"},
            chain_id=deployed.chain_id,
            anchor_registry=registry,
            header_trust=header_trust,
        )
    with pytest.raises(InvalidProofPackage, match="^blockHeader: must be 0x-hex"):
        ProvenState(
            {**package, "blockHeader": "zz"},
            chain_id=deployed.chain_id,
            anchor_registry=registry,
            header_trust=header_trust,
        )


def test_the_cli_verifies_a_carried_package_offline(anvil, deployed, batch, tmp_path):
    """certledger-verify with only a bundle that knows no anchor: the carried package proves it."""
    import json
    import os
    import subprocess
    import sys

    from verifier import sign_trust_bundle as _sign

    copies, root = batch
    rpc = RpcTrust(anvil.url, deployed.manifest())
    block = anvil.w3.eth.get_block(rpc.block_number)
    bundle = _sign(
        build_trust_bundle(
            chain_id=deployed.chain_id,
            contracts={k: v.lower() for k, v in deployed.manifest()["contracts"].items()},
            block={
                "number": rpc.block_number,
                "hash": "0x" + bytes(block["hash"]).hex(),
                "timestamp": rpc.block_timestamp,
                "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
            },
            issuers=[rpc.issuer(1)],
            anchors=[],
        ),
        OPERATOR_KEY,
    )
    (tmp_path / "b.json").write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    for name, c in (("valid.json", copies[0]), ("revoked.json", copies[1])):
        (tmp_path / name).write_text(
            json.dumps(_carry(anvil, deployed, c, root), ensure_ascii=False), "utf-8"
        )
    root_dir = Path(__file__).resolve().parents[2]
    proc = subprocess.run(  # noqa: PLW1510 - the return code is checked below
        [
            sys.executable,
            "-m",
            "verifier._cli",
            str(tmp_path / "valid.json"),
            str(tmp_path / "revoked.json"),
            "--bundle",
            str(tmp_path / "b.json"),
            "--operator",
            eth_address(OPERATOR_KEY),
            "--at",
            AT,
            "--json",
        ],
        capture_output=True,
        cwd=root_dir,
        env={**os.environ, "PYTHONPATH": str(root_dir)},
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr.decode()  # one file invalid
    out = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    assert [o["valid"] for o in out] == [True, False]
    status = {c["name"]: c for c in out[1]["checks"]}["status"]
    assert status["status"] == "failed" and status["reason"].endswith("reason superseded")
