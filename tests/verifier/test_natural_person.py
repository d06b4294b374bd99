"""A natural person as the holder of a data asset certificate (issue #22, point 3; FORMAT.md §2.4):
the citizen ID number is a salted leaf, subjectHash binds its digest (not the number), and the
certificate verifies with the number disclosed or redacted; each inconsistency is refused by name."""

from __future__ import annotations

import copy
import json
import re

import pytest
from stdnum.cn import ric

from tests.support.factory import AT, World
from verifier import prepare_credential, redact, verify
from verifier._internal.keccak import keccak256
from verifier.errors import InvalidDocument

CITIZEN = "11010519491231002X"  # python-stdnum's documented example of a valid number
assert ric.is_valid(CITIZEN)


def _person_subject(subject: dict) -> dict:
    out = {k: v for k, v in subject.items() if k != "unifiedSocialCreditCode"}
    return {"holderCodeType": "citizenId", "citizenIdNumber": CITIZEN, **out, "holderName": "张三"}


@pytest.fixture(scope="module")
def pw():
    w = World()
    issuer = w.add_issuer("secp256k1", name="广东省人力资源和社会保障厅")
    return w, issuer


def _issue(pw, **over):
    w, issuer = pw
    doc = w.document(issuer, "DataAssetCertificate")
    doc["credentialSubject"] = _person_subject(doc["credentialSubject"]) | over
    return w.issue(issuer, [doc], validate=False)[0], w


def test_a_natural_persons_certificate_verifies_with_the_number_disclosed_or_redacted(pw):
    holder, w = _issue(pw)
    result = verify(holder, trust=w.trust(), at=AT)
    assert result.valid, result.checks
    assert result.credential.subject == f"citizen ID {CITIZEN}"
    red = redact(holder, ["/credentialSubject/citizenIdNumber"])
    assert "citizenIdNumber" not in red["credentialSubject"]
    result = verify(red, trust=w.trust(), at=AT)
    assert result.valid, result.checks
    assert result.credential.subject == "a natural person (citizen ID redacted)"


def test_subject_hash_binds_the_salted_digest_not_the_number(pw):
    """The leaf's subject half is keccak of the citizen ID leaf's salted digest: a dictionary of ID
    numbers does not find it, and another number (or the same one under another salt) fails."""
    from verifier._internal.disclosure import SUITE_HASHES, leaf_digest

    holder, w = _issue(pw)
    proof = holder["proof"]
    assert proof["subjectHash"] != "0x" + keccak256(CITIZEN.encode()).hex()
    salt = bytes.fromhex(proof["salts"]["/credentialSubject/citizenIdNumber"][2:])
    digest = leaf_digest(SUITE_HASHES["secp256k1"], salt, "/credentialSubject/citizenIdNumber", CITIZEN)
    assert proof["subjectHash"] == "0x" + keccak256(digest).hex()
    other = copy.deepcopy(holder)
    other["credentialSubject"]["citizenIdNumber"] = "110105194912310038"  # another valid number
    assert verify(other, trust=w.trust(), at=AT).check("integrity").status == "failed"


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda s: s.pop("citizenIdNumber"), "'citizenIdNumber' is a required property"),
        (
            lambda s: s.update(unifiedSocialCreditCode="91440101MA5BANK009"),
            "a natural person holder (citizenId) has none",
        ),
        (
            lambda s: s.update(holderCodeType="uscc", unifiedSocialCreditCode="91440101MA5BANK009"),
            "only a holder of holderCodeType citizenId has one",
        ),
        (lambda s: s.update(citizenIdNumber="110105194912310021"), "not a valid citizen ID number"),
        (lambda s: s.pop("holderCodeType"), "'unifiedSocialCreditCode' is a required property"),
    ],
)
def test_inconsistent_holder_codes_are_refused_by_name(pw, change, reason):
    w, issuer = pw
    doc = w.document(issuer, "DataAssetCertificate")
    doc["credentialSubject"] = _person_subject(doc["credentialSubject"])
    change(doc["credentialSubject"])
    with pytest.raises(InvalidDocument, match=re.escape(reason)):
        prepare_credential(doc)
    try:
        holder = w.issue(issuer, [doc], validate=False)[0]  # issued by one that skipped its checks
    except InvalidDocument:
        return  # no holder code to bind at all: it cannot even be issued
    check = verify(holder, trust=w.trust(), at=AT).check("format")
    assert check.status == "failed" and reason in check.reason, check.reason


def test_the_holder_code_type_cannot_be_redacted_and_a_forged_subject_fails(pw):
    from verifier.errors import RedactionError

    holder, w = _issue(pw)
    with pytest.raises(RedactionError, match="holderCodeType cannot be redacted"):
        redact(holder, ["/credentialSubject/holderCodeType"])
    forged = json.loads(json.dumps(redact(holder, ["/credentialSubject/citizenIdNumber"])))
    forged["proof"]["redactedDigests"]["/credentialSubject/citizenIdNumber"] = "0x" + "11" * 32
    assert verify(forged, trust=w.trust(), at=AT).check("integrity").status == "failed"


def test_a_natural_persons_proof_with_a_subject_salt_is_refused(pw):
    """A natural person is bound by its number's digest (§2.4); an enterprise's subjectSalt in its
    proof is refused by name, not ignored."""
    holder, w = _issue(pw)
    assert "subjectSalt" not in holder["proof"]
    bad = copy.deepcopy(holder)
    bad["proof"]["subjectSalt"] = "0x" + "22" * 32
    check = verify(bad, trust=w.trust(), at=AT).check("integrity")
    assert check.status == "failed" and "natural person" in check.reason
