"""Redaction: values go, digests stay, the credential still verifies; forbidden paths refused."""

from __future__ import annotations

import pytest

from tests.support.factory import AT, BANK_USCC
from verifier import redact, verify
from verifier.errors import RedactionError


def test_redacting_a_leaf_moves_its_digest_and_drops_its_salt(world, trust):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    red = redact(holder, ["/credentialSubject/legalRepresentative"])
    assert "legalRepresentative" not in red["credentialSubject"]
    assert "/credentialSubject/legalRepresentative" not in red["proof"]["salts"]
    assert list(red["proof"]["redactedDigests"]) == ["/credentialSubject/legalRepresentative"]
    assert holder["credentialSubject"]["legalRepresentative"]  # the original is untouched
    result = verify(red, trust=trust, at=AT)
    assert result.valid and "1 field(s) redacted" in result.check("integrity").reason


def test_redacting_an_object_removes_all_its_leaves(world, trust):
    holder = world.batches[("sm2-sm3", "DataAssetCertificate")][0]
    red = redact(holder, ["/credentialSubject/valuation"])
    assert "valuation" not in red["credentialSubject"]
    assert sorted(red["proof"]["redactedDigests"]) == [
        "/credentialSubject/valuation/amount",
        "/credentialSubject/valuation/currency",
        "/credentialSubject/valuation/method",
    ]
    assert verify(red, trust=trust, at=AT).valid


def test_redacting_an_array_element_leaves_a_placeholder_and_later_elements_keep_their_paths(world, trust):
    holder = world.batches[("secp256k1", "DataAssetCertificate")][0]
    red = redact(holder, ["/credentialSubject/authorisedUses/0"])
    uses = red["credentialSubject"]["authorisedUses"]
    assert uses[0] is None and uses[1] == holder["credentialSubject"]["authorisedUses"][1]
    assert verify(red, trust=trust, at=AT).valid
    # the bank's own use was redacted: usage can no longer be shown
    assert (
        verify(red, trust=trust, at=AT, relying_party=BANK_USCC, purpose="loan assessment")
        .check("usage")
        .status
        == "failed"
    )


def test_redacting_every_element_removes_the_array(world, trust):
    holder = world.batches[("secp256k1", "OperatingPermit")][0]
    red = redact(
        holder, ["/credentialSubject/permittedActivities/0", "/credentialSubject/permittedActivities/1"]
    )
    assert "permittedActivities" not in red["credentialSubject"]
    assert verify(red, trust=trust, at=AT).valid


def test_redacting_twice_in_steps_equals_at_once(world, trust):
    holder = world.batches[("secp256k1", "DataAssetCertificate")][1]
    stepwise = redact(
        redact(holder, ["/credentialSubject/assetName"]), ["/credentialSubject/periodCovered/from"]
    )
    once = redact(holder, ["/credentialSubject/assetName", "/credentialSubject/periodCovered/from"])
    assert stepwise == once
    assert verify(stepwise, trust=trust, at=AT).valid


def test_redacted_dataset_digest_fails_data_when_data_is_given(world, trust):
    holder = world.batches[("secp256k1", "DataAssetCertificate")][0]
    red = redact(holder, ["/credentialSubject/datasetDigest"])
    assert verify(red, trust=trust, at=AT).valid
    check = verify(red, trust=trust, at=AT, data=b"anything").check("data")
    assert check.status == "failed" and "redacted" in check.reason


@pytest.mark.parametrize(
    "path,match",
    [
        ("/credentialSubject/unifiedSocialCreditCode", "cannot be redacted"),
        ("/validUntil", "only fields inside credentialSubject"),
        ("/issuer/name", "only fields inside credentialSubject"),
        ("/credentialSubject", "only fields inside credentialSubject"),
        ("/credentialSubject/nothingHere", "has no field"),
        ("/credentialSubject/registeredCapital/amount/x", "has no field"),
    ],
)
def test_forbidden_or_missing_paths_are_refused(world, path, match):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    with pytest.raises(RedactionError, match=match):
        redact(holder, [path])


def test_redacting_twice_is_refused(world):
    red = redact(world.batches[("secp256k1", "BusinessLicence")][0], ["/credentialSubject/address"])
    with pytest.raises(RedactionError):
        redact(red, ["/credentialSubject/address"])


def test_a_document_without_proof_cannot_be_redacted(world):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    with pytest.raises(RedactionError, match="holder copy"):
        redact({k: v for k, v in holder.items() if k != "proof"}, ["/credentialSubject/address"])


def test_a_forged_redaction_of_a_protected_field_fails_format(world, trust):
    holder = world.batches[("secp256k1", "BusinessLicence")][0]
    red = redact(holder, ["/credentialSubject/address"])
    red["proof"]["redactedDigests"]["/validUntil"] = red["proof"]["redactedDigests"].pop(
        "/credentialSubject/address"
    )
    result = verify(red, trust=trust, at=AT)
    assert result.check("format").status == "failed" and "/validUntil" in result.check("format").reason


def test_relabelled_redactions_are_refused(world, trust):
    """FORMAT.md §3.3: targetHash commits to each leaf's path, so a holder cannot hide a second
    authorised use by filing its digests under /credentialSubject/valuation/... and dropping its
    array placeholder (the attack of issue 24): integrity fails."""
    holder = world.batches[("secp256k1", "DataAssetCertificate")][0]
    assert len(holder["credentialSubject"]["authorisedUses"]) == 2
    red = redact(holder, ["/credentialSubject/valuation", "/credentialSubject/authorisedUses/1"])
    assert verify(red, trust=trust, at=AT).valid  # honest redaction verifies
    forged = redact(holder, ["/credentialSubject/valuation", "/credentialSubject/authorisedUses/1"])
    digests = forged["proof"]["redactedDigests"]
    prefix = "/credentialSubject/authorisedUses/1/"
    for path in [p for p in digests if p.startswith(prefix)]:
        digests["/credentialSubject/valuation/" + path[len(prefix) :].replace("/", "_")] = digests.pop(path)
    forged["credentialSubject"]["authorisedUses"] = forged["credentialSubject"]["authorisedUses"][:1]
    assert not any(p.startswith("/credentialSubject/authorisedUses/1") for p in digests)
    result = verify(forged, trust=trust, at=AT)
    assert not result.valid
    assert result.check("integrity").status == "failed"
    assert "does not match what the issuer signed" in result.check("integrity").reason


def test_relabelling_one_redacted_digest_fails_integrity(world, trust):
    """Even a swap of two redacted labels (same set of digests) changes targetHash."""
    holder = world.batches[("sm2-sm3", "DataAssetCertificate")][0]
    red = redact(holder, ["/credentialSubject/valuation"])
    d = red["proof"]["redactedDigests"]
    d["/credentialSubject/valuation/amount"], d["/credentialSubject/valuation/method"] = (
        d["/credentialSubject/valuation/method"],
        d["/credentialSubject/valuation/amount"],
    )
    result = verify(red, trust=trust, at=AT)
    assert result.check("integrity").status == "failed"


@pytest.mark.parametrize("member", ["valuation", "dataProvider"])
def test_null_at_a_redacted_object_member_fails_format(world, trust, member):
    """FORMAT.md §3.4: only an array element can be a placeholder; `valuation: null` (redacted or
    not) fails `format` as a schema violation, before integrity."""
    holder = world.batches[("secp256k1", "DataAssetCertificate")][0]
    red = redact(holder, [f"/credentialSubject/{member}"])
    red["credentialSubject"][member] = None
    result = verify(red, trust=trust, at=AT)
    check = result.check("format")
    assert check.status == "failed" and f"/credentialSubject/{member}: None is not of type" in check.reason
    assert result.check("integrity").status == "skipped"
    red = redact(holder, ["/credentialSubject/authorisedUses/0"])  # an array placeholder is fine
    assert red["credentialSubject"]["authorisedUses"][0] is None and verify(red, trust=trust, at=AT).valid
