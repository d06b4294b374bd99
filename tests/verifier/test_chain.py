"""Against a real anvil: the Python tree on-chain, online verification, proof-carrying anchors."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.contracts import ISSUER_KEY, OTHER_KEY
from tests.support.factory import AT, World
from verifier import (
    RpcTrust,
    TrustBundle,
    build_trust_bundle,
    eth_address,
    leaf_hash,
    sign_trust_bundle,
    verify,
)
from verifier._anchor_proof import anchor_storage_key, decode_anchor_word, fetch_anchor_proof

pytestmark = pytest.mark.chain
ROOT = Path(__file__).resolve().parents[2]
OPERATOR_KEY = b"\x42" * 32
ISSUER_NAME = "广东省市场监督管理局"


@pytest.fixture(scope="module")
def anchored(deployed):
    """A batch of 4 business licences issued offline by a registered issuer and anchored on-chain."""
    w = World(chain_id=deployed.chain_id, anchor_registry=deployed.anchors.address.lower())
    issuer = w.add_issuer(name=ISSUER_NAME)
    issuer.id = deployed.register_issuer(ISSUER_KEY, ISSUER_NAME, issuer.uscc, [1, 2, 3])
    issuer.key, issuer.account = ISSUER_KEY, eth_address(ISSUER_KEY)
    copies = w.issue(issuer, [w.document(issuer) for _ in range(4)])
    proof = copies[0]["proof"]
    root = bytes.fromhex(proof["merkleRoot"][2:])
    receipt = deployed.anchor(ISSUER_KEY, root, 1, len(copies))
    for c in copies:
        c["proof"]["anchor"]["txHash"] = "0x" + bytes(receipt["transactionHash"]).hex()
        c["proof"]["anchor"]["blockNumber"] = int(receipt["blockNumber"])
    return w, copies, root


def _b(h: str) -> bytes:
    return bytes.fromhex(h[2:])


def test_python_merkle_proofs_verify_in_the_contract(deployed, anchored):
    _, copies, root = anchored
    for c in copies:
        p = c["proof"]
        target, subject = _b(p["targetHash"]), _b(p["subjectHash"])
        assert deployed.anchors.functions.leafHash(target, subject).call() == leaf_hash(target, subject)
        assert deployed.anchors.functions.isValid(
            root, target, subject, [_b(x) for x in p["merkleProof"]]
        ).call()


def test_online_verification_passes_every_check(anvil, deployed, anchored):
    _, copies, _ = anchored
    trust = RpcTrust(anvil.url, deployed.manifest())
    for c in copies:
        result = verify(c, trust=trust, at=AT)
        assert result.valid, result.checks


def test_online_answers_are_pinned_to_one_block_and_see_revocations(anvil, deployed, anchored, tmp_path):
    _, copies, root = anchored
    before = RpcTrust(anvil.url, deployed.manifest())
    victim = copies[3]["proof"]
    deployed.revoke_credential(
        ISSUER_KEY,
        root,
        _b(victim["targetHash"]),
        _b(victim["subjectHash"]),
        [_b(x) for x in victim["merkleProof"]],
        1,
    )
    manifest = tmp_path / "deployment.json"
    manifest.write_text(json.dumps(deployed.manifest()))
    after = RpcTrust(anvil.url, manifest)
    assert after.block_number > before.block_number
    assert verify(copies[3], trust=before, at=AT).valid
    check = verify(copies[3], trust=after, at=AT).check("status")
    assert check.status == "failed" and check.reason.startswith(f"revoked by {ISSUER_NAME} on ")
    assert check.reason.endswith("reason key compromise")
    assert verify(copies[0], trust=after, at=AT).valid


def test_cli_verifies_online(anvil, deployed, anchored, tmp_path):
    _, copies, _ = anchored
    (tmp_path / "c.json").write_text(json.dumps(copies[0], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "d.json").write_text(json.dumps(deployed.manifest()))
    proc = subprocess.run(  # noqa: PLW1510 - the return code is checked below
        [
            sys.executable,
            "-m",
            "verifier._cli",
            str(tmp_path / "c.json"),
            "--rpc",
            anvil.url,
            "--deployment",
            str(tmp_path / "d.json"),
            "--at",
            AT,
            "--json",
        ],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["valid"] is True


def test_anchor_slot_layout_matches_the_contract(anvil, deployed, anchored):
    _, _, root = anchored
    slot = anchor_storage_key(root)
    word = int.from_bytes(anvil.w3.eth.get_storage_at(deployed.anchors.address, slot), "big")
    record = decode_anchor_word(word, root)
    on_chain = deployed.anchors.functions.anchorOf(root).call()
    assert (
        record.issuer_id,
        record.key_version,
        record.credential_type,
        record.count,
        record.block_number,
        record.timestamp,
        record.status,
        record.reason,
    ) == tuple(on_chain)


def _offline_bundle_without_anchors(anvil, deployed, operator_key=OPERATOR_KEY):
    rpc = RpcTrust(anvil.url, deployed.manifest())
    block = anvil.w3.eth.get_block(rpc.block_number)
    bundle = build_trust_bundle(
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
    )
    return TrustBundle.load(sign_trust_bundle(bundle, operator_key), operators=[eth_address(operator_key)])


@pytest.fixture(scope="module")
def carried(anvil, deployed, anchored):
    _, copies, root = anchored
    holder = copy.deepcopy(copies[1])
    holder["proof"]["anchorProof"] = fetch_anchor_proof(
        anvil.w3, deployed.anchors.address, root, OPERATOR_KEY
    )
    return holder


def test_proof_carrying_anchor_verifies_without_the_anchor_in_the_bundle(anvil, deployed, anchored, carried):
    trust = _offline_bundle_without_anchors(anvil, deployed)
    _, copies, _ = anchored
    assert verify(copies[1], trust=trust, at=AT).check("anchor").status == "failed"  # not in the bundle
    result = verify(carried, trust=trust, at=AT)
    assert result.valid, result.checks
    assert result.check("anchor").status == "passed"


def _alter(hex_text: str, at: int = -1) -> str:
    chars = list(hex_text)
    chars[at] = "0" if chars[at] != "0" else "1"
    return "".join(chars)


@pytest.mark.parametrize(
    "tamper,words",
    [
        (lambda p: p["storageProof"].__setitem__(-1, _alter(p["storageProof"][-1], 40)), "storage proof"),
        (lambda p: p["accountProof"].__setitem__(-1, _alter(p["accountProof"][-1], 40)), "account proof"),
        (lambda p: p.__setitem__("blockHeader", _alter(p["blockHeader"], 200)), "signature does not verify"),
        (
            lambda p: p.__setitem__(
                "headerSignature",
                __import__("verifier._anchor_proof", fromlist=["x"]).sign_header(
                    31337,
                    __import__("verifier._internal.keccak", fromlist=["x"]).keccak256(_b(p["blockHeader"])),
                    OTHER_KEY,
                ),
            ),
            "not a trusted operator",
        ),
    ],
)
def test_tampered_anchor_proofs_fail_anchor(anvil, deployed, carried, tamper, words):
    trust = _offline_bundle_without_anchors(anvil, deployed)
    holder = copy.deepcopy(carried)
    tamper(holder["proof"]["anchorProof"])
    check = verify(holder, trust=trust, at=AT).check("anchor")
    assert check.status == "failed" and words in check.reason, check


def test_anchor_proof_for_an_unanchored_root_fails(anvil, deployed, carried):
    trust = _offline_bundle_without_anchors(anvil, deployed)
    w = World(chain_id=deployed.chain_id, anchor_registry=deployed.anchors.address.lower())
    stranger = w.add_issuer()
    holder = w.issue(stranger, [w.document(stranger)], anchor=False)[0]
    root = _b(holder["proof"]["merkleRoot"])
    holder["proof"]["anchorProof"] = fetch_anchor_proof(
        anvil.w3, deployed.anchors.address, root, OPERATOR_KEY
    )
    check = verify(holder, trust=trust, at=AT).check("anchor")
    assert check.status == "failed" and "not anchored" in check.reason


def test_anchor_proof_of_a_revoked_batch_fails_status(anvil, deployed, anchored):
    w, _, _ = anchored
    issuer = next(iter(w.issuers.values()))
    batch = w.issue(issuer, [w.document(issuer) for _ in range(2)])
    root = _b(batch[0]["proof"]["merkleRoot"])
    receipt = deployed.anchor(ISSUER_KEY, root, 1, 2)
    deployed.revoke_batch(ISSUER_KEY, root, 6)
    holder = copy.deepcopy(batch[0])
    holder["proof"]["anchor"]["blockNumber"] = int(receipt["blockNumber"])
    holder["proof"]["anchor"]["txHash"] = "0x" + bytes(receipt["transactionHash"]).hex()  # checked online
    holder["proof"]["anchorProof"] = fetch_anchor_proof(
        anvil.w3, deployed.anchors.address, root, OPERATOR_KEY
    )
    result = verify(holder, trust=_offline_bundle_without_anchors(anvil, deployed), at=AT)
    assert result.check("anchor").status == "passed"
    check = result.check("status")
    assert check.status == "failed" and check.reason.startswith(
        f"the whole batch was revoked by {ISSUER_NAME}"
    )
    assert check.reason.endswith("reason data inaccurate")
    online = verify(holder, trust=RpcTrust(anvil.url, deployed.manifest()), at=AT).check("status")
    assert online.status == "failed" and "the whole batch was revoked" in online.reason
    assert "unrecorded" not in online.reason


SM2_ACCOUNT_KEY = bytes.fromhex(
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
)  # anvil #3


@pytest.fixture(scope="module")
def sm2_anchored(deployed):
    """A batch of 2 SM2-signed data asset certificates, anchored on-chain by an SM2 issuer."""
    w = World(chain_id=deployed.chain_id, anchor_registry=deployed.anchors.address.lower())
    issuer = w.add_issuer(suite="sm2-sm3", name="广东省政务服务和数据管理局")
    issuer.id = deployed.register_issuer(
        SM2_ACCOUNT_KEY, issuer.name, issuer.uscc, [1, 2, 3], suite=1, sm2=issuer.sm2_public
    )
    copies = w.issue(issuer, [w.document(issuer, "DataAssetCertificate") for _ in range(2)])
    root = bytes.fromhex(copies[0]["proof"]["merkleRoot"][2:])
    receipt = deployed.anchor(SM2_ACCOUNT_KEY, root, 3, len(copies))
    for c in copies:
        c["proof"]["anchor"]["txHash"] = "0x" + bytes(receipt["transactionHash"]).hex()
        c["proof"]["anchor"]["blockNumber"] = int(receipt["blockNumber"])
    return copies


@pytest.mark.parametrize("which", ["licence secp256k1", "certificate sm2-sm3"])
def test_anchor_tx_hash_is_checked_online_and_marked_unchecked_offline(
    anvil, deployed, anchored, sm2_anchored, which
):
    """Issue 24: proof.anchor.txHash is checked by RpcTrust (the receipt's BatchAnchored log for this
    root, in the proof's block); a changed hash — another real anchor transaction, or none at all —
    fails `anchor`. A trust bundle cannot check it, and the reason says it is the holder's claim."""
    licence = anchored[1][0]
    holder = licence if which.startswith("licence") else sm2_anchored[0]
    other = sm2_anchored[0] if which.startswith("licence") else licence
    online = RpcTrust(anvil.url, deployed.manifest())
    result = verify(holder, trust=online, at=AT)
    assert result.valid, result.checks
    assert f"by transaction {holder['proof']['anchor']['txHash']} (checked)" in result.check("anchor").reason
    for tx_hash, words in [
        (other["proof"]["anchor"]["txHash"], "did not anchor this batch root"),
        ("0x" + "ab" * 32, "which is not on chain"),
    ]:
        changed = copy.deepcopy(holder)
        changed["proof"]["anchor"]["txHash"] = tx_hash
        check = verify(changed, trust=RpcTrust(anvil.url, deployed.manifest()), at=AT).check("anchor")
        assert check.status == "failed" and words in check.reason, check
    # Offline (a bundle holding the anchor): the same changed hash cannot be checked, and is not
    # presented as fact.
    rpc = RpcTrust(anvil.url, deployed.manifest())
    block = anvil.w3.eth.get_block(rpc.block_number)
    root = bytes.fromhex(holder["proof"]["merkleRoot"][2:])
    issuer_id = holder["proof"]["issuerId"]
    bundle = build_trust_bundle(
        chain_id=deployed.chain_id,
        contracts={k: v.lower() for k, v in deployed.manifest()["contracts"].items()},
        block={
            "number": rpc.block_number,
            "hash": "0x" + bytes(block["hash"]).hex(),
            "timestamp": rpc.block_timestamp,
            "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
        },
        issuers=[rpc.issuer(issuer_id)],
        anchors=[rpc.anchor(root)],
    )
    offline = TrustBundle.load(sign_trust_bundle(bundle, OPERATOR_KEY), operators=[eth_address(OPERATOR_KEY)])
    changed = copy.deepcopy(holder)
    changed["proof"]["anchor"]["txHash"] = "0x" + "ab" * 32
    result = verify(changed, trust=offline, at=AT)
    assert result.valid, result.checks
    reason = result.check("anchor").reason
    assert "0xabababab" in reason and "the holder's claim, not checked by this trust source" in reason
    assert "(checked)" not in reason


# -- validator mode (docs/FORMAT.md §14.4): the header is sealed by pinned validators ----------------
from ledger_node.node import DEV_VALIDATOR_KEYS  # noqa: E402 - the development chain's test validators


def _validator_trust(anvil, deployed, keys=DEV_VALIDATOR_KEYS):
    from verifier import ValidatorPinnedTrust, ValidatorSet

    validators = ValidatorSet(deployed.chain_id, tuple(eth_address(k) for k in keys))
    return ValidatorPinnedTrust(_offline_bundle_without_anchors(anvil, deployed), validators)


@pytest.fixture(scope="module")
def sealed_carried(anvil, deployed, anchored):
    _, copies, root = anchored
    holder = copy.deepcopy(copies[1])
    holder["proof"]["anchorProof"] = fetch_anchor_proof(
        anvil.w3, deployed.anchors.address, root, None, validator_keys=DEV_VALIDATOR_KEYS
    )
    return holder


def test_validator_sealed_anchor_proof_verifies(anvil, deployed, sealed_carried):
    assert "headerSignature" not in sealed_carried["proof"]["anchorProof"]
    result = verify(sealed_carried, trust=_validator_trust(anvil, deployed), at=AT)
    assert result.valid, result.checks
    assert result.check("anchor").status == "passed"


def test_validator_mode_refuses_operator_signed_and_under_sealed_headers(
    anvil, deployed, carried, sealed_carried
):
    trust = _validator_trust(anvil, deployed)
    check = verify(carried, trust=trust, at=AT).check("anchor")  # operator-signed: not QBFT
    assert (
        check.status == "failed" and "not sealed by the pinned validators: header: extraData" in check.reason
    )
    # Sealed by 2 of the 4 pinned validators only.
    holder = copy.deepcopy(sealed_carried)
    root = _b(sealed_carried["proof"]["merkleRoot"])
    holder["proof"]["anchorProof"] = fetch_anchor_proof(
        anvil.w3, deployed.anchors.address, root, None, validator_keys=DEV_VALIDATOR_KEYS[:2]
    )
    check = verify(holder, trust=trust, at=AT).check("anchor")
    assert check.status == "failed" and "only 2 distinct validator seals" in check.reason
    # Sealed by other keys.
    other = [bytes.fromhex(f"{i + 100:064x}") for i in range(4)]
    holder["proof"]["anchorProof"] = fetch_anchor_proof(
        anvil.w3, deployed.anchors.address, root, None, validator_keys=other
    )
    check = verify(holder, trust=trust, at=AT).check("anchor")
    assert check.status == "failed" and "which is not a pinned validator" in check.reason
    # A changed stateRoot breaks the seals.
    holder = copy.deepcopy(sealed_carried)
    fields = __import__("rlp").decode(_b(holder["proof"]["anchorProof"]["blockHeader"]))
    fields[3] = bytes(32)
    holder["proof"]["anchorProof"]["blockHeader"] = "0x" + __import__("rlp").encode(fields).hex()
    check = verify(holder, trust=trust, at=AT).check("anchor")
    assert check.status == "failed" and "committed seal 0 recovers to" in check.reason


def test_validators_for_another_chain_are_refused(anvil, deployed):
    from verifier import ValidatorPinnedTrust, ValidatorSet
    from verifier.errors import InvalidAnchorProof

    with pytest.raises(
        InvalidAnchorProof, match="validators file is for chain 1, the trust source for chain"
    ):
        ValidatorPinnedTrust(_offline_bundle_without_anchors(anvil, deployed), ValidatorSet(1, (OUTSIDER,)))


OUTSIDER = "0x" + "11" * 20


def test_cli_validator_mode_accepts_sealed_and_refuses_operator_signed(
    anvil, deployed, carried, sealed_carried, tmp_path
):
    import json
    import subprocess
    import sys

    from verifier import ValidatorSet

    rpc = RpcTrust(anvil.url, deployed.manifest())
    block = anvil.w3.eth.get_block(rpc.block_number)
    bundle = sign_trust_bundle(
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
    (tmp_path / "bundle.json").write_text(bundle if isinstance(bundle, str) else json.dumps(bundle))
    (tmp_path / "v.json").write_text(
        json.dumps(
            ValidatorSet(deployed.chain_id, tuple(eth_address(k) for k in DEV_VALIDATOR_KEYS)).to_json()
        )
    )
    (tmp_path / "sealed.json").write_text(json.dumps(sealed_carried))
    (tmp_path / "signed.json").write_text(json.dumps(carried))
    base = [
        sys.executable,
        "-m",
        "verifier._cli",
        "--bundle",
        str(tmp_path / "bundle.json"),
        "--validators",
        str(tmp_path / "v.json"),
        "--at",
        AT,
        "--json",
    ]
    ok = subprocess.run(
        [*base[:3], str(tmp_path / "sealed.json"), *base[3:]], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr + ok.stdout
    no = subprocess.run(
        [*base[:3], str(tmp_path / "signed.json"), *base[3:]], capture_output=True, text=True, timeout=60
    )
    assert no.returncode == 1 and "not sealed by the pinned validators" in no.stdout
