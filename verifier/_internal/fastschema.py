"""A compiled yes/no validator for the JSON Schema subset the credential schemas use.

``jsonschema`` spends ~0.5 ms per credential walking its schema; verification has ~0.1 ms in
all. :func:`compile_schema` generates straight-line Python source for a schema (as
``fastjsonschema`` does) that answers only "valid or not"; on "not" — or when the holder redacted
fields — the caller asks ``jsonschema`` for the errors, so ``jsonschema`` stays the reference and
this module only has to agree with its verdict. ``tests/verifier/test_fastschema.py`` checks that
agreement on generated documents and mutations.

Supported keywords (anything else raises at compile time, so a schema edit cannot silently
weaken validation): type, required, properties, additionalProperties (true/false), const, enum,
pattern, format, minLength, maxLength, minimum, maximum, minItems, maxItems, items,
prefixItems, allOf, oneOf, $ref (local), and the annotations $schema, $id, $defs, title, description.

Why not ``fastjsonschema`` (evaluated for issue 20, point 9, with fastjsonschema 2.22.3): it
supports drafts 04, 06 and 07 only, and the credential schemas are draft 2020-12 (``prefixItems``
for the two status entries), so it needs a translated copy of every schema (``prefixItems`` →
an ``items`` array, ``items`` → ``additionalItems``). Translated, with the same format checks
(uscc, date, date-time as callables) and ``use_default=False``, it agreed with this module and with
``jsonschema`` on 1,350 generated and mutated documents — no check was weakened — but it is slower:
on valid documents 4.2× (BusinessLicence), 6.3× (OperatingPermit) and 9.4× (DataAssetCertificate)
slower than :func:`compile_schema`'s validators, and ``scripts/bench_verifier.py --count 5000
--no-oa`` with it in the format check verified 5,800 credentials/s of CPU time against 8,611/s with
this module (same machine, one run each; its ``detailed_exceptions=False`` option, which might
close part of the gap, fails to compile these schemas: ``KeyError: 'definition_rule'``). So this
module stays, checked against ``jsonschema`` as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["compile_schema"]

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description"}
_SUPPORTED = _ANNOTATIONS | {
    "type",
    "required",
    "properties",
    "additionalProperties",
    "const",
    "enum",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "items",
    "prefixItems",
    "allOf",
    "oneOf",
    "$ref",
}
_TYPE_TEST = {
    "string": "type({x}) is str",
    "object": "type({x}) is dict",
    "array": "type({x}) is list",
    "integer": "type({x}) is int",
    "boolean": "type({x}) is bool",
    "null": "{x} is None",
}


def _strict_equal(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema sees it: 1 = 1.0, but 1 ≠ true and [1] ≠ [true]."""
    numbers = (int, float)
    if type(a) in numbers and type(b) in numbers:
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


#: How many passing strings each pattern or format check remembers before it starts afresh. Small on
#: purpose: the memo is for what repeats from one credential to the next (an issuer, a date, a status
#: list); a value unique to each credential (its id, a licence identifier) would only fill it. A set
#: of 512 stays in the CPU's cache, so a lookup is cheaper than in one of 50,000 — and a benchmark
#: that verifies the same documents again cannot be served from it.
_MEMO_LIMIT = 512


def _function(name: str, body: list[str]) -> list[str]:
    """The source of ``def name(v0)`` around ``body`` (indented for a ``try``): a required member
    read by subscript and missing raises KeyError, which is the answer False."""
    return [
        f"def {name}(v0):",
        "    try:",
        *body,
        "        return True",
        "    except KeyError:",
        "        return False",
    ]


def compile_schema(
    schema: Mapping[str, Any],
    formats: Mapping[str, Callable[[Any], bool]],
    implied: Mapping[str, frozenset[str]] | None = None,
) -> Callable[[Any], bool]:
    """A function ``instance → bool`` with ``jsonschema``'s verdict on ``schema``.

    The whole schema is inlined into one function of straight-line checks (local ``$ref`` targets
    are expanded in place; recursive schemas are refused). ``implied``: for a format, the patterns
    every string its check accepts matches; where a schema names both, only the format is checked.
    """
    implied = implied or {}
    env: dict[str, Any] = {"_eq": _strict_equal}
    counter = [0]

    def const(value: Any) -> str:
        name = f"c{len(env)}"
        env[name] = value
        return name

    def fresh() -> str:
        counter[0] += 1
        return f"v{counter[0]}"

    def resolve(target: str) -> Any:
        if not target.startswith("#/"):
            raise ValueError(f"only local $ref is supported, not {target!r}")
        node: Any = schema
        for token in target[2:].split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node

    def refuses_none(sub: Any, depth: int) -> bool:
        """Whether ``sub``'s own checks (as :func:`emit` writes them) reject None, i.e. JSON null."""
        if depth > 32 or type(sub) is not dict:
            return False
        if type(sub.get("type")) is str and sub["type"] != "null":
            return True
        if "const" in sub and sub["const"] is not None:
            return True
        if "enum" in sub and None not in sub["enum"]:
            return True
        if "$ref" in sub and refuses_none(resolve(sub["$ref"]), depth + 1):
            return True
        return any(refuses_none(a, depth + 1) for a in sub.get("allOf", []))

    def guard(kind: str, x: str, known: str | None) -> str | None:
        """The condition "x is of JSON type kind" as code: "" when ``known`` already says so,
        None when ``known`` rules it out (the check that needs it is vacuous)."""
        if known is None:
            return _TYPE_TEST[kind].format(x=x)
        return "" if known == kind else None

    def block(test: str, pad: str, out: list[str]) -> str:
        """Open ``if test:`` (nothing when the test is known true); the indentation inside it."""
        if not test:
            return pad
        out.append(f"{pad}if {test}:")
        out.append(f"{pad}    pass")
        return pad + "    "

    def member(sub: Any, access: str, present: str | None, pad: str, out: list[str], depth: int) -> None:
        """Check ``sub`` on ``access`` (an item or property), guarded by ``present`` unless it is None
        (known to be there)."""
        y = fresh()
        inner = pad if present is None else block(present, pad, out)
        out.append(f"{inner}{y} = {access}")
        emit(sub, y, inner, out, depth + 1)

    def emit(s: Any, x: str, pad: str, out: list[str], depth: int, known: str | None = None) -> str | None:
        """Append the checks of ``s`` on variable ``x``; return the JSON type of ``x`` established so
        far (a failed ``type`` check has returned False), so later checks skip their type tests."""
        if depth > 32:
            raise ValueError("fastschema does not support recursive schemas")
        if s is True:
            return known
        if s is False:
            out.append(f"{pad}return False")
            return known
        unknown = set(s) - _SUPPORTED
        if unknown:
            raise ValueError(f"fastschema does not support {sorted(unknown)}")
        if "$ref" in s:
            known = emit(resolve(s["$ref"]), x, pad, out, depth + 1, known)
        if "type" in s:
            if known is None:
                out.append(f"{pad}if not ({_TYPE_TEST[s['type']].format(x=x)}): return False")
                known = s["type"]
            elif known != s["type"]:
                out.append(f"{pad}return False")
                return known
        if "const" in s:
            c = s["const"]
            if type(c) is str:
                out.append(
                    f"{pad}if {x} != {c!r}: return False"
                    if known == "string"
                    else f"{pad}if type({x}) is not str or {x} != {c!r}: return False"
                )
            elif type(c) is list and all(type(i) is str for i in c):
                # equal to the constant, so exactly len(c) items: each checked by index when few (a
                # generator for all() costs more than the comparisons it makes)
                items = (
                    "".join(f" or type({x}[{i}]) is not str" for i in range(len(c)))
                    if len(c) <= 8
                    else f" or not all(type(i) is str for i in {x})"
                )
                out.append(f"{pad}if type({x}) is not list or {x} != {c!r}{items}: return False")
            else:
                out.append(f"{pad}if not _eq({x}, {const(c)}): return False")
        if "enum" in s:
            options = list(s["enum"])
            if all(type(o) is str for o in options):
                test = "" if known == "string" else f"type({x}) is not str or "
                out.append(f"{pad}if {test}{x} not in {const(frozenset(options))}: return False")
            else:
                out.append(f"{pad}if not any(_eq({x}, o) for o in {const(options)}): return False")
        is_str = guard("string", x, known)
        pattern_implied = "pattern" in s and s["pattern"] in implied.get(s.get("format", ""), ())
        for fails in (  # the compiled pattern's search (called from C), a format's check
            f"{const(re.compile(s['pattern']).search)}({x}) is None"
            if "pattern" in s and not pattern_implied
            else None,
            f"not {const(formats[s['format']])}({x})" if "format" in s else None,
        ):
            if fails is not None and is_str is not None:
                # a passing verdict is remembered in a bounded set (a batch repeats issuer names,
                # dates and URNs thousands of times); a miss checks, then records, inline
                seen = const(set())
                inner = block(f"{is_str + ' and ' if is_str else ''}{x} not in {seen}", pad, out)
                out.append(f"{inner}if {fails}: return False")
                out.append(f"{inner}if len({seen}) >= {_MEMO_LIMIT}: {seen}.clear()")
                out.append(f"{inner}{seen}.add({x})")
        if ("minLength" in s or "maxLength" in s) and is_str is not None:
            lo, hi = s.get("minLength", 0), s.get("maxLength", 1 << 62)
            out.append(
                f"{pad}if {is_str + ' and ' if is_str else ''}not {lo} <= len({x}) <= {hi}: return False"
            )
        if ("minimum" in s or "maximum" in s) and known in (None, "integer"):
            lo_n, hi_n = s.get("minimum", -(1 << 1000)), s.get("maximum", 1 << 1000)
            test = "" if known == "integer" else f"type({x}) in (int, float) and "
            out.append(f"{pad}if {test}not {lo_n!r} <= {x} <= {hi_n!r}: return False")
        is_list = guard("array", x, known)
        if ("minItems" in s or "maxItems" in s) and is_list is not None:
            lo_i, hi_i = s.get("minItems", 0), s.get("maxItems", 1 << 62)
            out.append(
                f"{pad}if {is_list + ' and ' if is_list else ''}not {lo_i} <= len({x}) <= {hi_i}: return False"
            )
        if ("prefixItems" in s or "items" in s) and is_list is not None:
            prefix = s.get("prefixItems", [])
            inner = block(is_list, pad, out)
            # a length fixed by minItems = maxItems needs no per-element length test
            fixed = s.get("minItems") if s.get("minItems") == s.get("maxItems") else None
            for i, sub in enumerate(prefix):
                member(
                    sub,
                    f"{x}[{i}]",
                    None if fixed is not None and i < fixed else f"len({x}) > {i}",
                    inner,
                    out,
                    depth,
                )
            if "items" in s:
                y = fresh()
                out.append(f"{inner}for {y} in {x}[{len(prefix)}:]:")
                out.append(f"{inner}    pass")
                emit(s["items"], y, inner + "    ", out, depth + 1)
        is_dict = guard("object", x, known)
        required: set[str] = set()
        props = s.get("properties", {})
        # A required property whose schema refuses null is read once, by subscript, and not tested
        # for presence first: a missing key raises KeyError, which the function answers with False
        # (see _function), as the property's own checks would refuse a None.
        fetched = (
            {k for k in s.get("required", ()) if k in props and refuses_none(props[k], depth)}
            if known == "object"
            else set()
        )
        if "required" in s and is_dict is not None:
            keys = " and ".join(f"{k!r} in {x}" for k in s["required"] if k not in fetched)
            if keys or is_dict:
                out.append(
                    f"{pad}if {is_dict + ' and ' if is_dict else ''}not ({keys or 'True'}): return False"
                )
            if known == "object":
                required = set(s["required"])  # present from here on
        if ("properties" in s or "additionalProperties" in s) and is_dict is not None:
            extra = s.get("additionalProperties", True)
            if extra not in (True, False):
                raise ValueError("fastschema supports additionalProperties true/false only")
            inner = block(is_dict, pad, out)
            optional = [k for k in props if k not in required]
            if extra is False and required and required <= props.keys() and len(optional) < len(props):
                # Every required key is there (or its own check fails), so no other key is iff the
                # object has exactly the required keys plus the optional ones it holds: counting those
                # costs a lookup per optional key instead of one per key held.
                count = "".join(f" + ({k!r} in {x})" for k in optional)
                out.append(f"{inner}if len({x}) != {len(required)}{count}: return False")
            elif extra is False:
                out.append(f"{inner}if not {x}.keys() <= {const(frozenset(props))}: return False")
            for k, sub in props.items():
                if sub is not True:
                    member(sub, f"{x}[{k!r}]", None if k in required else f"{k!r} in {x}", inner, out, depth)
        for sub in s.get("allOf", []):
            known = emit(sub, x, pad, out, depth + 1, known)
        if "oneOf" in s:
            # each alternative is its own generated function (its checks return early); exactly one passes
            calls = []
            for sub in s["oneOf"]:
                name = f"f{len(env)}"
                env[name] = None
                body: list[str] = []
                emit(sub, "v0", "        ", body, depth + 1)
                body = _function(name, body)
                exec(compile("\n".join(body), "<fastschema>", "exec"), env)  # noqa: S102 - built from the schema
                calls.append(f"{name}({x})")
            out.append(f"{pad}if ({' + '.join(calls)}) != 1: return False")
        return known

    lines: list[str] = []
    emit(schema, "v0", "        ", lines, 0)
    lines = _function("check", lines)
    exec(compile("\n".join(lines), "<fastschema>", "exec"), env)  # noqa: S102 - source built above from the schema
    return env["check"]  # type: ignore[no-any-return]
