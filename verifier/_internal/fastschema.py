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
prefixItems, allOf, $ref (local), and the annotations $schema, $id, $defs, title, description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["compile_schema"]

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description"}
_SUPPORTED = _ANNOTATIONS | {
    "type", "required", "properties", "additionalProperties", "const", "enum", "pattern", "format",
    "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "items", "prefixItems",
    "allOf", "$ref",
}
_TYPE_TEST = {
    "string": "type(x) is str",
    "object": "type(x) is dict",
    "array": "type(x) is list",
    "integer": "type(x) is int",
    "boolean": "type(x) is bool",
    "null": "x is None",
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


def compile_schema(schema: Mapping[str, Any], formats: Mapping[str, Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """A function ``instance → bool`` with ``jsonschema``'s verdict on ``schema``."""
    lines: list[str] = []
    env: dict[str, Any] = {"_eq": _strict_equal}
    names: dict[int, str] = {}
    refs: dict[str, str] = {}

    def const(value: Any) -> str:
        name = f"c{len(env)}"
        env[name] = value
        return name

    def fn(s: Any) -> str:
        key = id(s)
        if key in names:
            return names[key]
        name = names[key] = f"f{len(names)}"
        body: list[str] = []
        if s is False:
            body.append("return False")
        elif s is not True:
            unknown = set(s) - _SUPPORTED
            if unknown:
                raise ValueError(f"fastschema does not support {sorted(unknown)}")
            emit(s, body)
            body.append("return True")
        else:
            body.append("return True")
        lines.append(f"def {name}(x):")
        lines.extend("    " + b for b in body)
        return name

    def ref(target: str) -> str:
        if target not in refs:
            if not target.startswith("#/"):
                raise ValueError(f"only local $ref is supported, not {target!r}")
            node: Any = schema
            for token in target[2:].split("/"):
                node = node[token.replace("~1", "/").replace("~0", "~")]
            refs[target] = fn(node)
        return refs[target]

    def emit(s: Mapping[str, Any], body: list[str]) -> None:
        if "$ref" in s:
            body.append(f"if not {ref(s['$ref'])}(x): return False")
        if "type" in s:
            body.append(f"if not ({_TYPE_TEST[s['type']]}): return False")
        if "const" in s:
            c = s["const"]
            if type(c) is str:
                body.append(f"if type(x) is not str or x != {c!r}: return False")
            elif type(c) is list and all(type(i) is str for i in c):
                body.append(f"if type(x) is not list or x != {c!r} or not all(type(i) is str for i in x): return False")
            else:
                body.append(f"if not _eq(x, {const(c)}): return False")
        if "enum" in s:
            options = list(s["enum"])
            if all(type(o) is str for o in options):
                body.append(f"if type(x) is not str or x not in {const(frozenset(options))}: return False")
            else:
                body.append(f"if not any(_eq(x, o) for o in {const(options)}): return False")
        if "pattern" in s:
            body.append(f"if type(x) is str and {const(re.compile(s['pattern']).search)}(x) is None: return False")
        if "format" in s:
            body.append(f"if type(x) is str and not {const(formats[s['format']])}(x): return False")
        if "minLength" in s or "maxLength" in s:
            lo, hi = s.get("minLength", 0), s.get("maxLength", 1 << 62)
            body.append(f"if type(x) is str and not {lo} <= len(x) <= {hi}: return False")
        if "minimum" in s or "maximum" in s:
            lo_n, hi_n = s.get("minimum", -(1 << 1000)), s.get("maximum", 1 << 1000)
            body.append(f"if type(x) in (int, float) and not {lo_n!r} <= x <= {hi_n!r}: return False")
        if "minItems" in s or "maxItems" in s:
            lo_i, hi_i = s.get("minItems", 0), s.get("maxItems", 1 << 62)
            body.append(f"if type(x) is list and not {lo_i} <= len(x) <= {hi_i}: return False")
        if "prefixItems" in s or "items" in s:
            prefix = [fn(p) for p in s.get("prefixItems", [])]
            body.append("if type(x) is list:")
            for i, p in enumerate(prefix):
                body.append(f"    if len(x) > {i} and not {p}(x[{i}]): return False")
            if "items" in s:
                body.append(f"    for y in x[{len(prefix)}:]:")
                body.append(f"        if not {fn(s['items'])}(y): return False")
        if "required" in s:
            keys = " and ".join(f"{k!r} in x" for k in s["required"]) or "True"
            body.append(f"if type(x) is dict and not ({keys}): return False")
        if "properties" in s or "additionalProperties" in s:
            extra = s.get("additionalProperties", True)
            if extra not in (True, False):
                raise ValueError("fastschema supports additionalProperties true/false only")
            props = {k: fn(v) for k, v in s.get("properties", {}).items()}
            body.append("if type(x) is dict:")
            if extra is False:
                body.append(f"    if not x.keys() <= {const(frozenset(props))}: return False")
            for k, f in props.items():
                body.append(f"    if {k!r} in x and not {f}(x[{k!r}]): return False")
        for sub in s.get("allOf", []):
            body.append(f"if not {fn(sub)}(x): return False")

    entry = fn(schema)
    exec(compile("\n".join(lines), "<fastschema>", "exec"), env)  # noqa: S102 - source built above from the schema
    return env[entry]  # type: ignore[no-any-return]
