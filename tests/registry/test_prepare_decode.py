"""orjson where it reads JSON as json does, json where it does not: `decode_record` (an uploaded
record, in the issuance workers) is held to `RECORD_DECODER.decode` (the reference), and the verify
route's body to `json.loads`, on generated texts and on the cases orjson reads otherwise (an integer
beyond 64 bits, which it reads as a float) or refuses (NaN, lone surrogates, deep nesting)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.api.routes.verify import _parse
from registry.services.prepare import RECORD_DECODER, decode_record


def _same(a, b) -> bool:
    """Equal values of the same types, all the way down (1 == 1.0 in Python; not here)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _outcome(decode, text):
    try:
        return "value", decode(text)
    except ValueError as exc:
        return "error", str(exc)
    except RecursionError:
        return "error", "recursion"


def _assert_same(text: str) -> None:
    """The text, and its UTF-8 bytes (as the bulk route hands a JSON Lines line to the workers),
    decode to the reference's value or are refused with its message; bytes that are not UTF-8 (a
    lone surrogate written as it is, CESU-8) are refused as such."""
    (kind, got), (ref_kind, ref) = _outcome(decode_record, text), _outcome(RECORD_DECODER.decode, text)
    assert kind == ref_kind, text
    assert _same(got, ref) if kind == "value" else got == ref, text
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        kind, got = _outcome(decode_record, text.encode("utf-8", "surrogatepass"))
        assert kind == "error" and got.startswith("it is not UTF-8 (byte "), (text, got)
        return
    kind, got = _outcome(decode_record, data)
    assert kind == ref_kind, text
    assert _same(got, ref) if kind == "value" else got == ref, text


EDGES = [
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "123456789012345678",
    '{"recordCount": 18446744073709551617, "a": 1}',
    '{"digest": "0x1234567890123456789"}',  # a long run in a string: left to json, same value
    "1e400",
    "-1e400",
    "0.1e-400",
    "1.0",
    "-0",
    "-0.0",
    "NaN",
    '{"a": Infinity}',
    '"\\ud800"',
    '{"\\udfff": 1}',
    '{"a": 1, "a": 2}',
    "[" * 2000 + "]" * 2000,
    "[" * 1100 + "]" * 1100,
    "",
    " ",
    '{"a": 1,}',
    '"\x01"',
    '{"a":"\\u0000"}',
    "\ufeff{}",
    '{"a": 1} x',
    '{"a": "\ud800 raw"}',  # a lone surrogate as it is: text json reads, bytes that are not UTF-8
]


@pytest.mark.parametrize("text", EDGES)
def test_decode_record_is_the_reference_on_the_edges(text):
    _assert_same(text)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_JSON, st.booleans())
def test_decode_record_is_the_reference_on_generated_json(value, ascii_only):
    _assert_same(json.dumps(value, ensure_ascii=ascii_only))


@settings(max_examples=300, deadline=None)
@given(
    _JSON,
    st.integers(min_value=0, max_value=200),
    st.sampled_from(["", "x", "]", "}", ",", '"', "\\", "1", "e"]),
)
def test_decode_record_is_the_reference_on_damaged_json(value, at, insert):
    text = json.dumps(value, ensure_ascii=False)
    at = at % (len(text) + 1)
    _assert_same(text[:at] + insert + text[at + 1 :])


@pytest.mark.parametrize(
    "body",
    [
        b'{"credential": {"recordCount": 18446744073709551616}}',
        b'{"credential": {"recordCount": -9223372036854775809, "n": 1.5}}',
        b'{"credential": {"recordCount": 12345}, "at": null}',
    ],
)
def test_the_verify_route_reads_a_body_as_json_does(body):
    assert _same(_parse(body, "application/json").credential, json.loads(body)["credential"])


@pytest.mark.parametrize(
    ("data", "byte"),
    [(b'{"a": "\xc3\x28"}', 8), (b"\xff", 1), (b'{"a": "\xed\xa0\x80"}', 8), (b'{"a": 1}\xe7\xa4', 9)],
)
def test_bytes_that_are_not_utf8_are_refused_naming_the_byte(data, byte):
    with pytest.raises(ValueError, match=rf"^it is not UTF-8 \(byte {byte} of the line\)$"):
        decode_record(data)
