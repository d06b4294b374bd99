"""The C leaf walk (verifier/_internal/_leaves.c) answers what the pure-Python reference answers.

``_leaves.target_hash`` computes a credential's targetHash (FORMAT.md §3.3) in one pass, or returns
``None`` for any case it leaves to the reference. These tests hold it to
:func:`reference_target_hash` over :func:`leaves_of` and :func:`leaf_digest` on generated subjects
(nested objects and arrays, control characters, non-ASCII and astral text, ``~`` and ``/`` in member
names, empty containers, integers at the safe limits), with SHA-256 and SM3; check that every case
it must leave to the reference gives ``None``; hold its own SHA-256 to hashlib; and check that the
verifier's verdicts and reasons are the same with the accelerator and without it.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
import random
import subprocess
import sys

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier._verify as verify_module
from tests.support.factory import AT
from verifier import Verifier, redact
from verifier._internal import disclosure
from verifier._internal.canon import MAX_SAFE_INTEGER, jcs
from verifier._internal.disclosure import (
    SUITE_HASHES,
    envelope_of,
    leaf_digest,
    leaves_of,
    reference_target_hash,
)

_leaves = pytest.importorskip(
    "verifier._internal._leaves",
    reason="the C accelerator is not built (no C compiler at install): the pure-Python path runs alone",
)
if os.environ.get("CERTLEDGER_REQUIRE_SERVICES") and disclosure.accelerated_target_hash is None:
    pytest.fail("CI builds the C accelerator: verifier._internal._leaves is missing or turned off")

SHA256 = hashlib.sha256
SM3 = SUITE_HASHES["sm2-sm3"]
ENVELOPE = {"@context": ["https://www.w3.org/ns/credentials/v2"], "id": "urn:uuid:1", "type": ["X"]}


def _surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


_text = st.text(max_size=12).filter(lambda s: not _surrogate(s))
_scalar = (
    _text | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER) | st.booleans() | st.none()
)
_values = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)
_subjects = st.dictionaries(_text, _values, max_size=6)


def _document(subject):
    return {**ENVELOPE, "credentialSubject": subject}


def _salted(document):
    """Salts (path → hex) for every leaf, and the reference targetHash with each suite's hash."""
    leaves = leaves_of(document)
    salts = {path: "0x" + os.urandom(32).hex() for path, _ in leaves}
    return salts, leaves


def _reference(h, leaves, salts):
    pairs = [(path, leaf_digest(h, bytes.fromhex(salts[path][2:]), path, value)) for path, value in leaves]
    return reference_target_hash(h, pairs)


def _accelerated(h, document, salts):
    return _leaves.target_hash(h, salts, jcs(envelope_of(document)), document["credentialSubject"])


@settings(max_examples=300, deadline=None)
@given(_subjects)
def test_matches_the_reference_on_generated_subjects(subject):
    document = _document(subject)
    salts, leaves = _salted(document)
    for h in (SHA256, SM3):
        assert _accelerated(h, document, salts) == _reference(h, leaves, salts)


_envelopes = st.dictionaries(
    st.text(max_size=8).filter(lambda s: s not in ("proof", "credentialSubject") and not _surrogate(s)),
    _values,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(_envelopes, _subjects)
def test_writes_the_envelope_as_rfc8785_does(envelope, subject):
    """Given the document, it writes the envelope leaf itself: the same targetHash as from the
    envelope's RFC 8785 bytes — or None, only when a member name holds a character above U+FFFF."""
    document = {**envelope, "credentialSubject": subject, "proof": {"ignored": 1.5}}
    salts, leaves = _salted(document)
    got = _leaves.target_hash(SHA256, salts, document, subject)
    if got is None:
        assert _has_astral_name(envelope)
    else:
        assert got == _reference(SHA256, leaves, salts)
        assert got == _leaves.target_hash(SHA256, salts, rfc8785.dumps(envelope), subject)


def _has_astral_name(value) -> bool:
    if isinstance(value, dict):
        return any(any(ord(c) > 0xFFFF for c in k) or _has_astral_name(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_astral_name(v) for v in value)
    return False


@pytest.mark.parametrize(
    ("envelope", "why"),
    [
        ({"validFrom": 1.5}, "a float"),
        ({"n": 2**60}, "an unsafe integer"),
        ({"😀": "x"}, "a member name above U+FFFF (JCS sorts by UTF-16 code units)"),
        ({"a": {"\ud800": 1}}, "a lone surrogate in a name"),
        ({"a": ("t",)}, "a tuple"),
        ({"a": "\udfff"}, "a lone surrogate in text"),
    ],
)
def test_leaves_an_envelope_it_does_not_write_to_the_reference(envelope, why):
    document = {**envelope, "credentialSubject": {"a": "b"}}
    salts = {"": "0x" + "00" * 32, "/credentialSubject/a": "0x" + "01" * 32}
    assert _leaves.target_hash(SHA256, salts, document, document["credentialSubject"]) is None, why


@pytest.mark.parametrize(
    "subject",
    [
        {"a": '\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f"\\/', "b": "营业执照 😀 \u2028\ue000"},
        {"a~b/c": {"~": {"/": 1}}, "": [[], {}, [None, True, False]]},
        {"n": [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, -1]},
        {},
        {"😀": "astral member name", "\ue000": "private use"},
        {"deep": [[[[[[[[[[[["x"]]]]]]]]]]]]},
    ],
)
def test_matches_the_reference_on_edge_cases(subject):
    document = _document(subject)
    salts, leaves = _salted(document)
    assert _accelerated(SHA256, document, salts) == _reference(SHA256, leaves, salts)


def test_writes_text_as_the_reference_does_wherever_an_escape_falls():
    """The string writer copies eight bytes at a time until one needs an escape: every escaped
    character, and multi-byte UTF-8 that must not be taken for one, at every offset of short and
    longer text, in member names and in values."""
    specials = ['"', "\\", "\x00", "\x08", "\x1f", "\x7f", " ", "é", "¢", "\u00a2\u00dc", "€", "😀"]
    subject = {}
    for i, ch in enumerate(specials):
        for before in range(0, 18):
            for after in (0, 1, 7, 8, 9):
                subject[f"{i}-{before}-{after}" + ch * (before % 2)] = "a" * before + ch + "b" * after
    # the envelope too (its member names without the astral character, which it leaves to the reference)
    document = {**_document(subject), "termsOfUse": {k.replace("😀", "~"): v for k, v in subject.items()}}
    salts, leaves = _salted(document)
    assert _accelerated(SHA256, document, salts) == _reference(SHA256, leaves, salts)
    assert _leaves.target_hash(SHA256, salts, document, subject) == _reference(SHA256, leaves, salts)


def test_finds_each_salt_whatever_order_the_salts_are_in():
    """Salts in leaf order are read in place, one after the other; in any other order (or under a
    name that is not ASCII) each is looked up: the same targetHash either way."""
    subject = {"a": "1", "名称": "营业执照", "b": {"c": [1, 2], "d": None}, "e": "x" * 40}
    document = _document(subject)
    salts, leaves = _salted(document)
    expected = _reference(SHA256, leaves, salts)
    orders = [
        salts,
        dict(reversed(salts.items())),
        dict(sorted(salts.items())),
        dict(list(salts.items())[1:] + list(salts.items())[:1]),
    ]
    for order in orders:
        assert _accelerated(SHA256, document, order) == expected
        assert _leaves.target_hash(SHA256, order, document, subject) == expected


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d, s: d["credentialSubject"].__setitem__("f", 1.5), "a float"),
        (lambda d, s: d["credentialSubject"].__setitem__("f", MAX_SAFE_INTEGER + 1), "an unsafe integer"),
        (lambda d, s: d["credentialSubject"].__setitem__("f", -(2**70)), "a huge integer"),
        (lambda d, s: d["credentialSubject"].__setitem__("f", "\ud800"), "a lone surrogate"),
        (lambda d, s: d["credentialSubject"].__setitem__("\udfff", "x"), "a lone surrogate in a name"),
        (lambda d, s: d["credentialSubject"].__setitem__(7, "x"), "a non-text member name"),
        (lambda d, s: d["credentialSubject"].__setitem__("f", ("a",)), "a tuple"),
        (lambda d, s: d["credentialSubject"].__setitem__("f", b"x"), "bytes"),
        (lambda d, s: d["credentialSubject"].__setitem__("f", type("S", (str,), {})("x")), "a str subclass"),
        (lambda d, s: s.pop("/credentialSubject/name"), "a missing salt"),
        (lambda d, s: s.__setitem__("/credentialSubject/extra", "0x" + "00" * 32), "a salt for no leaf"),
        (lambda d, s: s.__setitem__("/credentialSubject/name", "0x" + "AB" * 32), "upper-case hex"),
        (lambda d, s: s.__setitem__("/credentialSubject/name", "0x" + "ab" * 31), "a short salt"),
        (lambda d, s: s.__setitem__("/credentialSubject/name", "0X" + "ab" * 32), "no 0x prefix"),
        (lambda d, s: s.__setitem__("/credentialSubject/name", "0x" + "ag" * 32), "a non-hex digit"),
        (lambda d, s: s.__setitem__("/credentialSubject/name", "0x" + "é" * 64), "non-ASCII"),
        (lambda d, s: s.__setitem__("/credentialSubject/name", bytes(32)), "a salt that is not text"),
    ],
)
def test_leaves_to_the_reference_what_it_does_not_compute(change, why):
    """Each case changes one thing of a document it computes (a value of f, the salt of name, one
    salt more or less), so the None is for that change."""
    document = _document({"name": "A", "n": 1, "f": "ok"})
    salts, _ = _salted(document)
    assert _accelerated(SHA256, document, salts) is not None  # as it was: computed
    change(document, salts)
    assert _accelerated(SHA256, document, salts) is None, why


def test_python_code_that_changes_the_document_mid_walk_does_not_break_it():
    """H, and a salts key's __eq__, are Python code the walk calls: one that empties the document's
    containers meanwhile gives some answer or None, never a crash (the sanitizer test runs this)."""
    for when in range(1, 8):
        doc = _document({"a": ["x", "y", ["z", "w"]], "b": {"c": "d", "e": {"f": "g"}}, "h": "i"})
        subject = doc["credentialSubject"]
        salts, _ = _salted(doc)
        calls = []

        def h(data, when=when, subject=subject, calls=calls):
            calls.append(1)
            if len(calls) == when:
                subject["a"][2].clear()
                subject["a"].clear()
                subject["b"]["e"].clear()
                subject["b"].clear()
                subject.clear()
            return hashlib.sha256(data)

        _leaves.target_hash(h, salts, jcs(envelope_of(doc)), subject)

    class Meddler:
        armed = False  # (inserting it into the salts compares it too)

        def __hash__(self):
            return hash("/credentialSubject/a/0")

        def __eq__(self, other):
            if self.armed:
                for value in list(subject.values()):
                    value.clear()
                subject.clear()
            return False

    doc = _document({"a": ["x", "y", "z"]})
    subject = doc["credentialSubject"]
    meddler = Meddler()
    salts = {meddler: "0x" + "00" * 32, **_salted(doc)[0]}  # probed before the path it collides with
    meddler.armed = True
    assert _leaves.target_hash(SHA256, salts, jcs(envelope_of(doc)), subject) is None
    assert subject == {}  # it did meddle


def test_parse_proof_leaves_a_proof_with_a_name_that_is_not_text_to_the_reference(world):
    from verifier._holder import PROOF_TYPE
    from verifier._proof import ParsedProof

    proof = copy.deepcopy(world.batches[("secp256k1", "BusinessLicence")][0]["proof"])
    assert _leaves.parse_proof(proof, ParsedProof, PROOF_TYPE) is not None
    proof[1] = "x"
    assert _leaves.parse_proof(proof, ParsedProof, PROOF_TYPE) is None
    del proof[1]
    proof["anchor"][2] = "y"
    assert _leaves.parse_proof(proof, ParsedProof, PROOF_TYPE) is None


def test_nesting_deeper_than_it_walks_is_left_to_the_reference():
    value: object = "x"
    for _ in range(40):
        value = [value]
    document = _document({"deep": value})
    salts, leaves = _salted(document)
    assert _accelerated(SHA256, document, salts) is None
    assert _reference(SHA256, leaves, salts)  # the reference still computes it


def test_bad_arguments_are_a_type_error():
    with pytest.raises(TypeError):
        _leaves.target_hash(SHA256, [], b"{}", {})
    with pytest.raises(TypeError):
        _leaves.target_hash(SHA256, {}, "{}", {})
    with pytest.raises(TypeError):
        _leaves.target_hash(SHA256, {}, b"{}")


def test_own_sha256_matches_hashlib():
    if not _leaves.native_sha256:
        pytest.skip("this CPU has no SHA extensions: every hash goes through hashlib")
    for n in [*range(0, 260), 1000, 4095, 4096, 65_537]:
        data = os.urandom(n)
        assert _leaves.sha256(data) == hashlib.sha256(data).digest(), n


def test_own_sha256_of_messages_side_by_side_matches_hashlib():
    """target_hash hashes a credential's leaves in two lanes side by side (sha256_lanes): every pair
    of lengths around the block boundaries, either one longer, and runs of messages whose lengths
    make the lanes take turns; none, and one alone."""
    if not _leaves.native_sha256:
        pytest.skip("this CPU has no SHA extensions: every hash goes through hashlib")
    lengths = [0, 1, 54, 55, 56, 63, 64, 65, 119, 120, 127, 128, 200, 1000]
    for na in lengths:
        for nb in lengths:
            a, b = os.urandom(na), os.urandom(nb)
            want = [hashlib.sha256(a).digest(), hashlib.sha256(b).digest()]
            assert _leaves.sha256_many([a, b]) == want, (na, nb)
    rng = random.Random(7)
    for count in [0, 1, 3, 17, 40]:
        messages = [os.urandom(rng.choice(lengths)) for _ in range(count)]
        assert _leaves.sha256_many(messages) == [hashlib.sha256(m).digest() for m in messages], count
    with pytest.raises(TypeError):
        _leaves.sha256_many([b"a", "b"])
    with pytest.raises(TypeError):
        _leaves.sha256_many((b"a",))


def _reference_licence_key(identifier: str) -> int:
    """verifier.licence_id.reference_licence_key written out with hashlib."""
    return int.from_bytes(hashlib.sha256(identifier.encode("utf-8")).digest()[:8], "big", signed=True)


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=300)
    | st.from_regex(r"1\.2\.156\.3005\.2\.[0-9A-Z]{15}\.[0-9A-Z]{18}\.[0-9A-Z]{32}\.001\.[0-9A-Z]")
)
def test_licence_key_is_the_first_eight_bytes_of_sha256_as_a_signed_int(identifier):
    """Both signs (the top bit of the digest's first byte), every length through SHA-256's padding
    boundaries, text past ASCII; a lone surrogate is refused as str.encode refuses it."""
    if not _leaves.native_sha256:
        pytest.skip("this CPU has no SHA extensions: verifier.licence_id.licence_key is the reference")
    try:
        expected = _reference_licence_key(identifier)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _leaves.licence_key(identifier)
    else:
        assert _leaves.licence_key(identifier) == expected


def test_licence_key_of_known_digests_and_refusals():
    if not _leaves.native_sha256:
        pytest.skip("this CPU has no SHA extensions: verifier.licence_id.licence_key is the reference")
    # sha256("") = e3b0c442 98fc1c14 …: the top bit set, a negative key; sha256("abc") = ba7816bf …
    assert (
        _leaves.licence_key("") == int.from_bytes(bytes.fromhex("e3b0c44298fc1c14"), "big", signed=True) < 0
    )
    assert _leaves.licence_key("a" * 55) == _reference_licence_key("a" * 55)  # one block exactly padded
    assert _leaves.licence_key("x") == _reference_licence_key("x") and _leaves.licence_key("x") > 0
    for value in (b"1.2.156", None, 7):
        with pytest.raises(TypeError, match="a licence identifier is text"):
            _leaves.licence_key(value)


# ---- an enterprise holder's subject half and leaf ---------------------------------------------------
_LABEL = b"certledger/subject-salt/v1\x00"


def _reference_subject_leaf(key: bytes, identifier: str, target: bytes) -> tuple[bytes, bytes]:
    """FORMAT.md §1 and §4 written out with hmac and eth_hash, independently of verifier._holder."""
    from eth_hash.auto import keccak

    salt = hmac.digest(key, _LABEL + identifier.encode("utf-8"), "sha256")
    subject = keccak(salt + identifier.encode("utf-8"))
    return subject, keccak(keccak(target + subject))


def _key_block(key: bytes) -> bytes:
    return (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")


@settings(max_examples=400, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=130),  # past SHA-256's 64-byte block: HMAC hashes the key
    identifier=st.text(max_size=520),  # past the 512 bytes it takes: None, the reference decides
    target=st.binary(min_size=32, max_size=32),
)
def test_subject_leaf_is_hmac_keccak_and_the_leaf_or_none(key, identifier, target):
    if not _leaves.native_sha256:
        pytest.skip("this CPU has no SHA extensions: subject_leaf leaves every case to the reference")
    got = _leaves.subject_leaf(_key_block(key), _LABEL, identifier, target)
    if len(identifier.encode("utf-8")) > 512:
        assert got is None
    else:
        assert got == _reference_subject_leaf(key, identifier, target)


@pytest.mark.parametrize(
    "args",
    [
        (b"k" * 63, _LABEL, "91440101MA5CYYYY0X", b"t" * 32),  # not a 64-byte key block
        (bytearray(b"k" * 64), _LABEL, "91440101MA5CYYYY0X", b"t" * 32),
        (b"k" * 64, _LABEL, "91440101MA5CYYYY0X", b"t" * 31),  # not a 32-byte targetHash
        (b"k" * 64, _LABEL, "91440101MA5CYYYY0X", None),
        (b"k" * 64, _LABEL, b"91440101MA5CYYYY0X", b"t" * 32),  # not text
        (b"k" * 64, _LABEL, "\ud800", b"t" * 32),  # a lone surrogate: not UTF-8
        (b"k" * 64, b"l" * 513, "91440101MA5CYYYY0X", b"t" * 32),
    ],
)
def test_subject_leaf_leaves_what_it_does_not_take_to_the_reference(args):
    assert _leaves.subject_leaf(*args) is None
    with pytest.raises(TypeError):
        _leaves.subject_leaf(*args[:3])


def test_pure_python_switch_turns_it_off():
    code = "from verifier._internal import disclosure; print(disclosure.accelerated_target_hash)"
    env = {**os.environ, "CERTLEDGER_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


@pytest.mark.parametrize("suite", ["secp256k1", "sm2-sm3"])
def test_verifier_gives_the_same_verdicts_and_reasons_with_and_without_it(monkeypatch, world, trust, suite):
    """Good, redacted and tampered credentials: each check's status and reason are the same on both paths."""
    good = world.batches[(suite, "BusinessLicence")][0]
    cases = {"good": good, "redacted": redact(good, ["/credentialSubject/address"])}
    for name, (path, value) in {
        "changed field": (("credentialSubject", "enterpriseName"), "另一家公司"),
        "changed envelope": (("validFrom",), "2020-01-01T00:00:00Z"),
        "float": (("credentialSubject", "registeredCapital", "amount"), 1.5),
        "bad salt": (("proof", "salts", "/credentialSubject/address"), "0x" + "ZZ" * 32),
    }.items():
        doc = copy.deepcopy(good)
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        cases[name] = doc
    extra = copy.deepcopy(good)
    extra["credentialSubject"]["note"] = "added"
    cases["added field"] = extra

    def verdicts():
        verifier = Verifier(trust=trust)
        return {
            name: [(c.name, c.status, c.reason) for c in verifier.verify(copy.deepcopy(doc), at=AT).checks]
            for name, doc in cases.items()
        }

    accelerated = verdicts()
    monkeypatch.setattr(verify_module, "accelerated_target_hash", None)
    assert verdicts() == accelerated
    assert accelerated["good"][1][1] == "passed" and accelerated["redacted"][1][1] == "passed"
    for name, checks in accelerated.items():
        if name not in ("good", "redacted"):
            assert "failed" in (checks[0][1], checks[1][1]), (name, checks[:2])


# -- parse_proof ----------------------------------------------------------------------------------

_BAD_VALUES = [
    None,
    True,
    -1,
    2**16,
    2**32,
    2**64,
    1.0,
    "",
    "0x",
    "0X" + "ab" * 32,
    "0x" + "AB" * 32,
    "0x" + "ab" * 31,
    "0x" + "ab" * 33,
    "0x" + "ab" * 20,
    "0x" + "ab" * 65,
    "0x" + "ab" * 64,
    " 0x" + "ab" * 32,
    "0x" + "ab " * 32,
    [],
    {},
    ["0x" + "ab" * 32],
    {"x": 1},
    "CertledgerMerkleProof2026",
    "secp256k1",
    "sm2-sm3",
]


def _proofs(world):
    for (suite, _type_name), copies in world.batches.items():
        yield suite, copies[0]["proof"]


def test_parse_proof_matches_the_reference_on_issued_proofs(world):
    from verifier._holder import PROOF_TYPE
    from verifier._proof import ParsedProof, reference_parse_proof

    for _suite, proof in _proofs(world):
        fast = _leaves.parse_proof(proof, ParsedProof, PROOF_TYPE)
        assert fast is not None and type(fast) is ParsedProof
        assert fast == reference_parse_proof(proof)


def test_parse_proof_is_never_looser_than_the_reference(world):
    """Every member replaced by every bad value, members added and removed: wherever the reference
    refuses, the accelerator returns None; wherever it answers, it answers the reference's value."""
    from verifier._holder import PROOF_TYPE
    from verifier._proof import ParsedProof, reference_parse_proof
    from verifier.errors import InvalidDocument

    answered = refused = 0
    for _suite, proof in _proofs(world):
        variants = []
        for key in [*proof, "anchor/chainId", "anchor/anchorRegistry", "anchor/txHash", "anchor/blockNumber"]:
            for bad in [*_BAD_VALUES, "__delete__"]:
                p = copy.deepcopy(proof)
                target, name = (p["anchor"], key.split("/")[1]) if key.startswith("anchor/") else (p, key)
                if bad == "__delete__":
                    target.pop(name, None)
                else:
                    target[name] = copy.deepcopy(bad)
                variants.append(p)
        for extra in ({"note": 1}, {"redactedDigests": {"/credentialSubject/address": "0x" + "00" * 32}}):
            variants.append({**copy.deepcopy(proof), **extra})
        p = copy.deepcopy(proof)
        p["anchor"]["extra"] = 1
        variants.append(p)
        p = copy.deepcopy(proof)
        p["merkleProof"] = ["0x" + "ab" * 32] * 65
        variants.append(p)
        for p in variants:
            fast = _leaves.parse_proof(p, ParsedProof, PROOF_TYPE)
            try:
                expected = reference_parse_proof(p)
            except InvalidDocument:
                assert fast is None, p
                refused += 1
                continue
            assert fast is None or fast == expected, p
            answered += fast is not None
    assert answered > 50 and refused > 500  # both sides were exercised


def test_parse_proof_takes_only_dicts():
    from verifier._proof import ParsedProof

    for value in (None, [], "proof", 1):
        assert _leaves.parse_proof(value, ParsedProof, "CertledgerMerkleProof2026") is None
    with pytest.raises(TypeError):
        _leaves.parse_proof({}, ParsedProof)


@pytest.mark.parametrize("suite", [[], {}, ["secp256k1"]])
def test_an_unhashable_suite_is_a_format_failure_not_a_crash(world, trust, suite):
    """Found by the test above: ``proof.suite`` a list or object ended verification in a TypeError."""
    doc = copy.deepcopy(world.batches[("secp256k1", "BusinessLicence")][0])
    doc["proof"]["suite"] = suite
    result = Verifier(trust=trust).verify(doc, at=AT)
    assert not result.valid
    assert result.checks[0].name == "format" and result.checks[0].status == "failed"
    assert "proof.suite" in result.checks[0].reason


# -- the issuer's seeded salts (a SHAKE256 stream read in leaf order) -------------------------------


def test_own_shake256_matches_hashlib():
    """The stream the seeded salts are read from, at every length around SHAKE256's 136-byte rate,
    for inputs of one block, exactly one, and more."""
    for size in (0, 1, 51, 135, 136, 137, 300):
        data = os.urandom(size)
        reference = hashlib.shake_256(data).digest(1500)
        for n in [*range(0, 300), 543, 544, 545, 1500]:
            assert _leaves.shake256(data, n) == reference[:n], (size, n)
    with pytest.raises(ValueError):
        _leaves.shake256(b"", -1)
    with pytest.raises(TypeError):
        _leaves.shake256(b"", 1.0)


@settings(max_examples=200, deadline=None)
@given(_subjects, st.binary(min_size=32, max_size=32))
def test_seeded_target_hash_matches_the_reference(subject, seed):
    """The issuer's path (salts from a seed, FORMAT.md §3.2) with the C walk reading the SHAKE256
    stream itself, against the reference's flatten, salt pool and digests."""
    from verifier._internal.disclosure import _seeded_target_hash, flatten, seeded_target_hash_of_parts

    envelope = rfc8785.dumps(ENVELOPE)
    leaves: list = []
    flatten(subject, "/credentialSubject", leaves)
    expected = _seeded_target_hash(envelope, leaves, SHA256, seed)
    assert seeded_target_hash_of_parts(envelope, subject, SHA256, seed) == expected


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 16, 17, 47, 48, 49, 70, 200])
def test_the_seeded_stream_gives_each_leaf_its_salt_across_block_boundaries(monkeypatch, n):
    """Subjects of n leaves (a salt straddles SHAKE256's 136-byte blocks from the fifth leaf on):
    the C walk's targetHash is the pure-Python path's, and a leaf it leaves to the reference (a
    float) makes its answer None, so the reference decides."""
    from verifier._internal import disclosure as d

    envelope, seed = rfc8785.dumps(ENVELOPE), bytes(range(32))
    subject = {f"k{i:03d}": str(i) for i in range(n)}
    accelerated = _leaves.target_hash(SHA256, b"certledger/salts/v1" + seed, envelope, subject)
    assert type(accelerated) is bytes
    assert d.seeded_target_hash_of_parts(envelope, subject, SHA256, seed) == accelerated
    monkeypatch.setattr(d, "accelerated_target_hash", None)
    assert d.seeded_target_hash_of_parts(envelope, subject, SHA256, seed) == accelerated
    with_float = {**subject, "z": 1.5}
    assert _leaves.target_hash(SHA256, b"certledger/salts/v1" + seed, envelope, with_float) is None


def test_a_seed_of_another_length_is_refused_by_the_reference():
    from verifier._internal.disclosure import seeded_target_hash_of_parts

    with pytest.raises(ValueError, match="32 bytes"):
        seeded_target_hash_of_parts(rfc8785.dumps(ENVELOPE), {"a": "x"}, SHA256, bytes(31))


# -- memory safety ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_clean_under_the_address_and_undefined_behaviour_sanitizers(tmp_path):
    """The accelerator built with -fsanitize=address,undefined (a copy of the verifier package) runs
    this file's tests and those of strict JSON reading and the licence identifier; any invalid read or
    write, use after free or undefined behaviour ends the run with the sanitizer's report."""
    import shutil
    import sysconfig
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc: the sanitizer build needs it")
    runtimes = [
        subprocess.run([gcc, f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
        for lib in ("libasan.so", "libubsan.so")
    ]
    if not all(os.path.isabs(r) and os.path.exists(r) for r in runtimes):
        pytest.skip("gcc has no sanitizer runtimes (libasan, libubsan)")
    package = tmp_path / "verifier"
    shutil.copytree(root / "verifier", package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    built = subprocess.run(
        [
            gcc,
            "-shared",
            "-fPIC",
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            f"-I{sysconfig.get_paths()['include']}",
            str(package / "_internal" / "_leaves.c"),
            "-o",
            str(package / "_internal" / ("_leaves" + sysconfig.get_config_var("EXT_SUFFIX"))),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}",
        "LD_PRELOAD": " ".join(runtimes),
        "ASAN_OPTIONS": "detect_leaks=0",  # CPython's own allocations are not this module's leaks
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }
    env.pop("CERTLEDGER_PURE_PYTHON", None)
    probe = "import verifier._internal._leaves as m; print(m.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert where.stdout.strip().startswith(str(tmp_path)), where.stdout + where.stderr
    tests = [
        str(root / "tests" / "verifier" / name)
        for name in (
            "test_leaves_accelerator.py",
            "test_jsonio.py",
            "test_licence_id.py",
            "test_uscc.py",
            "test_keccak.py",
        )
    ]
    run = subprocess.run(
        # from the copy's folder, the tests' folder appended to sys.path: the copy is the verifier imported
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=append",
            "-m",
            "not slow",
        ]
        + tests,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr, run.stderr[-3000:]


# ---- the Merkle path ---------------------------------------------------------------------------


def _eth_hash_keccak(data: bytes) -> bytes:
    from eth_hash.auto import keccak

    out: bytes = keccak(data)
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True),
    st.integers(0, 50),
    st.sampled_from(["the accelerator's own", "a Python function"]),
)
def test_merkle_root_matches_the_reference_through_a_shared_cache(leaves, limit, keccak):
    """Every leaf's path leads to the root OZ's tree has, as merkle.process_proof computes it, with one
    cache shared by all the paths (cleared whenever it outgrows ``limit``), which holds only true
    parents afterwards: hashing itself (given its own keccak256) or calling the function given."""
    from verifier._internal.merkle import StandardMerkleTree, leaf_hash, process_proof

    keccak256 = _leaves.keccak256 if keccak == "the accelerator's own" else _eth_hash_keccak

    pairs = [(leaf, leaf[::-1]) for leaf in leaves]
    tree = StandardMerkleTree.of(pairs)
    nodes: dict[bytes, bytes] = {}
    for i, (t, s) in enumerate(pairs):
        leaf, path = leaf_hash(t, s), tuple(tree.proof(i))
        assert (
            _leaves.merkle_root(leaf, path, nodes, keccak256, limit) == process_proof(leaf, path) == tree.root
        )
        assert len(nodes) <= limit + 1
    assert all(_eth_hash_keccak(pair) == parent for pair, parent in nodes.items())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_merkle_tree_is_the_references_tree(leaves):
    """The whole tree array, for any number of leaves, in any order, repeated ones included."""
    from verifier._internal.merkle import tree_of_leaves

    assert _leaves.merkle_tree(b"".join(leaves)) == b"".join(tree_of_leaves(leaves))


def test_merkle_tree_of_a_batch_and_its_bad_arguments():
    import os

    from verifier._internal.merkle import tree_of_leaves

    leaves = [os.urandom(32) for _ in range(10_001)]
    assert _leaves.merkle_tree(b"".join(leaves)) == b"".join(tree_of_leaves(leaves))
    for bad in (b"", b"\x01" * 31, b"\x01" * 33):
        with pytest.raises(ValueError, match="multiple of 32 bytes"):
            _leaves.merkle_tree(bad)
    for not_bytes in (bytearray(32), "0x" + "00" * 32, None):
        with pytest.raises(TypeError, match="the leaves are bytes"):
            _leaves.merkle_tree(not_bytes)


def test_merkle_root_leaves_what_is_not_plain_to_the_reference():
    from verifier._internal.keccak import keccak256

    leaf, sibling = b"\x01" * 32, b"\x02" * 32
    assert _leaves.merkle_root(leaf, (), {}, keccak256, 10) == leaf
    for leaf_, path in [
        (leaf, [sibling]),  # a list, not the parsed proof's tuple
        (leaf, (sibling[:31],)),
        (leaf, (bytearray(sibling),)),
        (leaf[:31], (sibling,)),
        ("0x" + leaf.hex(), (sibling,)),
    ]:
        assert _leaves.merkle_root(leaf_, path, {}, keccak256, 10) is None
    assert _leaves.merkle_root(leaf, (sibling,), {}, lambda pair: pair[:31], 10) is None  # not a digest
    poisoned = {leaf + sibling: "not bytes"}  # a cache a caller filled with something else
    assert _leaves.merkle_root(leaf, (sibling,), poisoned, keccak256, 10) is None


def test_merkle_root_passes_on_the_hash_functions_error_and_refuses_bad_arguments():
    def broken(pair: bytes) -> bytes:
        raise RuntimeError("no keccak here")

    with pytest.raises(RuntimeError, match="no keccak here"):
        _leaves.merkle_root(b"\x01" * 32, (b"\x02" * 32,), {}, broken, 10)
    for args in [(), (b"\x01" * 32, (), [], None, 1), (b"\x01" * 32, (), {}, None, "1")]:
        with pytest.raises(TypeError):
            _leaves.merkle_root(*args)
