"""E-licences on the national identifier and metadata (docs/FORMAT.md §2.3): the 证照标识 and its
ISO 7064 MOD 37,36 check character (against real identifiers and python-stdnum), the metadata the
format check ties together, long-term validity, and the official file's digest (`--file`)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_36

from tests.support.factory import AT, World
from verifier import prepare_credential, redact, verify
from verifier.errors import InvalidDocument, RedactionError
from verifier.issuance import DEFAULT_LICENCE_TYPE_CODES, with_licence_metadata
from verifier.licence_id import (
    InvalidLicenceIdentifier,
    is_valid_licence_identifier,
    licence_check_character,
    make_licence_identifier,
    parse_licence_identifier,
    reference_is_valid_licence_identifier,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "assets" / "licence_identifiers.json").read_text("utf-8"))
ISSUER = "11430000006122244L"  # a valid credit code (from the first vector)


# -- the identifier --------------------------------------------------------------------------


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["identifier"][-30:])
def test_real_identifiers_get_their_verdict(v):
    assert is_valid_licence_identifier(v["identifier"]) is v["valid"]
    if v["valid"]:
        assert str(parse_licence_identifier(v["identifier"])) == v["identifier"]
    else:
        with pytest.raises(InvalidLicenceIdentifier, match=v["reason"]):
            parse_licence_identifier(v["identifier"])


def test_the_iso_7064_example_agrees_with_the_table_driven_check():
    (example,) = VECTORS["iso7064"]["valid"]
    assert mod_37_36.is_valid(example)
    # the same string as the serial of an identifier: our running value reproduces stdnum's check
    body = example[:-1]
    assert licence_check_character("", "", body, "")[-1:] == mod_37_36.calc_check_digit(body) == example[-1]


_part = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(type_code=_part, serial=_part, version=st.integers(1, 999), tamper=st.integers(0, 200))
def test_fast_path_agrees_with_python_stdnum(type_code, serial, version, tamper):
    """make_licence_identifier and is_valid_licence_identifier (table-driven, prefix cached) against
    the reference: python-stdnum's ISO 7064 MOD 37,36 via parse_licence_identifier."""
    made = make_licence_identifier(type_code, ISSUER, serial, version)
    v = f"{version:03d}"
    assert made[-1] == mod_37_36.calc_check_digit(type_code + ISSUER + serial + v)
    assert is_valid_licence_identifier(made) and parse_licence_identifier(made).serial == serial
    # any one character of the checked part changed: both agree (MOD 37,36 catches every single change)
    head = len("1.2.156.3005.2.")
    i = head + tamper % (len(made) - head)
    if made[i] != ".":
        other = "0" if made[i] != "0" else "1"
        changed = made[:i] + other + made[i + 1 :]
        reference = True
        try:
            parse_licence_identifier(changed)
        except InvalidLicenceIdentifier:
            reference = False
        assert is_valid_licence_identifier(changed) is reference


@pytest.mark.parametrize(
    "text, reason",
    [
        ("2.2.156.3005.2.A.11430000006122244L.1.001.0", "root code"),
        ("1.2.156.3005.2.A.11430000006122244L.1.01.0", "three-digit version"),
        ("1.2.156.3005.2.a.11430000006122244L.1.001.0", "digits and capital letters"),
        ("1.2.156.3005.2.A.11430000006122244L.1.001", "not of the form"),
        ("1.2.156.3005.2.A.11430000006122244M.1.001.0", "not a valid unified social credit code"),
        ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.V", "check character is V"),
    ],
)
def test_malformed_identifiers_are_refused_naming_the_reason(text, reason):
    assert not is_valid_licence_identifier(text)
    with pytest.raises(InvalidLicenceIdentifier, match=reason):
        parse_licence_identifier(text)


def test_an_identifier_must_name_the_expected_issuer():
    ident = make_licence_identifier("X1", ISSUER, "S1")
    with pytest.raises(InvalidLicenceIdentifier, match="names the issuing body"):
        parse_licence_identifier(ident, issuer_code="91440101MA5BANK009")


@settings(max_examples=300, deadline=None)
@given(type_code=_part, issuer=_part, serial=st.text(alphabet="0123456789ABCDEF.a", max_size=70))
def test_make_gives_the_reference_identifier_or_refuses_as_it_does(type_code, issuer, serial):
    """Any issuer code and serial, in the form or not: the fast path (the type and issuer codes
    checked and run through once, cached) writes what the parts and python-stdnum's check character
    give, and refuses exactly the parts the form refuses."""
    text = f"1.2.156.3005.2.{type_code}.{issuer}.{serial}.001."
    if re.fullmatch(r"1\.2\.156\.3005\.2\.[0-9A-Z]{1,40}\.[0-9A-Z]{1,40}\.[0-9A-Z]{1,64}\.001\.", text):
        made = make_licence_identifier(type_code, issuer, serial)
        assert made == text + mod_37_36.calc_check_digit(type_code + issuer + serial + "001")
    else:
        with pytest.raises(InvalidLicenceIdentifier, match="cannot form"):
            make_licence_identifier(type_code, issuer, serial)


@pytest.mark.parametrize(
    "bad",
    [
        ("x1", ISSUER, "S"),
        ("X1", ISSUER, "S.1"),
        ("X1", ISSUER, ""),
        ("X1", ISSUER, "S" * 65),
        ("X1", "", "S"),
        ("X1", "A" * 41, "S"),
        ("X1.Y", ISSUER, "S"),
    ],
)
def test_make_refuses_parts_outside_the_form(bad):
    with pytest.raises(InvalidLicenceIdentifier, match="cannot form"):
        make_licence_identifier(*bad)
    with pytest.raises(InvalidLicenceIdentifier, match="1–999"):
        make_licence_identifier("X1", ISSUER, "S", 1000)


@pytest.mark.parametrize("bad", [(5, ISSUER, "S"), ("X1", None, "S"), ("X1", ISSUER, b"S")])
def test_make_refuses_parts_that_are_not_text(bad):
    with pytest.raises(TypeError, match="parts are text"):
        make_licence_identifier(*bad)


# -- the metadata in a credential ------------------------------------------------------------


@pytest.fixture(scope="module")
def lw():
    w = World()
    issuer = w.add_issuer("secp256k1", name="广州市天河区市场监督管理局")
    return w, issuer


def _issue(lw, type_name="BusinessLicence", validate=True, **subject_over):
    w, issuer = lw
    doc = w.document(issuer, type_name)
    if subject_over.get("longTermValidity") is True:
        del doc["validUntil"]
    doc["credentialSubject"].update(subject_over)
    for k, v in list(doc["credentialSubject"].items()):
        if v is None:
            del doc["credentialSubject"][k]
    return w.issue(issuer, [doc], validate=validate)[0], w


def test_an_issued_licence_carries_the_identifier_of_its_issuer_and_verifies(lw):
    holder, w = _issue(lw)
    subject = holder["credentialSubject"]
    ident = parse_licence_identifier(
        subject["licenceIdentifier"], issuer_code=holder["issuer"]["unifiedSocialCreditCode"]
    )
    assert ident.type_code == subject["licenceTypeCode"] == DEFAULT_LICENCE_TYPE_CODES["BusinessLicence"]
    assert ident.serial == holder["id"].rsplit(":", 1)[1].replace("-", "").upper() and ident.version == "001"
    assert subject["holderCodeType"] == "uscc" and subject["issueDate"] == "2026-01-01"
    assert verify(holder, trust=w.trust(), at=AT).valid


def test_with_licence_metadata_keeps_what_the_record_gives_and_leaves_other_types_alone():
    given_ident = make_licence_identifier("11100000000013338W011", ISSUER, "ABC")
    subject = {"licenceIdentifier": given_ident, "licenceTypeCode": "11100000000013338W011", "x": 1}
    out = with_licence_metadata(subject, "OperatingPermit", ISSUER, "urn:uuid:0", "2026-03-01T17:00:00Z")
    assert out["licenceIdentifier"] == given_ident and out["issueDate"] == "2026-03-02"  # China time
    assert "holderCodeType" not in subject  # the record itself is not changed
    data = {"assetId": "A"}
    assert (
        with_licence_metadata(data, "DataAssetCertificate", ISSUER, "urn:uuid:0", "2026-01-01T00:00:00Z")
        is data
    )


@pytest.mark.parametrize(
    "over, reason",
    [
        (
            {"licenceIdentifier": make_licence_identifier("CERTLEDGERBL001", "91440101MA5BANK009", "S1")},
            "names the issuing body 91440101MA5BANK009, but the issuer is",
        ),
        ({"licenceTypeCode": "OTHER"}, "is not the type code in the licence identifier"),
        ({"licenceIdentifier": "1.2.156.3005.2.X.11430000006122244L.S.001.0"}, "check character"),
        ({"holderCodeType": "passport"}, "holderCodeType"),
        ({"issueDate": "2026-02-30"}, "issueDate"),
        (
            {"longTermValidity": True, "_keep_until": True},
            "has both validUntil and credentialSubject.longTermValidity",
        ),
        ({"longTermValidity": False}, "longTermValidity"),
        ({"licenceIdentifier": None}, "'licenceIdentifier' is a required property"),
        (
            {
                "officialFile": {
                    "mediaType": "application/msword",
                    "digest": "0x" + "0" * 64,
                    "digestAlgorithm": "sha256",
                }
            },
            "officialFile",
        ),
    ],
)
def test_metadata_that_does_not_hold_together_fails_format(lw, over, reason):
    """Refused when the issuer prepares it, and — issued by one that skipped its checks — failed by
    the verifier's format check, naming the same reason."""
    w, issuer = lw
    over = dict(over)
    keep_until = over.pop("_keep_until", False)
    doc = w.document(issuer)
    doc["credentialSubject"].update(over)
    doc["credentialSubject"] = {k: v for k, v in doc["credentialSubject"].items() if v is not None}
    with pytest.raises(InvalidDocument, match=re.escape(reason)):
        prepare_credential(doc)
    if keep_until:
        holder = w.issue(issuer, [doc], validate=False)[0]
    else:
        holder, w = _issue(lw, validate=False, **over)
    check = verify(holder, trust=w.trust(), at=AT).check("format")
    assert check.status == "failed" and reason in check.reason, check.reason


def test_a_licence_cannot_replace_itself_but_names_the_one_it_replaces(lw):
    w, issuer = lw
    doc = w.document(issuer)
    ident = doc["credentialSubject"]["licenceIdentifier"]
    doc["credentialSubject"]["replaces"] = ident
    bad = w.issue(issuer, [doc], validate=False)[0]
    assert "cannot replace itself" in verify(bad, trust=w.trust(), at=AT).check("format").reason
    doc = w.document(issuer)
    doc["credentialSubject"]["replaces"] = ident
    assert verify(w.issue(issuer, [doc])[0], trust=w.trust(), at=AT).valid


def test_a_long_term_licence_has_no_valid_until_and_is_valid_from_its_start(lw):
    w, issuer = lw
    doc = w.document(issuer, "OperatingPermit")
    del doc["validUntil"]
    doc["credentialSubject"]["longTermValidity"] = True
    holder = w.issue(issuer, [doc])[0]
    check = verify(holder, trust=w.trust(), at="2090-01-01T00:00:00Z").check("validity")
    assert check.status == "passed" and "long-term (长期" in check.reason
    early = verify(holder, trust=w.trust(), at="2025-01-01T00:00:00Z").check("validity")
    assert early.status == "failed" and "not yet valid" in early.reason
    # neither validUntil nor the flag
    doc = w.document(issuer)
    del doc["validUntil"]
    fmt = verify(w.issue(issuer, [doc], validate=False)[0], trust=w.trust(), at=AT).check("format")
    assert fmt.status == "failed" and "has neither validUntil nor" in fmt.reason


@pytest.mark.parametrize(
    "path", ["/credentialSubject/licenceIdentifier", "/credentialSubject/longTermValidity"]
)
def test_the_identifier_and_the_long_term_flag_cannot_be_redacted(lw, path):
    holder, w = _issue(lw, longTermValidity=True)
    holder_doc = dict(holder)
    with pytest.raises(RedactionError, match="cannot be redacted"):
        redact(holder_doc, [path])
    # a copy that claims it anyway fails format
    forged = json.loads(json.dumps(holder))
    forged["proof"]["redactedDigests"] = {path: "0x" + "11" * 32}
    assert verify(forged, trust=w.trust(), at=AT).check("format").status == "failed"


# -- the official file: --file ---------------------------------------------------------------


def test_the_official_file_digest_is_checked(lw, tmp_path):
    ofd = tmp_path / "licence.ofd"
    ofd.write_bytes(b"PK\x03\x04 an OFD package (a zip) " * 100)
    digest = "0x" + hashlib.sha256(ofd.read_bytes()).hexdigest()
    holder, w = _issue(
        lw, officialFile={"mediaType": "application/ofd", "digest": digest, "digestAlgorithm": "sha256"}
    )
    ok = verify(holder, trust=w.trust(), at=AT, data=ofd)
    assert ok.valid and "the official file's sha256 digest matches" in ok.check("data").reason
    other = tmp_path / "other.ofd"
    other.write_bytes(b"a different file")
    bad = verify(holder, trust=w.trust(), at=AT, data=other).check("data")
    assert bad.status == "failed" and "the official file does not match the licence" in bad.reason
    plain, w = _issue(lw)
    none = verify(plain, trust=w.trust(), at=AT, data=ofd).check("data")
    assert none.status == "failed" and "names no official file" in none.reason
    red = verify(redact(holder, ["/credentialSubject/officialFile"]), trust=w.trust(), at=AT, data=ofd)
    assert red.check("data").status == "failed" and "redacted the official file" in red.check("data").reason


def test_certledger_verify_file_option(lw, tmp_path):
    ofd = tmp_path / "licence.ofd"
    ofd.write_bytes(b"%OFD official licence file")
    digest = "0x" + hashlib.new("sm3", ofd.read_bytes()).hexdigest()
    holder, w = _issue(
        lw, officialFile={"mediaType": "application/ofd", "digest": digest, "digestAlgorithm": "sm3"}
    )
    (tmp_path / "c.json").write_text(json.dumps(holder, ensure_ascii=False), "utf-8")
    (tmp_path / "bundle.json").write_text(json.dumps(w.bundle()), "utf-8")
    cmd = [
        sys.executable,
        "-m",
        "verifier._cli",
        str(tmp_path / "c.json"),
        "--bundle",
        str(tmp_path / "bundle.json"),
    ]
    cmd += ["--operator", w.operator, "--at", AT, "--max-age", "none"]
    ok = subprocess.run([*cmd, "--file", str(ofd)], capture_output=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "official file's sm3 digest matches" in ok.stdout.decode()
    (tmp_path / "x.ofd").write_bytes(b"forged")
    bad = subprocess.run([*cmd, "--file", str(tmp_path / "x.ofd")], capture_output=True, cwd=ROOT)
    assert bad.returncode == 1 and "does not match the licence" in bad.stdout.decode()


# -- provenance on a data asset certificate (issue 22, point 3) --------------------------------

PROVENANCE = {
    "rightsType": ["holding", "processing"],
    "nationalRegistrationCode": "GD-2026-DA-000123",
    "authorisation": {"digest": "0x" + "ab" * 32, "digestAlgorithm": "sm3", "date": "2025-12-01"},
    "complianceReport": {"digest": "0x" + "cd" * 32, "digestAlgorithm": "sha256"},
    "qualityReport": {"digest": "0x" + "ef" * 32, "digestAlgorithm": "sha256"},
}


def test_a_certificate_with_provenance_verifies_and_each_part_can_be_redacted(lw):
    w, issuer = lw
    doc = w.document(issuer, "DataAssetCertificate")
    doc["credentialSubject"].update(PROVENANCE)
    doc["credentialSubject"]["valuation"].update(
        appraiser="广东某资产评估有限公司", valuationDate="2025-12-31"
    )
    holder = w.issue(issuer, [doc])[0]
    assert verify(holder, trust=w.trust(), at=AT).valid
    red = redact(holder, ["/credentialSubject/authorisation", "/credentialSubject/valuation/appraiser"])
    assert verify(red, trust=w.trust(), at=AT).valid


@pytest.mark.parametrize(
    "over, where",
    [
        ({"rightsType": ["ownership"]}, "/credentialSubject/rightsType/0"),
        ({"rightsType": []}, "/credentialSubject/rightsType"),
        ({"authorisation": {"digest": "0x12", "digestAlgorithm": "sm3", "date": "2025-12-01"}}, "digest"),
        ({"authorisation": {"digest": "0x" + "ab" * 32, "digestAlgorithm": "sm3"}}, "'date' is a required"),
        ({"qualityReport": {"digest": "0x" + "ab" * 32, "digestAlgorithm": "md5"}}, "qualityReport"),
        ({"nationalRegistrationCode": "gd 2026"}, "nationalRegistrationCode"),
    ],
)
def test_malformed_provenance_is_refused_naming_the_member(lw, over, where):
    w, issuer = lw
    doc = w.document(issuer, "DataAssetCertificate")
    doc["credentialSubject"].update(over)
    with pytest.raises(InvalidDocument, match=re.escape(where)):
        prepare_credential(doc)
    holder = w.issue(issuer, [doc], validate=False)[0]
    check = verify(holder, trust=w.trust(), at=AT).check("format")
    assert check.status == "failed" and where in check.reason, check.reason


def test_the_c_run_is_the_reference_run():
    """ISO 7064 MOD 37,36's running value by the C accelerator, against the Python reference, on
    generated strings of the alphabet from every starting value (and -1 outside the alphabet)."""
    import random

    from verifier.licence_id import _ALPHABET, reference_run

    leaves = pytest.importorskip("verifier._internal._leaves", reason="the C accelerator is not built")
    rng = random.Random(7064)
    for _ in range(3000):
        text = "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(1, 40)))
        p = rng.randrange(36)
        assert leaves.mod37_36_run(p, text) == reference_run(p, text), (p, text)
    for bad in ("a", "Ä", "-", "12 3", "é1"):
        assert leaves.mod37_36_run(18, bad) == -1
    with pytest.raises(ValueError):
        leaves.mod37_36_run(36, "A")
    with pytest.raises(TypeError):
        leaves.mod37_36_run("18", "A")


def _tamper(text: str, at: int, char: str) -> str:
    at %= len(text) + 1
    return text[:at] + char + text[at + 1 :]


def _with_check(type_code: str, issuer: str, serial: str, version: str) -> str:
    """An identifier of these parts (in the form or not) whose check character is right for them."""
    body = type_code + issuer + serial + version
    check = mod_37_36.calc_check_digit(body) if re.fullmatch("[0-9A-Z]+", body) else "0"
    return f"1.2.156.3005.2.{type_code}.{issuer}.{serial}.{version}.{check}"


_identifiers = st.builds(
    lambda t, i, ser, v: make_licence_identifier(t, i, ser, v),
    _part,
    st.sampled_from([ISSUER, "91350100M000100Y43", "91440101MA5BANK009"]),
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=64),
    st.integers(1, 999),
)


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        _identifiers,
        st.builds(_tamper, _identifiers, st.integers(0, 200), st.sampled_from("0A9Z.a 1é")),
        st.builds(lambda x, cut: x[: cut % (len(x) + 1)], _identifiers, st.integers(0, 200)),
        st.builds(lambda x, extra: x + extra, _identifiers, st.sampled_from([".", "0", ".1", "A"])),
        st.builds(  # parts at and past their bounds: type and issuer 40, serial 64, version 3 digits
            lambda t, i, ser, v, c: f"1.2.156.3005.2.{t}.{i}.{ser}.{v}.{c}",
            st.text(alphabet="0A", min_size=0, max_size=41),
            st.sampled_from([ISSUER, ISSUER + "0", "0" * 40, ""]),
            st.text(alphabet="09", min_size=0, max_size=65),
            st.sampled_from(["001", "01", "0001", "00A", "999"]),
            st.sampled_from(["0", "Z", "", "00", "a"]),
        ),
        st.builds(  # any parts, with the check character MOD 37,36 gives them where it can
            _with_check,
            st.sampled_from(["X1", "CERTLEDGERBL001", "x1", "A" * 41]),
            st.sampled_from(
                [ISSUER, "91350100M000100Y44", "91350100M000100Y4", "A" * 18, "9135010OM000100Y43"]
            ),
            st.sampled_from(["S", "0123ABC", "S" * 65]),
            st.sampled_from(["001", "00A", "01", "0001"]),
        ),
        st.text(max_size=100),
    )
)
def test_the_fast_check_is_the_reference_on_any_text(text):
    """The accelerator's one pass (form, issuing body's credit code, check character) gives the
    table-driven reference's verdict on made identifiers, each changed, cut and extended, on parts
    at and past their bounds, and on any text."""
    assert is_valid_licence_identifier(text) is reference_is_valid_licence_identifier(text)


@pytest.mark.parametrize("value", [None, 7, b"1.2.156.3005.2.X.Y.Z.001.0", ["1.2.156.3005.2"]])
def test_what_is_not_a_str_is_not_an_identifier_on_either_path(value):
    assert is_valid_licence_identifier(value) is False
    assert reference_is_valid_licence_identifier(value) is False


def test_licence_key_is_the_accelerators_where_it_has_sha256_and_gives_the_references_keys():
    from verifier import licence_id
    from verifier._internal.accelerator import module

    native = module is not None and bool(module.native_sha256)
    assert (licence_id.licence_key is not licence_id.reference_licence_key) == native
    for identifier in (
        "",
        "1.2.156.3005.2.CERTLEDGERBL001.11440100MB2C92840J.0190F3A1.001.K",
        "示例",
        "x" * 200,
    ):
        assert licence_id.licence_key(identifier) == licence_id.reference_licence_key(identifier), identifier
