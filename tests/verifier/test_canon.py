"""The JCS fast path is byte-identical to the rfc8785 package; numbers are fenced."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier._internal.canon import MAX_SAFE_INTEGER, _check_tree, _tree_ok, jcs, jcs_unchecked
from verifier.errors import InvalidDocument, NumberOutOfRange

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=400, deadline=None)
@given(_text)
def test_strings_match_rfc8785_including_controls_and_non_ascii(value):
    assert jcs(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER))
def test_safe_integers_match_rfc8785(value):
    assert jcs(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value", [True, False, None, {}, [], "", "广州市天河区", '\x00\x1f\x7f\u2028"\\', "😀"]
)
def test_scalars_and_empty_containers_match_rfc8785(value):
    assert jcs(value) == rfc8785.dumps(value)


def test_chinese_text_is_not_escaped():
    assert jcs("营业执照") == '"营业执照"'.encode()


@pytest.mark.parametrize("value", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**30])
def test_integers_outside_safe_range_are_refused(value):
    with pytest.raises(NumberOutOfRange, match="2\\^53"):
        jcs(value, "/credentialSubject/recordCount")


def test_floats_are_refused():
    with pytest.raises(InvalidDocument, match="decimal strings"):
        jcs(1.5, "/x")


def test_lone_surrogates_are_refused():
    with pytest.raises(InvalidDocument, match="not valid Unicode"):
        jcs("\ud800")


# Non-empty containers (the credential's envelope, FORMAT.md §3.1): orjson with sorted keys, or
# rfc8785 itself when a key ordering could differ (characters above U+FFFF).
_keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _json, min_size=1, max_size=6))
def test_objects_match_rfc8785(value):
    assert jcs(value) == rfc8785.dumps(value)


def test_key_order_is_utf16_order_with_astral_keys():
    # U+1F600 sorts after U+E000 by code point, but before it by UTF-16 code unit (0xD83D < 0xE000)
    assert jcs({"\ue000": 2, "\U0001f600": 1}) == '{"\U0001f600":1,"\ue000":2}'.encode()
    value = {"\U0001f600": 1, "\ue000": 2, "a": [{"\U0001f600": True, "\ue000": None}]}
    assert jcs(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("value", "error", "where"),
    [
        ({"a": {"b": [1, 2.5]}}, InvalidDocument, "/x/a/b/1"),
        ({"a": [MAX_SAFE_INTEGER + 1]}, NumberOutOfRange, "/x/a/0"),
        ({"a/b": {"c~d": 10**20}}, NumberOutOfRange, "/x/a~1b/c~0d"),
        ({"a": {1: "x"}}, InvalidDocument, "/x/a"),
        ({"a": ("tuple",)}, InvalidDocument, "/x/a"),
        ({"a": b"bytes"}, InvalidDocument, "/x/a"),
    ],
)
def test_containers_refuse_what_json_cannot_carry(value, error, where):
    with pytest.raises(error, match=where):
        jcs(value, "/x")


_anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text | st.binary(max_size=2),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(_keys | st.integers(0, 3), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_anything)
def test_the_fast_tree_check_agrees_with_the_one_that_names_the_field(value):
    """``_tree_ok`` (no paths, the common case) refuses exactly what ``_check_tree`` refuses."""
    try:
        _check_tree(value, "")
        refused = False
    except (InvalidDocument, NumberOutOfRange):
        refused = True
    assert _tree_ok(value) is not refused


def test_lone_surrogates_inside_containers_are_refused():
    with pytest.raises(InvalidDocument):
        jcs({"a": ["ok", "\udc00"]}, "/x")


@settings(max_examples=400, deadline=None)
@given(_anything | st.dictionaries(_keys, _json, min_size=1, max_size=6))
def test_the_unchecked_writer_is_jcs_on_everything_jcs_accepts(value):
    """``jcs_unchecked`` (a presented credential's hash, whose own verification refuses floats) writes
    every value :func:`jcs` accepts byte for byte as it does; what jcs refuses it refuses with
    InvalidDocument, or writes (a float, a tuple: never part of a credential that verifies)."""
    try:
        expected = jcs(value)
    except (InvalidDocument, NumberOutOfRange):
        try:
            assert isinstance(jcs_unchecked(value), bytes)
        except (InvalidDocument, NumberOutOfRange):
            pass
        return
    assert jcs_unchecked(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"a": [MAX_SAFE_INTEGER + 1]},
        {"a": {"b": -(10**20)}},
        {"a": {1: "x"}},
        {"a": ["ok", "\udc00"]},
        {"a": b"x"},
    ],
)
def test_the_unchecked_writer_still_refuses_what_has_no_json_form(value):
    with pytest.raises(InvalidDocument):
        jcs_unchecked(value)
