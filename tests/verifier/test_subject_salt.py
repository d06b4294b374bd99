"""An enterprise holder's subjectHash is a salted commitment to its credit code (FORMAT.md §1;
issue #21 point 5): the proof carries subjectSalt, the verifier recomputes keccak256(subjectSalt ‖
code), and each way a proof can get it wrong is refused, naming the reason."""

from __future__ import annotations

import copy

import pytest

from tests.support.factory import AT, World
from verifier import verify
from verifier._internal.keccak import keccak256


@pytest.fixture(scope="module")
def issued():
    w = World()
    issuer = w.add_issuer("secp256k1")
    return w, w.issue(issuer, [w.document(issuer)])[0]


def _check(w, doc, name):
    return verify(doc, trust=w.trust(), at=AT).check(name)


def test_the_proof_carries_the_salt_and_subject_hash_commits_to_it(issued):
    w, holder = issued
    proof, code = holder["proof"], holder["credentialSubject"]["unifiedSocialCreditCode"]
    salt = bytes.fromhex(proof["subjectSalt"][2:])
    assert proof["subjectHash"] == "0x" + keccak256(salt + code.encode()).hex()
    assert proof["subjectHash"] != "0x" + keccak256(code.encode()).hex()  # not the dictionary's hash
    assert verify(holder, trust=w.trust(), at=AT).valid


def test_a_proof_without_its_subject_salt_is_refused_by_name(issued):
    w, holder = issued
    bad = copy.deepcopy(holder)
    del bad["proof"]["subjectSalt"]
    check = _check(w, bad, "integrity")
    assert check.status == "failed" and "no subjectSalt" in check.reason


def test_another_salt_is_another_holder(issued):
    w, holder = issued
    bad = copy.deepcopy(holder)
    bad["proof"]["subjectSalt"] = "0x" + "11" * 32
    check = _check(w, bad, "integrity")
    assert check.status == "failed" and "another holder" in check.reason


def test_a_forged_subject_hash_for_the_bare_code_is_refused(issued):
    """Rewriting subjectHash to keccak256(code) (the old form) no longer matches the salt."""
    w, holder = issued
    bad = copy.deepcopy(holder)
    code = bad["credentialSubject"]["unifiedSocialCreditCode"]
    bad["proof"]["subjectHash"] = "0x" + keccak256(code.encode()).hex()
    assert _check(w, bad, "integrity").status == "failed"


@pytest.mark.parametrize("value", ["0x" + "ab" * 31, "0x" + "AB" * 32, "ab" * 32, 7, None])
def test_a_malformed_subject_salt_fails_format(issued, value):
    w, holder = issued
    bad = copy.deepcopy(holder)
    bad["proof"]["subjectSalt"] = value
    if value is None:  # null for a member: refused like any null (FORMAT.md §2.2)
        assert not verify(bad, trust=w.trust(), at=AT).valid
        return
    check = _check(w, bad, "format")
    assert check.status == "failed" and "subjectSalt" in check.reason
