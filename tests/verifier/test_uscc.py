"""GB 32100-2015 unified social credit codes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.uscc import ALPHABET, WEIGHTS, check_character, is_valid_uscc, reference_is_valid_uscc

# Codes whose check character was computed by the GB 32100-2015 algorithm (the first is the
# standard's widely published example, 91350100M000100Y43).
KNOWN_GOOD = ["91350100M000100Y43", "91440101MA5BANK009", "121000004000003980", "91110000802100433B"]


def _codes(n: int = 40) -> list[str]:
    rng = random.Random(32100)
    out = []
    for _ in range(n):
        body = "".join(rng.choice(ALPHABET) for _ in range(17))
        out.append(body + check_character(body))
    return out


def test_weights_are_powers_of_three_mod_31():
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@pytest.mark.parametrize("code", KNOWN_GOOD)
def test_known_good_codes_validate(code):
    assert check_character(code[:17]) == code[17]
    assert is_valid_uscc(code)


@pytest.mark.parametrize("code", KNOWN_GOOD + _codes(10))
def test_every_single_character_mutation_is_rejected(code):
    for i in range(18):
        for c in ALPHABET + "IOSVZa-":
            if c != code[i]:
                assert not is_valid_uscc(code[:i] + c + code[i + 1 :]), (code, i, c)


def test_wrong_lengths_and_types_are_rejected():
    assert not is_valid_uscc("91350100M000100Y4")
    assert not is_valid_uscc("91350100M000100Y433")
    assert not is_valid_uscc(None)
    assert not is_valid_uscc(91350100)


def test_check_character_refuses_bad_input():
    with pytest.raises(ValueError):
        check_character("9135010OM000100Y4")  # letter O is not in the alphabet


def test_validation_agrees_with_the_weighted_sum_for_every_last_character():
    # both paths (the accelerator's table and weights; the reference's base-34 digits, 34 ≡ 3 mod 31)
    # against the standard's formula, written out, for every possible 18th character
    for code in _codes(200):
        body = code[:17]
        total = sum(ALPHABET.index(c) * w for c, w in zip(body, WEIGHTS))
        for last in ALPHABET:
            expected = ALPHABET.index(last) == (31 - total % 31) % 31
            assert is_valid_uscc(body + last) is reference_is_valid_uscc(body + last) is expected, body + last


def test_what_int_would_tolerate_is_still_refused():
    good = "91350100M000100Y43"
    for bad in [
        "9135_100M000100Y43",
        " 1350100M000100Y43",
        "+1350100M000100Y43",
        good.lower(),
        "91350100m000100Y43",
        "９1350100M000100Y43",
    ]:
        assert not is_valid_uscc(bad), bad


class _Str(str):
    pass


_near_codes = st.one_of(
    st.text(alphabet=ALPHABET + "IOSVZ0a_ ９é", min_size=0, max_size=20),
    st.sampled_from(_codes(60)).flatmap(  # a valid code with one character changed, or kept
        lambda code: st.tuples(st.integers(0, 17), st.sampled_from(ALPHABET + "IOSVZa.")).map(
            lambda change: code[: change[0]] + change[1] + code[change[0] + 1 :]
        )
    ),
)


@settings(max_examples=600, deadline=None)
@given(_near_codes)
def test_the_fast_check_is_the_reference_on_any_text(text):
    assert is_valid_uscc(text) is reference_is_valid_uscc(text)


@pytest.mark.parametrize(
    "value", [None, 91350100, b"91350100M000100Y43", ["91350100M000100Y43"], _Str(KNOWN_GOOD[0])]
)
def test_what_is_not_a_str_is_not_a_code_on_either_path(value):
    assert is_valid_uscc(value) is False and reference_is_valid_uscc(value) is False
