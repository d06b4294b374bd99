"""Strict JSON reading: the fast path (the C duplicate-name scan, then orjson) gives the values and
the refusals of the reference (Python's json with a duplicate check), on generated documents and
on every kind of input the reference refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier._jsonio import loads_strict, reference_loads_strict

_leaves = pytest.importorskip(
    "verifier._internal._leaves",
    reason="the C accelerator is not built (no C compiler at install): the pure-Python path runs alone",
)

_names = st.text(max_size=6)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_names, inner, max_size=4),
    max_leaves=25,
)


def _outcome(fn, data):
    try:
        return "value", fn(data)
    except ValueError as exc:
        return "refused", str(exc)


def _same(a, b) -> bool:
    """Equal values with equal types (1 and 1.0 and True differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=400, deadline=None)
@given(_json, st.booleans())
def test_values_are_the_references(value, ascii_only):
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    kind, got = _outcome(loads_strict, data)
    ref_kind, expected = _outcome(reference_loads_strict, data)
    assert kind == ref_kind == "value"
    assert _same(got, expected)


@settings(max_examples=300, deadline=None)
@given(_json, st.data())
def test_mangled_documents_get_the_references_outcome(value, data):
    """A byte inserted, removed or changed anywhere: the same value or the same refusal."""
    text = bytearray(json.dumps(value).encode("utf-8"))
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    byte = data.draw(st.sampled_from(b'{}[],:"\\0123456789 eE.-+tfnaxu\x00\xff'))
    how = data.draw(st.sampled_from(["insert", "remove", "replace"]))
    if how == "insert":
        text.insert(at, byte)
    elif at < len(text):
        if how == "remove":
            del text[at]
        else:
            text[at] = byte
    kind, got = _outcome(loads_strict, bytes(text))
    ref_kind, expected = _outcome(reference_loads_strict, bytes(text))
    assert kind == ref_kind
    assert _same(got, expected) if kind == "value" else got == expected


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "a": 2}',
        b'{"x": {"a": 1, "b": 2, "a": 3}}',
        b'[{"a": 1}, {"a": 1, "a": 1}]',
        b'{"\\u0061": 1, "a": 2}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1',
        b'{"a": 1}}',
        b"",
        b"\xef\xbb\xbf{}",
        b'{"a": "\xff"}',
        b'{"a": "\x01"}',
        b'{"a": 1e400}',
        b'{"a": 123456789012345678901234567890}',
        b'{"a": "\\ud800"}',
        b'{"a": 1,}',
        b"[" * 2000 + b"]" * 2000,
        b'{"a": 1} x',
        b'{"a": 01}',
        b"{'a': 1}",
    ],
)
def test_edge_inputs_get_the_references_outcome(data):
    kind, got = _outcome(loads_strict, data)
    ref_kind, expected = _outcome(reference_loads_strict, data)
    assert kind == ref_kind
    assert _same(got, expected) if kind == "value" else got == expected


@pytest.mark.parametrize(
    ("data", "unique"),
    [
        (b'{"a": 1, "b": {"a": 2}}', True),
        (b'[{"a": 1}, {"a": 2}]', True),
        (b'{"a": "{\\"a\\": 1}", "b": 1}', True),
        (b'{"a": 1, "a": 2}', False),
        (b'{"a\\n": 1}', False),
        (b'{"n": 1234567890123456789}', False),
        (b'{"n": 123456789012345678}', True),
        (b'{"a": [1, 2}', False),
        (b'{"a": "open', False),
    ],
)
def test_keys_unique_is_sure_or_says_no(data, unique):
    assert _leaves.keys_unique(data) is unique


def test_keys_unique_takes_bytes_only():
    with pytest.raises(TypeError):
        _leaves.keys_unique('{"a": 1}')


def test_keys_unique_finds_every_quote_and_escape_wherever_it_falls():
    """The scan skips a string eight bytes at a time: a closing quote, an escaped quote or an escaped
    backslash at every offset, in names and values, and a duplicate name after long strings, are
    all seen; objects with more members than the small-object sort takes are checked too."""
    for offset in range(0, 20):
        pad = "x" * offset
        for value in (pad, pad + '\\"', pad + "\\\\", '\\"' + pad, pad + "é中" + pad):
            doc = f'{{"a{pad}": "{value}", "b": "{value}{pad}"}}'.encode()
            assert _leaves.keys_unique(doc) is True, doc
            assert _leaves.keys_unique(doc[:-2]) is False  # the last string never closes
            dup = f'{{"a{pad}": "{value}", "a{pad}": 1}}'.encode()
            assert _leaves.keys_unique(dup) is False, dup
            escaped_name = f'{{"a{pad}\\"": "{value}"}}'.encode()
            assert _leaves.keys_unique(escaped_name) is False, escaped_name
    many = {f"k{i:03d}": "v" * (i % 11) for i in range(40)}
    text = json.dumps(many).encode()
    assert _leaves.keys_unique(text) is True
    assert _leaves.keys_unique(text[:-1] + b', "k017": 0}') is False
