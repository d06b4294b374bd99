"""An enterprise holder's subjectHash is a salted commitment to its credit code (FORMAT.md §1;
issue #21 point 5): the proof carries subjectSalt, the verifier recomputes keccak256(subjectSalt ‖
code), and each way a proof can get it wrong is refused, naming the reason."""

from __future__ import annotations

import copy
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.factory import AT, World
from verifier import subject_salt_for, verify
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


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=100),  # longer than SHA-256's block too (HMAC hashes the key)
    identifier=st.text(max_size=40),
)
def test_the_issuers_subject_salt_is_hmac_sha256_of_the_label_and_the_identifier(key, identifier):
    expected = hmac.digest(key, b"certledger/subject-salt/v1\x00" + identifier.encode("utf-8"), "sha256")
    assert subject_salt_for(key, identifier) == expected
    assert subject_salt_for(bytearray(key), identifier) == expected  # (a key is not cached by identity)


def test_a_subject_salt_key_shorter_than_32_bytes_is_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        subject_salt_for(bytes(31), "91440101MA5CYYYY0X")


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=100),
    identifier=st.text(max_size=40),
    target=st.binary(min_size=32, max_size=32),
)
def test_subject_hash_and_leaf_is_the_subject_hash_and_its_leaf_on_both_paths(key, identifier, target):
    """The issuer's one call (the C accelerator where it has SHA-256) gives what the three functions it
    stands for give, and so does its pure-Python path."""
    from verifier import _holder
    from verifier.issuance import leaf_hash, subject_hash, subject_hash_and_leaf

    subject = subject_hash(identifier, subject_salt_for(key, identifier))
    expected = (subject, leaf_hash(target, subject))
    assert subject_hash_and_leaf(key, identifier, target) == expected
    assert subject_hash_and_leaf(bytearray(key), identifier, target) == expected
    fast, _holder._subject_leaf = _holder._subject_leaf, None
    try:
        assert subject_hash_and_leaf(key, identifier, target) == expected
    finally:
        _holder._subject_leaf = fast


@pytest.mark.parametrize("pure", [False, True])
def test_subject_hash_and_leaf_refuses_what_the_reference_refuses(monkeypatch, pure):
    from verifier import _holder
    from verifier.errors import MerkleError
    from verifier.issuance import subject_hash_and_leaf

    if pure:
        monkeypatch.setattr(_holder, "_subject_leaf", None)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        subject_hash_and_leaf(bytes(31), "91440101MA5CYYYY0X", bytes(32))
    with pytest.raises(MerkleError, match="32 bytes"):
        subject_hash_and_leaf(bytes(32), "91440101MA5CYYYY0X", bytes(31))
    with pytest.raises(UnicodeEncodeError):
        subject_hash_and_leaf(bytes(32), "\ud800", bytes(32))
