"""AnchorRegistry against a real anvil: anchoring, batch and credential status (with proofs built
by `@openzeppelin/merkle-tree`), every revert by custom error name and arguments, every event, the
issuer access matrix, and the anchor gas budget."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ledger_node import DEV_KEYS


def _load_helpers():
    name = "certledger_contract_test_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("helpers.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _load_helpers()
pytestmark = pytest.mark.chain

ISSUER, OTHER, NEW_KEY, STRANGER = DEV_KEYS[1], DEV_KEYS[2], DEV_KEYS[3], DEV_KEYS[9]
ZERO32 = b"\0" * 32


@pytest.fixture(scope="module")
def batch():
    """16 credentials; the OZ tree over them (root, leaf hashes, proofs)."""
    return H.make_batch(16)


@pytest.fixture()
def c(chain, deployment):
    return H.contracts(chain, deployment)


@pytest.fixture()
def issuers(c):
    """ISSUER = issuer 1 and OTHER = issuer 2, both allowed every type."""
    return H.register_issuer(c, ISSUER)[0], H.register_issuer(c, OTHER)[0]


@pytest.fixture()
def anchored(c, issuers, batch):
    """`batch` anchored by ISSUER as business licences."""
    H.anchor(c, ISSUER, batch.root, H.BUSINESS_LICENCE, 16)
    return batch


def _block(c, receipt):
    return c.chain.w3.eth.get_block(receipt["blockNumber"])


def _revoke(c, key, batch, i, reason=1, root=None, proof=None):
    t, s, p = batch.cred(i)
    return c.tx(
        c.ar.functions.revokeCredential(root or batch.root, t, s, p if proof is None else proof, reason), key
    )


def _suspend(c, key, batch, i, reason=7, root=None, proof=None):
    t, s, p = batch.cred(i)
    return c.tx(
        c.ar.functions.suspendCredential(root or batch.root, t, s, p if proof is None else proof, reason), key
    )


def _status(c, batch, i, root=None):
    return tuple(c.call(c.ar.functions.statusOf(root or batch.root, batch.leaves[i])))


def _is_valid(c, batch, i, root=None):
    t, s, p = batch.cred(i)
    return c.call(c.ar.functions.isValid(root or batch.root, t, s, p))


# -- anchoring --------------------------------------------------------------------------------
def test_anchor_records_and_emits(c, issuers, batch):
    receipt = H.anchor(c, ISSUER, batch.root, H.DATA_ASSET_CERTIFICATE, 16)
    assert H.one_event(c.ar, "BatchAnchored", receipt) == {
        "root": batch.root,
        "issuerId": 1,
        "credentialType": H.DATA_ASSET_CERTIFICATE,
        "keyVersion": 1,
        "count": 16,
    }
    block = _block(c, receipt)
    assert tuple(c.call(c.ar.functions.anchorOf(batch.root))) == (
        1,
        1,
        H.DATA_ASSET_CERTIFICATE,
        16,
        receipt["blockNumber"],
        block["timestamp"],
        H.VALID,
        0,
    )
    assert _status(c, batch, 0) == (H.VALID, 0)
    assert all(_is_valid(c, batch, i) for i in (0, 7, 15))


def test_anchor_gas_within_budget(c, issuers):
    receipts = [H.anchor(c, ISSUER, H.b32(), H.BUSINESS_LICENCE, n) for n in (1, 1000, 10_000)]
    gas = [r["gasUsed"] for r in receipts]
    assert max(gas) <= 60_000, gas
    # no storage or work depends on the count; only its calldata bytes do (16 gas per non-zero byte)
    assert max(gas) - min(gas) <= 4 * 16 + 32 * 12, f"anchor gas must not depend on the count: {gas}"
    assert gas[1] / 1000 <= 60  # ≤ 60 gas per credential at a batch of 1,000


def test_unanchored_views_are_zero(c, batch):
    assert tuple(c.call(c.ar.functions.anchorOf(batch.root))) == (0, 0, 0, 0, 0, 0, H.NONE, 0)
    assert tuple(c.call(c.ar.functions.credentialStatusOf(batch.root, batch.leaves[0]))) == (H.NONE, 0, 0)
    assert _status(c, batch, 0) == (H.NONE, 0)
    assert _is_valid(c, batch, 0) is False


def test_anchor_reverts(c, issuers, batch):
    with H.reverts("InvalidRoot", {"root": ZERO32}):
        H.anchor(c, ISSUER, ZERO32)
    with H.reverts("InvalidCount", {"count": 0}):
        H.anchor(c, ISSUER, batch.root, H.BUSINESS_LICENCE, 0)
    with H.reverts("NotAnIssuer", {"account": H.addr(STRANGER)}):
        H.anchor(c, STRANGER, batch.root)
    with H.reverts("NotAnIssuer", {"account": H.addr(H.GOV)}):  # governance is not an issuer
        H.anchor(c, H.GOV, batch.root)
    c.tx(c.ir.functions.setCredentialType(1, H.OPERATING_PERMIT, False), H.GOV)
    with H.reverts("CredentialTypeNotAllowed", {"issuerId": 1, "credentialType": H.OPERATING_PERMIT}):
        H.anchor(c, ISSUER, batch.root, H.OPERATING_PERMIT)
    with H.reverts("CredentialTypeNotAllowed", {"issuerId": 1, "credentialType": 9}):
        H.anchor(c, ISSUER, batch.root, 9)
    H.anchor(c, ISSUER, batch.root, H.BUSINESS_LICENCE, 16)
    with H.reverts("RootAlreadyAnchored", {"root": batch.root}):
        H.anchor(c, ISSUER, batch.root, H.BUSINESS_LICENCE, 16)
    with H.reverts("RootAlreadyAnchored", {"root": batch.root}):  # nor can another issuer take it over
        H.anchor(c, OTHER, batch.root, H.BUSINESS_LICENCE, 16)
    assert c.call(c.ar.functions.anchorOf(batch.root))[0] == 1


def test_suspended_issuer_cannot_anchor_but_keeps_protective_powers(c, issuers, anchored):
    other_root = H.b32()
    H.anchor(c, ISSUER, other_root)
    c.tx(c.ir.functions.suspendIssuer(1, 3), H.GOV)
    with H.reverts("IssuerStatusMismatch", {"issuerId": 1, "status": H.ISSUER_SUSPENDED}):
        H.anchor(c, ISSUER, H.b32())
    # it may still suspend and revoke its own credentials and batches ...
    _suspend(c, ISSUER, anchored, 1)
    _revoke(c, ISSUER, anchored, 2)
    c.tx(c.ar.functions.suspendBatch(other_root, 1), ISSUER)
    # ... but not reinstate them
    with H.reverts("IssuerSuspendedCannotReinstate", {"issuerId": 1}):
        c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[1]), ISSUER)
    with H.reverts("IssuerSuspendedCannotReinstate", {"issuerId": 1}):
        c.tx(c.ar.functions.reinstateBatch(other_root), ISSUER)
    # governance can, and once reinstated the issuer can again
    c.tx(c.ar.functions.reinstateBatch(other_root), H.GOV)
    c.tx(c.ir.functions.reinstateIssuer(1), H.GOV)
    c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[1]), ISSUER)
    H.anchor(c, ISSUER, H.b32())
    c.tx(c.ar.functions.revokeBatch(other_root, 2), ISSUER)


def test_rotated_key(c, issuers, anchored):
    c.tx(c.ir.functions.rotateKey(1, H.addr(NEW_KEY), b""), ISSUER)
    # the old key can no longer anchor, nor change a status
    with H.reverts("NotAnIssuer", {"account": H.addr(ISSUER)}):
        H.anchor(c, ISSUER, H.b32())
    with H.reverts("NotStatusAuthority", {"account": H.addr(ISSUER), "root": anchored.root}):
        _suspend(c, ISSUER, anchored, 0)
    with H.reverts("NotStatusAuthority", {"account": H.addr(ISSUER), "root": anchored.root}):
        c.tx(c.ar.functions.revokeBatch(anchored.root, 1), ISSUER)
    # the old anchor stays valid, recorded with key version 1
    assert c.call(c.ar.functions.anchorOf(anchored.root))[1] == 1
    assert _is_valid(c, anchored, 0) is True
    # new anchors carry key version 2
    new_root = H.b32()
    receipt = H.anchor(c, NEW_KEY, new_root)
    assert H.one_event(c.ar, "BatchAnchored", receipt)["keyVersion"] == 2
    assert c.call(c.ar.functions.anchorOf(new_root))[:2] == (1, 2)
    # the new key changes the status of the old key's anchors
    _suspend(c, NEW_KEY, anchored, 0)
    c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[0]), NEW_KEY)
    _revoke(c, NEW_KEY, anchored, 3)
    c.tx(c.ar.functions.suspendBatch(anchored.root, 1), NEW_KEY)
    c.tx(c.ar.functions.reinstateBatch(anchored.root), NEW_KEY)
    assert _status(c, anchored, 3) == (H.REVOKED, 1)
    assert _status(c, anchored, 0) == (H.VALID, 0)


def test_issuer_outside_activity_window_cannot_anchor(c):
    now = int(c.chain.w3.eth.get_block("latest")["timestamp"])
    H.register_issuer(c, ISSUER, active_from=now + 86_400)
    H.register_issuer(c, OTHER, active_from=1, active_until=1000)
    for key, issuer_id in ((ISSUER, 1), (OTHER, 2)):
        with H.reverts("IssuerOutsideActivityWindow") as e:
            H.anchor(c, key, H.b32())
        assert e.value.args_dict["issuerId"] == issuer_id


# -- batch status -----------------------------------------------------------------------------
def test_revoke_batch(c, issuers, anchored):
    receipt = c.tx(c.ar.functions.revokeBatch(anchored.root, 3), ISSUER)
    assert H.one_event(c.ar, "BatchStatusChanged", receipt) == {
        "root": anchored.root,
        "issuerId": 1,
        "status": H.REVOKED,
        "reason": 3,
        "by": H.addr(ISSUER),
    }
    assert c.call(c.ar.functions.anchorOf(anchored.root))[6:] == (H.REVOKED, 3)
    assert _status(c, anchored, 4) == (H.REVOKED, 3)
    assert _is_valid(c, anchored, 4) is False
    # revocation is final: no second revocation, no suspension, no reinstatement
    with H.reverts("AlreadyRevoked", {"id": anchored.root}):
        c.tx(c.ar.functions.revokeBatch(anchored.root, 1), ISSUER)
    with H.reverts("AlreadyRevoked", {"id": anchored.root}):
        c.tx(c.ar.functions.suspendBatch(anchored.root, 1), ISSUER)
    with H.reverts("NotSuspended", {"id": anchored.root}):
        c.tx(c.ar.functions.reinstateBatch(anchored.root), H.GOV)


def test_suspend_and_reinstate_batch(c, issuers, anchored):
    receipt = c.tx(c.ar.functions.suspendBatch(anchored.root, 8), ISSUER)
    assert H.one_event(c.ar, "BatchStatusChanged", receipt) == {
        "root": anchored.root,
        "issuerId": 1,
        "status": H.SUSPENDED,
        "reason": 8,
        "by": H.addr(ISSUER),
    }
    assert _status(c, anchored, 0) == (H.SUSPENDED, 8)
    assert _is_valid(c, anchored, 0) is False
    with H.reverts("AlreadySuspended", {"id": anchored.root}):
        c.tx(c.ar.functions.suspendBatch(anchored.root, 1), ISSUER)
    receipt = c.tx(c.ar.functions.reinstateBatch(anchored.root), ISSUER)
    assert H.one_event(c.ar, "BatchStatusChanged", receipt) == {
        "root": anchored.root,
        "issuerId": 1,
        "status": H.VALID,
        "reason": 0,
        "by": H.addr(ISSUER),
    }
    assert _status(c, anchored, 0) == (H.VALID, 0)
    assert _is_valid(c, anchored, 0) is True
    with H.reverts("NotSuspended", {"id": anchored.root}):
        c.tx(c.ar.functions.reinstateBatch(anchored.root), ISSUER)
    # a suspended batch can still be revoked
    c.tx(c.ar.functions.suspendBatch(anchored.root, 1), ISSUER)
    c.tx(c.ar.functions.revokeBatch(anchored.root, 2), ISSUER)
    assert _status(c, anchored, 0) == (H.REVOKED, 2)


def test_batch_status_reverts_for_unanchored_root(c, issuers):
    root = H.b32()
    with H.reverts("RootNotAnchored", {"root": root}):
        c.tx(c.ar.functions.revokeBatch(root, 1), ISSUER)
    with H.reverts("RootNotAnchored", {"root": root}):
        c.tx(c.ar.functions.suspendBatch(root, 1), H.GOV)
    with H.reverts("RootNotAnchored", {"root": root}):
        c.tx(c.ar.functions.reinstateBatch(root), H.GOV)


def test_only_the_anchoring_issuer_or_governance_changes_a_batch(c, issuers, anchored):
    for key in (OTHER, STRANGER):
        for fn in (
            c.ar.functions.revokeBatch(anchored.root, 1),
            c.ar.functions.suspendBatch(anchored.root, 1),
        ):
            with H.reverts("NotStatusAuthority", {"account": H.addr(key), "root": anchored.root}):
                c.tx(fn, key)
    receipt = c.tx(c.ar.functions.suspendBatch(anchored.root, 4), H.GOV)
    assert H.one_event(c.ar, "BatchStatusChanged", receipt)["by"] == H.addr(H.GOV)
    for key in (OTHER, STRANGER):
        with H.reverts("NotStatusAuthority", {"account": H.addr(key), "root": anchored.root}):
            c.tx(c.ar.functions.reinstateBatch(anchored.root), key)
    c.tx(c.ar.functions.reinstateBatch(anchored.root), H.GOV)
    c.tx(c.ar.functions.revokeBatch(anchored.root, 5), H.GOV)
    assert c.call(c.ar.functions.anchorOf(anchored.root))[6:] == (H.REVOKED, 5)


# -- credential status (proofs from @openzeppelin/merkle-tree) --------------------------------
def test_leaf_hash_matches_openzeppelin(c, batch):
    for i in (0, 5, 15):
        t, s = batch.values[i]
        assert c.call(c.ar.functions.leafHash(t, s)) == batch.leaves[i]


def test_revoke_credential_with_oz_proof(c, issuers, anchored):
    receipt = _revoke(c, ISSUER, anchored, 5, reason=1)
    assert H.one_event(c.ar, "CredentialStatusChanged", receipt) == {
        "leaf": anchored.leaves[5],
        "root": anchored.root,
        "issuerId": 1,
        "status": H.REVOKED,
        "reason": 1,
        "by": H.addr(ISSUER),
    }
    ts = _block(c, receipt)["timestamp"]
    assert tuple(c.call(c.ar.functions.credentialStatusOf(anchored.root, anchored.leaves[5]))) == (
        H.REVOKED,
        1,
        ts,
    )
    assert _status(c, anchored, 5) == (H.REVOKED, 1)
    assert _is_valid(c, anchored, 5) is False
    # its neighbours are untouched
    assert _status(c, anchored, 4) == (H.VALID, 0)
    assert _is_valid(c, anchored, 4) is True
    # final
    with H.reverts("AlreadyRevoked", {"id": anchored.leaves[5]}):
        _revoke(c, ISSUER, anchored, 5)
    with H.reverts("AlreadyRevoked", {"id": anchored.leaves[5]}):
        _suspend(c, ISSUER, anchored, 5)
    with H.reverts("NotSuspended", {"id": anchored.leaves[5]}):
        c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[5]), ISSUER)


def test_forged_proofs_rejected(c, issuers, anchored):
    t, s, proof = anchored.cred(3)
    leaf = anchored.leaves[3]
    forged = [H.b32()] + proof[1:]
    with H.reverts("InvalidMerkleProof", {"root": anchored.root, "leaf": leaf}):
        _revoke(c, ISSUER, anchored, 3, proof=forged)
    with H.reverts("InvalidMerkleProof", {"root": anchored.root, "leaf": leaf}):
        _suspend(c, ISSUER, anchored, 3, proof=anchored.proofs[4])  # another leaf's proof
    with H.reverts("InvalidMerkleProof", {"root": anchored.root, "leaf": leaf}):
        _revoke(c, ISSUER, anchored, 3, proof=[])
    # a credential that is not in the batch
    outsider_t, outsider_s = H.b32(), H.b32()
    outsider = c.call(c.ar.functions.leafHash(outsider_t, outsider_s))
    with H.reverts("InvalidMerkleProof", {"root": anchored.root, "leaf": outsider}):
        c.tx(c.ar.functions.revokeCredential(anchored.root, outsider_t, outsider_s, proof, 1), ISSUER)
    # the inner node (a 64-byte pre-image) cannot be passed off as a leaf: leaves are double-hashed
    with H.reverts("InvalidMerkleProof"):
        c.tx(c.ar.functions.revokeCredential(anchored.root, proof[0], leaf, proof[1:], 1), ISSUER)
    assert c.call(c.ar.functions.isValid(anchored.root, t, s, forged)) is False
    assert _is_valid(c, anchored, 3) is True


def test_suspend_and_reinstate_credential(c, issuers, anchored):
    receipt = _suspend(c, ISSUER, anchored, 9, reason=7)
    assert H.one_event(c.ar, "CredentialStatusChanged", receipt) == {
        "leaf": anchored.leaves[9],
        "root": anchored.root,
        "issuerId": 1,
        "status": H.SUSPENDED,
        "reason": 7,
        "by": H.addr(ISSUER),
    }
    assert _status(c, anchored, 9) == (H.SUSPENDED, 7)
    assert _is_valid(c, anchored, 9) is False
    with H.reverts("AlreadySuspended", {"id": anchored.leaves[9]}):
        _suspend(c, ISSUER, anchored, 9)
    receipt = c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[9]), ISSUER)
    assert H.one_event(c.ar, "CredentialStatusChanged", receipt) == {
        "leaf": anchored.leaves[9],
        "root": anchored.root,
        "issuerId": 1,
        "status": H.NONE,
        "reason": 0,
        "by": H.addr(ISSUER),
    }
    rec = c.call(c.ar.functions.credentialStatusOf(anchored.root, anchored.leaves[9]))
    assert (rec[0], rec[1]) == (H.NONE, 0)
    assert _status(c, anchored, 9) == (H.VALID, 0)
    assert _is_valid(c, anchored, 9) is True
    with H.reverts("NotSuspended", {"id": anchored.leaves[9]}):
        c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[9]), ISSUER)
    # a suspended credential can be revoked
    _suspend(c, ISSUER, anchored, 9)
    _revoke(c, ISSUER, anchored, 9, reason=6)
    assert _status(c, anchored, 9) == (H.REVOKED, 6)


def test_batch_status_takes_precedence(c, issuers, anchored):
    _suspend(c, ISSUER, anchored, 0, reason=7)
    c.tx(c.ar.functions.revokeBatch(anchored.root, 2), ISSUER)
    assert _status(c, anchored, 0) == (H.REVOKED, 2)
    assert _status(c, anchored, 1) == (H.REVOKED, 2)


def test_credential_suspension_survives_batch_suspension(c, issuers, anchored):
    _suspend(c, ISSUER, anchored, 0, reason=7)
    c.tx(c.ar.functions.suspendBatch(anchored.root, 4), ISSUER)
    assert _status(c, anchored, 1) == (H.SUSPENDED, 4)
    c.tx(c.ar.functions.reinstateBatch(anchored.root), ISSUER)
    assert _status(c, anchored, 0) == (H.SUSPENDED, 7)
    assert _status(c, anchored, 1) == (H.VALID, 0)


def test_credential_status_reverts(c, issuers, batch):
    t, s, p = batch.cred(0)
    with H.reverts("RootNotAnchored", {"root": batch.root}):
        c.tx(c.ar.functions.revokeCredential(batch.root, t, s, p, 1), ISSUER)
    with H.reverts("RootNotAnchored", {"root": batch.root}):
        c.tx(c.ar.functions.suspendCredential(batch.root, t, s, p, 1), H.GOV)
    with H.reverts("RootNotAnchored", {"root": batch.root}):
        c.tx(c.ar.functions.reinstateCredential(batch.root, batch.leaves[0]), ISSUER)


def test_only_the_anchoring_issuer_or_governance_changes_a_credential(c, issuers, anchored):
    for key in (OTHER, STRANGER):
        with H.reverts("NotStatusAuthority", {"account": H.addr(key), "root": anchored.root}):
            _revoke(c, key, anchored, 0)
        with H.reverts("NotStatusAuthority", {"account": H.addr(key), "root": anchored.root}):
            _suspend(c, key, anchored, 0)
    # authority is checked before the proof: a stranger learns nothing from a forged proof
    with H.reverts("NotStatusAuthority", {"account": H.addr(OTHER), "root": anchored.root}):
        _revoke(c, OTHER, anchored, 0, proof=[H.b32()])
    _suspend(c, ISSUER, anchored, 0)
    for key in (OTHER, STRANGER):
        with H.reverts("NotStatusAuthority", {"account": H.addr(key), "root": anchored.root}):
            c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[0]), key)
    # governance may do all three
    receipt = c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[0]), H.GOV)
    assert H.one_event(c.ar, "CredentialStatusChanged", receipt)["by"] == H.addr(H.GOV)
    _suspend(c, H.GOV, anchored, 1)
    _revoke(c, H.GOV, anchored, 2)
    assert _status(c, anchored, 1)[0] == H.SUSPENDED
    assert _status(c, anchored, 2)[0] == H.REVOKED


def test_same_leaf_in_another_issuers_batch_does_not_touch_mine(c, issuers, anchored):
    """A leaf is public (anyone holding the credential knows targetHash and subjectHash), so another
    issuer can anchor a batch that contains it: a one-leaf StandardMerkleTree's root is the leaf."""
    leaf = anchored.leaves[6]
    t, s, _ = anchored.cred(6)
    H.anchor(c, OTHER, leaf)
    _revoke(c, OTHER, anchored, 6, root=leaf, proof=[])
    assert _status(c, anchored, 6, root=leaf) == (H.REVOKED, 1)
    assert _status(c, anchored, 6) == (H.VALID, 0)
    assert _is_valid(c, anchored, 6) is True


def test_other_issuer_cannot_lift_my_suspension(c, issuers, anchored):
    leaf = anchored.leaves[6]
    _suspend(c, ISSUER, anchored, 6, reason=7)
    H.anchor(c, OTHER, leaf)  # OTHER's one-leaf batch: root == leaf
    _revoke(c, OTHER, anchored, 6, root=leaf, proof=[])  # OTHER's own batch: its own override
    assert _status(c, anchored, 6) == (H.SUSPENDED, 7)  # mine is untouched (status is per root and leaf)
    assert c.call(c.ar.functions.statusOf(leaf, leaf))[0] == H.REVOKED


def test_other_issuer_cannot_block_my_suspension(c, issuers, anchored):
    leaf = anchored.leaves[6]
    H.anchor(c, OTHER, leaf)
    _suspend(c, OTHER, anchored, 6, root=leaf, proof=[])
    _suspend(c, ISSUER, anchored, 6, reason=7)  # OTHER's suspension does not block mine
    assert _status(c, anchored, 6) == (H.SUSPENDED, 7)
    c.tx(c.ar.functions.reinstateCredential(anchored.root, leaf), ISSUER)  # and I reinstate only mine
    assert _status(c, anchored, 6) == (H.VALID, 0)
    assert c.call(c.ar.functions.statusOf(leaf, leaf))[0] == H.SUSPENDED


# -- misc views ---------------------------------------------------------------------------------
def test_views_and_roles(c, deployment):
    assert c.call(c.ar.functions.issuerRegistry()) == deployment.issuer_registry
    assert c.call(c.ar.functions.version()) == "1.0.0"
    assert c.call(c.ar.functions.GOVERNANCE_ROLE()) == H.GOVERNANCE_ROLE
    assert c.call(c.ar.functions.DEFAULT_ADMIN_ROLE()) == H.DEFAULT_ADMIN_ROLE
    assert c.call(c.ar.functions.hasRole(H.GOVERNANCE_ROLE, H.addr(H.GOV))) is True
    assert c.call(c.ar.functions.getRoleAdmin(H.GOVERNANCE_ROLE)) == H.DEFAULT_ADMIN_ROLE
    assert c.call(c.ar.functions.supportsInterface(bytes.fromhex("7965db0b"))) is True
    fields, name, version, chain_id, contract, salt, extensions = c.call(c.ar.functions.eip712Domain())
    assert (fields, name, version, chain_id, contract, salt, extensions) == (
        b"\x0f",
        "certledger",
        "1",
        c.chain.chain_id,
        deployment.anchor_registry,
        ZERO32,
        [],
    )


def test_governance_role_on_anchor_registry_is_separate(c, issuers, anchored):
    """Revoking governance on the anchor registry takes away its power over statuses there."""
    second = DEV_KEYS[8]
    c.tx(c.ar.functions.grantRole(H.GOVERNANCE_ROLE, H.addr(second)), H.GOV)
    c.tx(c.ar.functions.suspendBatch(anchored.root, 1), second)
    c.tx(c.ar.functions.revokeRole(H.GOVERNANCE_ROLE, H.addr(second)), H.GOV)
    with H.reverts("NotStatusAuthority", {"account": H.addr(second), "root": anchored.root}):
        c.tx(c.ar.functions.reinstateBatch(anchored.root), second)
    with H.reverts(
        "AccessControlUnauthorizedAccount", {"account": H.addr(STRANGER), "neededRole": H.DEFAULT_ADMIN_ROLE}
    ):
        c.tx(c.ar.functions.grantRole(H.GOVERNANCE_ROLE, H.addr(STRANGER)), STRANGER)


# -- the storage layout that proof packages read (docs/FORMAT.md §12.1) ----------------------------


def test_status_slots_hold_what_proof_packages_read(c, issuers, anchored):
    """`_credentialStatus[root][leaf]` at the slot FORMAT.md §12.1 derives, packed status | reason <<
    8 | timestamp << 16, through suspend, reinstate and revoke; and the committed layout says so."""
    import json

    from ledger_node.artifacts import BUILD_DIR
    from verifier import anchor_storage_key, status_storage_key
    from verifier._proof_package import decode_credential_status_word

    layout = json.loads((BUILD_DIR / "AnchorRegistry.json").read_text())["storageLayout"]
    slots = {e["label"]: int(e["slot"]) for e in layout["storage"]}
    assert (slots["_anchors"], slots["_credentialStatus"]) == (3, 4)
    members = next(t for k, t in layout["types"].items() if k.startswith("t_struct(CredentialStatus)"))[
        "members"
    ]
    assert [(m["label"], m["offset"], m["slot"]) for m in members] == [
        ("status", 0, "0"),
        ("reason", 1, "0"),
        ("timestamp", 2, "0"),
    ]

    def word(i):
        raw = c.chain.w3.eth.get_storage_at(
            c.ar.address, status_storage_key(anchored.root, anchored.leaves[i])
        )
        return decode_credential_status_word(int.from_bytes(raw, "big"))

    assert word(4) == (0, 0, 0)  # never changed: the slot is empty
    receipt = _suspend(c, ISSUER, anchored, 4, reason=7)
    assert word(4) == (H.SUSPENDED, 7, _block(c, receipt)["timestamp"])
    receipt = c.tx(c.ar.functions.reinstateCredential(anchored.root, anchored.leaves[4]), ISSUER)
    assert word(4) == (H.NONE, 0, _block(c, receipt)["timestamp"])
    receipt = _revoke(c, ISSUER, anchored, 4, reason=2)
    assert word(4) == (H.REVOKED, 2, _block(c, receipt)["timestamp"])
    assert (
        word(4)[:2] == tuple(c.call(c.ar.functions.credentialStatusOf(anchored.root, anchored.leaves[4])))[:2]
    )
    anchor = int.from_bytes(
        c.chain.w3.eth.get_storage_at(c.ar.address, anchor_storage_key(anchored.root)), "big"
    )
    assert (anchor >> 224) & 0xFF == H.VALID  # the batch stays valid; only the credential's slot changed
