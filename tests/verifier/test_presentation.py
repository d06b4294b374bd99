"""Holder binding and presentations bound to the relying party's request (FORMAT.md §13): every
refusal named by the issue — a replay, another audience, an expired request, a copy presented
without the holder key, a credential swapped between presentations — and the unbound case."""

from __future__ import annotations

import copy
import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.factory import AT, BANK_USCC, World, make_uscc, sample_subject
from verifier import HolderKey, PresentationRequest, Verifier, present, redact, verify_presentation
from verifier._schema import parse_datetime
from verifier.errors import InvalidDocument, InvalidPresentation

NOW = parse_datetime(AT)


@pytest.fixture(scope="module")
def bound():
    """A world with a data asset certificate and a business licence bound to a secp256k1 holder key,
    one bound to an SM2 key, and one bound to nobody."""
    w = World()
    issuer = w.add_issuer("secp256k1")
    key, sm2_key = HolderKey.generate("secp256k1"), HolderKey.generate("sm2")

    def doc(type_name, holder):
        subject = sample_subject(type_name, w.rng)
        if holder is not None:
            subject = {"id": holder.holder_id, **subject}
        return w.document(issuer, type_name, subject=subject)

    certs = w.issue(
        issuer,
        [
            doc("DataAssetCertificate", key),
            doc("DataAssetCertificate", sm2_key),
            doc("DataAssetCertificate", None),
        ],
    )
    licence = w.issue(issuer, [doc("BusinessLicence", key)])[0]
    return {
        "verifier": Verifier(trust=w.trust()),
        "key": key,
        "sm2": sm2_key,
        "cert": certs[0],
        "sm2_cert": certs[1],
        "unbound": certs[2],
        "licence": licence,
    }


def _request(**kw):
    return PresentationRequest.new(
        kw.pop("audience", BANK_USCC), kw.pop("purpose", "loan assessment"), at=NOW, **kw
    )


def _verify(b, presentation, request, at=NOW):
    return verify_presentation(presentation, request, verifier=b["verifier"], at=at)


def _holder(result, i=0):
    return result.results[i].check("holder")


def test_a_redacted_certificate_presented_to_the_bank_that_asked_verifies(bound):
    request = _request()
    shown = redact(bound["cert"], ["/credentialSubject/valuation/amount", "/credentialSubject/recordCount"])
    result = _verify(bound, present(request, [shown, bound["licence"]], bound["key"], at=NOW), request)
    assert result.valid, [c for r in result.results for c in r.failed]
    assert _holder(result).status == "passed"
    assert result.results[0].check("usage").status == "passed"  # the audience and purpose are authorised uses
    assert result.results[0].check("integrity").status == "passed"


def test_an_sm2_holder_key_works_the_same(bound):
    request = _request()
    result = _verify(bound, present(request, [bound["sm2_cert"]], bound["sm2"], at=NOW), request)
    assert result.valid and _holder(result).status == "passed"


def test_a_replay_to_another_request_is_refused(bound):
    first, second = _request(), _request()
    presentation = present(first, [bound["cert"]], bound["key"], at=NOW)
    result = _verify(bound, presentation, second)
    assert not result.valid and "replay" in _holder(result).reason


def test_a_presentation_made_for_another_bank_is_refused(bound):
    other_bank = make_uscc(__import__("random").Random(3))
    presentation = present(_request(audience=other_bank), [bound["cert"]], bound["key"], at=NOW)
    mine = _request()
    result = _verify(
        bound,
        presentation,
        PresentationRequest(presentation["proof"]["challenge"], mine.audience, mine.purpose, mine.expires),
    )
    assert not result.valid and "another relying party" in _holder(result).reason


def test_an_expired_request_is_refused(bound):
    request = _request(ttl=timedelta(minutes=2))
    presentation = present(request, [bound["cert"]], bound["key"], at=NOW)
    assert _verify(bound, presentation, request, at=NOW + timedelta(minutes=1)).valid
    late = _verify(bound, presentation, request, at=NOW + timedelta(minutes=3))
    assert not late.valid and "expired" in _holder(late).reason


def test_a_copy_presented_without_the_holder_key_is_refused(bound):
    """Whoever holds only the file signs with their own key: the credential names another."""
    request = _request()
    thief = HolderKey.generate()
    with pytest.raises(InvalidPresentation, match="names another holder key"):
        present(request, [bound["cert"]], thief)
    forged = present(
        request, [redact(bound["cert"], ["/credentialSubject/holderName"])], bound["key"], at=NOW
    )
    forged["holder"] = forged["proof"]["verificationMethod"] = thief.holder_id
    result = _verify(bound, forged, request)
    assert not result.valid and _holder(result).status == "failed"
    # redacting the holder key away does not make it an unbound credential
    hidden = redact(bound["cert"], ["/credentialSubject/id"])
    result = _verify(bound, present(request, [hidden], thief, at=NOW), request)
    assert not result.valid and "holder key is redacted" in _holder(result).reason


def test_a_credential_swapped_between_presentations_is_refused(bound):
    request = _request()
    a = present(request, [bound["cert"]], bound["key"], at=NOW)
    b = present(request, [bound["licence"]], bound["key"], at=NOW)
    a["verifiableCredential"] = b["verifiableCredential"]
    result = _verify(bound, a, request)
    assert not result.valid and "signature does not match" in _holder(result).reason
    # and so is a field disclosed after signing (the signature covers the credential as disclosed)
    c = present(request, [redact(bound["cert"], ["/credentialSubject/holderName"])], bound["key"], at=NOW)
    c["verifiableCredential"] = [bound["cert"]]
    assert not _verify(bound, c, request).valid


def test_a_credential_without_a_holder_key_says_no_proof_of_possession_was_possible(bound):
    request = _request()
    result = _verify(bound, present(request, [bound["unbound"]], HolderKey.generate(), at=NOW), request)
    check = _holder(result)
    assert check.status == "skipped" and "no proof of possession was possible" in check.reason
    assert result.valid  # everything else verifies exactly as before
    plain = bound["verifier"].verify(bound["unbound"], at=NOW)
    assert [c.name for c in plain.checks] == [c.name for c in result.results[0].checks][:-1]


def test_the_requested_credential_types_are_enforced(bound):
    request = _request(credential_types=["DataAssetCertificate"])
    result = _verify(bound, present(request, [bound["licence"]], bound["key"], at=NOW), request)
    assert not result.valid and "you asked for DataAssetCertificate" in _holder(result).reason


@pytest.mark.parametrize(
    "field,value",
    [
        ("proofValue", None),
        ("created", "2026-06-01T00:00:01Z"),
        ("challenge", "0x" + "00" * 16),
        ("domain", BANK_USCC[:-1] + "0"),
        ("purpose", "other"),
        ("expires", "2030-01-01T00:00:00Z"),
        ("verificationMethod", "urn:certledger:holder:secp256k1:0x02" + "11" * 32),
    ],
)
def test_every_single_field_change_to_the_proof_is_refused(bound, field, value):
    request = _request()
    presentation = present(request, [bound["cert"]], bound["key"], at=NOW)
    proof = presentation["proof"]
    if value is None:  # flip one byte of the signature
        value = (
            proof["proofValue"][:10]
            + ("0" if proof["proofValue"][10] != "0" else "1")
            + proof["proofValue"][11:]
        )
    proof[field] = value
    assert _holder(_verify(bound, presentation, request)).status == "failed"


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda p: p.update(type=["VerifiableCredential"]), "VerifiablePresentation"),
        (lambda p: p.update(holder="did:example:1"), "holder key"),
        (lambda p: p["proof"].update(type="Ed25519Signature2020"), "CertledgerHolderProof2026"),
        (lambda p: p["proof"].update(extra=1), "unknown member 'extra'"),
        (lambda p: p.update(verifiableCredential=[]), "holds no credential"),
    ],
)
def test_a_malformed_presentation_is_refused_with_its_reason(bound, mutate, message):
    request = _request()
    presentation = copy.deepcopy(present(request, [bound["cert"]], bound["key"], at=NOW))
    mutate(presentation)
    with pytest.raises(InvalidPresentation, match=message):
        _verify(bound, presentation, request)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: r.update(nonce="0x1234"), "nonce"),
        (lambda r: r.update(audience="91440101MA5BANK000"), "audience"),
        (lambda r: r.update(purpose=""), "purpose"),
        (lambda r: r.update(expires="tomorrow"), "expires"),
        (lambda r: r.update(extra=True), "no member 'extra'"),
        (lambda r: r.update(type="Other"), "CertledgerPresentationRequest"),
    ],
)
def test_a_malformed_request_is_refused_with_its_reason(mutate, message):
    data = _request().to_json()
    mutate(data)
    with pytest.raises(InvalidPresentation, match=message):
        PresentationRequest.from_json(data)


def test_the_holder_key_is_part_of_what_the_issuer_signed(bound):
    """Swapping the holder key in a credential breaks its integrity."""
    swapped = copy.deepcopy(bound["cert"])
    thief = HolderKey.generate()
    swapped["credentialSubject"]["id"] = thief.holder_id
    request = _request()
    result = _verify(bound, present(request, [swapped], thief, at=NOW), request)
    assert not result.valid and result.results[0].check("integrity").status == "failed"


def test_the_worked_example_in_format_md():
    """FORMAT.md §13's example: the holder id, the credential hash, the statement, digest and signature."""
    import hashlib
    import re
    from pathlib import Path

    from verifier._internal.canon import jcs
    from verifier._presentation import _statement

    text = Path(__file__).resolve().parents[2].joinpath("docs", "FORMAT.md").read_text(encoding="utf-8")
    section = text[text.index("**Worked example** (checked by `tests/verifier/test_presentation.py`)") :]

    def value(label: str) -> str:
        return re.search(label + r"\s*`?=?\s*`?([^`\s]+)", section).group(1)

    key = HolderKey("secp256k1", bytes.fromhex(value("holder private key")[2:]))
    assert key.holder_id == value("holder id")
    credential = {"id": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    assert "0x" + hashlib.sha256(jcs(credential)).hexdigest() == value("its hash")
    proof = {
        "challenge": value("challenge"),
        "domain": value("domain"),
        "purpose": value("purpose"),
        "created": value("created"),
        "expires": value("expires"),
    }
    statement = re.search(r"statement = (\{.*\})", section).group(1)
    expected = {
        "holder": key.holder_id,
        **proof,
        "credentials": ["0x" + hashlib.sha256(jcs(credential)).hexdigest()],
    }
    assert jcs(expected).decode() == statement
    digest = _statement(key.holder_id, proof, [credential], "secp256k1")
    assert "0x" + digest.hex() == re.search(r"digest    = (0x[0-9a-f]+)", section).group(1)
    assert "0x" + key.sign(digest).hex() == re.search(r"proofValue = (0x[0-9a-f]+)", section).group(1)


_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=12)
_MEMBER = st.one_of(
    _TEXT, st.none(), st.integers(-(2**60), 2**60), st.booleans(), st.floats(allow_nan=False), st.lists(_TEXT)
)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {k: _MEMBER for k in ("holder", "challenge", "domain", "purpose", "expires", "created")}
        | {"credentials": st.lists(st.from_regex(r"\A0x[0-9a-f]{64}\Z"), max_size=3)}
    )
)
def test_the_statement_is_written_as_jcs_writes_it(statement):
    """The statement's fast path (orjson, when its members are text) against :func:`jcs`, the reference:
    the same bytes, or the same refusal (a float, an integer beyond 2^53, a lone surrogate)."""
    from verifier._internal.canon import jcs
    from verifier._presentation import _statement_jcs

    try:
        expected: bytes | type[Exception] = jcs(statement)
    except InvalidDocument:
        expected = InvalidDocument
    if expected is InvalidDocument:
        with pytest.raises(InvalidDocument):
            _statement_jcs(statement)
    else:
        assert _statement_jcs(statement) == expected


@pytest.mark.parametrize(
    "r,s",
    [
        (b"\x01" * 32, b"\x02" * 32),
        (b"\x80" + b"\x01" * 31, b"\xc0" * 32),  # high bits: a 0 byte in front
        (b"\x00" * 31 + b"\x05", b"\x00\x80" + b"\x07" * 30),  # leading zeros dropped, then a high bit
        (b"\x00" * 32, b"\x00" * 31 + b"\x01"),  # zero is one 0 byte
    ],
    ids=["plain", "high-bit", "leading-zeros", "zero"],
)
def test_the_der_signature_is_what_libsecp256k1_writes(r, s):
    """:func:`_der` (the form the holder signature is checked in) against libsecp256k1's own DER of
    the same (r, s), for the edge cases of minimal positive integers."""
    from coincurve.ecdsa import cdata_to_der, deserialize_compact

    from verifier._presentation import _der

    assert _der(r, s) == cdata_to_der(deserialize_compact(r + s))


def test_the_der_signature_is_what_libsecp256k1_writes_on_random_values():
    from coincurve.ecdsa import cdata_to_der, deserialize_compact

    from verifier._presentation import _der

    rng = random.Random(7)
    for _ in range(500):
        r, s = (  # below the group order (its first byte is 0xFF), as libsecp256k1 requires
            bytes([rng.choice((0, 0x7F, 0x80, 0xFE))])
            + bytes(rng.choice((0, 0x80, 0xFF, rng.randrange(256))) for _ in range(31))
            for _ in "rs"
        )
        assert _der(r, s) == cdata_to_der(deserialize_compact(r + s)), (r.hex(), s.hex())
