"""The JCS fast path is byte-identical to the rfc8785 package; numbers are fenced."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier._internal.canon import MAX_SAFE_INTEGER, jcs
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
