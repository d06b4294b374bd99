"""The compiled schema fast path agrees with jsonschema (the reference) on valid and mutated input."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.factory import World
from tests.verifier.strategies import SUBJECTS
from verifier._internal.disclosure import flatten, parse_pointer
from verifier._internal.fastschema import compile_schema
from verifier._schema import fast_validator_for, validator_for

_w = World()
_issuer = _w.add_issuer()
_replacements = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**60),
    st.text(max_size=5),
    st.just("91350100M000100Y43"),
    st.just("2026-13-01"),
    st.just("2026-01-01T00:00:00Z"),
    st.just([]),
    st.just({}),
    st.just(["a"]),
    st.just("CNY"),
    st.just("core"),
)


def _agree(type_name, doc):
    reference = not any(True for _ in validator_for(type_name).iter_errors(doc))
    assert fast_validator_for(type_name)(doc) is reference, doc
    # the fast validator ignores a `proof` member (the reference validates the document without it)
    assert fast_validator_for(type_name)({**doc, "proof": {"anything": 1}}) is reference


@pytest.mark.parametrize("type_name", sorted(SUBJECTS))
def test_agrees_on_valid_and_mutated_documents(type_name):
    @settings(max_examples=60, deadline=None)
    @given(subject=SUBJECTS[type_name](), data=st.data())
    def run(subject, data):
        doc = _w.document(_issuer, type_name, subject=subject)
        _agree(type_name, doc)
        leaves: list = []
        for k, v in doc.items():
            flatten(v, "/" + k, leaves)
        path, _ = data.draw(st.sampled_from(leaves))
        mutated = copy.deepcopy(doc)
        tokens = parse_pointer(path)
        node = mutated
        for t in tokens[:-1]:
            node = node[int(t)] if isinstance(node, list) else node[t]
        key = int(tokens[-1]) if isinstance(node, list) else tokens[-1]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[key] = data.draw(_replacements)
        elif action == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[data.draw(st.text(max_size=4))] = data.draw(_replacements)
        else:
            node.append(data.draw(_replacements))
        _agree(type_name, mutated)

    run()


def test_unsupported_keywords_refuse_to_compile():
    with pytest.raises(ValueError, match="does not support"):
        compile_schema({"type": "object", "patternProperties": {"x": {}}}, {})


def test_const_is_type_strict_like_jsonschema():
    check = compile_schema({"const": [1, "a"]}, {})
    assert check([1, "a"]) and check([1.0, "a"]) and not check([True, "a"]) and not check(["1", "a"])


@pytest.mark.parametrize(
    "constant", [[], ["a", "b"], [str(i) for i in 12 * [0]], [str(i) for i in range(12)]]
)
def test_a_const_list_of_text_takes_exactly_text(constant):
    """Short lists are checked item by item, long ones with all(): either way an item equal to the
    constant's but not exactly text (a str subclass, as a caller's own dict may hold) is refused."""

    class Text(str):
        pass

    check = compile_schema({"const": constant}, {})
    assert check(list(constant))
    assert not check([*constant, "x"]) and not check(("a", "b")) and not check("ab")
    for i in range(len(constant)):
        assert not check([*constant[:i], Text(constant[i]), *constant[i + 1 :]]), i
        assert not check(constant[:i] + constant[i + 1 :]), i


_OBJECT_SCHEMAS = [
    # every key required: the key count stands in for additionalProperties
    {
        "type": "object",
        "required": ["a", "b"],
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "additionalProperties": False,
    },
    # one optional key, counted when present
    {
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"type": "string"}, "o": {"type": "string"}},
        "additionalProperties": False,
    },
    # required members that accept null keep their presence test (a missing key must not read as null)
    {
        "type": "object",
        "required": ["n", "any"],
        "properties": {"n": {"const": None}, "any": {}},
        "additionalProperties": False,
    },
    {
        "type": "object",
        "required": ["e"],
        "properties": {"e": {"enum": [None, "x"]}},
        "additionalProperties": False,
    },
    # a required key that is not a property can never be valid with additionalProperties false
    {
        "type": "object",
        "required": ["a", "z"],
        "properties": {"a": {"type": "string"}},
        "additionalProperties": False,
    },
    # required without a known object type: the presence test stays guarded
    {"required": ["a"], "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    # a $ref'd member schema refusing null
    {
        "$defs": {"s": {"type": "string"}},
        "type": "object",
        "required": ["r"],
        "properties": {"r": {"$ref": "#/$defs/s"}},
        "additionalProperties": False,
    },
]
_OBJECT_INSTANCES = [
    {},
    {"a": "x"},
    {"a": "x", "b": 1},
    {"b": 1, "c": 2},
    {"a": "x", "c": 2},
    {"a": None, "b": 1},
    {"a": "x", "b": 1, "c": 2},
    {"a": "x", "o": "y"},
    {"a": "x", "o": None},
    {"o": "y", "c": 1},
    {"n": None, "any": 1},
    {"any": 1, "x": None},
    {"n": None, "any": None},
    {"n": None},
    {"e": None},
    {"x": None},
    {"e": "x"},
    {"a": "x", "z": 1},
    {"r": "s"},
    {"r": None},
    {"q": "s"},
    [],
    "a",
    None,
]


@pytest.mark.parametrize("schema", _OBJECT_SCHEMAS)
def test_object_member_and_key_count_shortcuts_agree_with_jsonschema(schema):
    from jsonschema import Draft202012Validator

    check, reference = compile_schema(schema, {}), Draft202012Validator(schema)
    for instance in _OBJECT_INSTANCES:
        assert check(instance) is reference.is_valid(instance), (schema, instance)


def test_one_of_passes_exactly_one_alternative_like_jsonschema():
    """oneOf (the e-licences' validUntil xor longTermValidity): neither, both and one, as jsonschema."""
    from jsonschema import Draft202012Validator

    schema = {
        "type": "object",
        "required": ["s"],
        "oneOf": [{"required": ["a"]}, {"properties": {"s": {"required": ["b"]}}}],
    }
    check = compile_schema(schema, {})
    docs = (
        {"a": 1, "s": {}},
        {"s": {"b": 1}},
        {"a": 1, "s": {"b": 1}},
        {},
        {"s": {}},
        {"s": 5},
        {"a": 1, "s": 5},
    )
    for doc in docs:
        assert check(doc) is Draft202012Validator(schema).is_valid(doc), doc
    assert check({"a": 1, "s": {}}) and check({"s": {"b": 1}})
    assert not check({"s": {}}) and not check({"a": 1, "s": {"b": 1}})


def test_passing_strings_are_remembered_in_a_bounded_set_and_failing_ones_never(monkeypatch):
    """The memo of a pattern or format check: a string that passed is not checked again, one that
    failed is checked every time, and the set starts afresh at its limit instead of growing."""
    import verifier._internal.fastschema as fastschema

    monkeypatch.setattr(fastschema, "_MEMO_LIMIT", 3)
    calls: list[str] = []

    def starts_with_a(value: str) -> bool:
        calls.append(value)
        return value.startswith("a")

    check = compile_schema(
        {"type": "string", "format": "a-word", "pattern": "^[a-z]+$"}, {"a-word": starts_with_a}
    )
    memos = [v for v in check.__globals__.values() if type(v) is set]
    assert len(memos) == 2
    assert check("abc") and check("abc") and calls == ["abc"]
    assert not check("bcd") and not check("bcd") and calls == ["abc", "bcd", "bcd"]
    assert not check("Abc")  # the pattern refuses it before the format is asked
    assert calls == ["abc", "bcd", "bcd"]
    for word in ("ab", "ac", "ad", "ae", "af"):
        assert check(word)
        assert all(len(m) <= 3 for m in memos)
    assert "bcd" not in memos[1] and "Abc" not in memos[0]


def _schemas_naming(fmt: str, pattern: str) -> list[str]:
    """The credential types whose schema names ``pattern`` beside ``format: fmt`` somewhere."""
    from verifier._schema import CREDENTIAL_TYPES, schema_of

    def nodes(node: object):
        if isinstance(node, dict):
            yield node
            for v in node.values():
                yield from nodes(v)
        elif isinstance(node, list):
            for v in node:
                yield from nodes(v)

    return [
        t
        for t in CREDENTIAL_TYPES
        if any(n.get("format") == fmt and n.get("pattern") == pattern for n in nodes(schema_of(t)))
    ]


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_code17 = st.text(alphabet=_USCC_ALPHABET, min_size=17, max_size=17)


@settings(max_examples=300, deadline=None)
@given(
    _code17,
    st.from_regex(r"\A[0-9A-Z]{1,40}\Z"),
    st.from_regex(r"\A[0-9A-Z]{1,64}\Z"),
    st.integers(1, 999),
    st.text(max_size=3),
)
def test_each_pattern_a_format_is_said_to_imply_matches_every_string_the_format_accepts(
    first17, type_code, serial, version, noise
):
    """The compiled check skips a pattern where the format beside it implies it (_FAST_IMPLIED):
    each claim is named by a schema, and every string the format accepts — valid codes and
    identifiers, and the same with characters added, dropped or changed — matches the pattern."""
    import re

    from verifier._schema import _FAST_FORMATS, _FAST_IMPLIED
    from verifier.licence_id import make_licence_identifier
    from verifier.uscc import check_character

    uscc = first17 + check_character(first17)
    identifier = make_licence_identifier(type_code, uscc, serial, version)
    values = {"uscc": uscc, "licence-identifier": identifier}
    for fmt, patterns in _FAST_IMPLIED.items():
        accepts = _FAST_FORMATS[fmt]
        base = values[fmt]
        candidates = [
            base,
            base + noise,
            noise + base,
            base[:-1],
            base + "\n",
            base.lower(),
            base[:-1] + noise[:1],
        ]
        assert accepts(base)
        for pattern in patterns:
            assert _schemas_naming(fmt, pattern), f"no schema names {pattern!r} beside format {fmt}"
            for text in candidates:
                if accepts(text):
                    assert re.search(pattern, text), (fmt, text)
