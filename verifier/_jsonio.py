"""Strict JSON reading: duplicate keys, NaN/Infinity and oversized input are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from verifier._internal.accelerator import module as accelerator

__all__ = ["MAX_DOCUMENT_BYTES", "loads_like", "loads_strict"]

#: A credential file larger than this is refused before parsing (a licence is a few kilobytes).
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024

#: The C accelerator's duplicate-name scan, or None without it.
_keys_unique: Callable[[bytes], bool] | None = accelerator.keys_unique if accelerator is not None else None


def loads_like(data: bytes, reference: Callable[[bytes], Any]) -> Any:
    """``reference(data)`` — a JSON reader built on Python's json — read by orjson where orjson gives
    the same value: the C accelerator is sure no number has more than 18 digits in a row (orjson
    reads an integer beyond 64 bits as a float, json as the int) and every object's member names are
    distinct and plain (so no repeat, which json may treat its own way), and orjson takes the text
    (it refuses NaN, Infinity, lone surrogates and nesting beyond 1,024 levels). Everything else,
    and everything without the accelerator, is ``reference``'s to answer or refuse."""
    if _keys_unique is not None and _keys_unique(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return reference(data)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_strict(data: bytes | str) -> Any:
    """Parse JSON, refusing duplicate object keys and NaN/Infinity; ``ValueError`` with a plain message.

    Fast path: when the C accelerator is sure every object's member names are distinct
    (``keys_unique``), ``orjson`` parses the bytes — it refuses NaN, Infinity, lone surrogates and
    whatever is not JSON, and then the reference below decides and names the problem.
    tests/verifier/test_jsonio.py holds the two to the same values and the same refusals."""
    if type(data) is bytes:
        return loads_like(data, reference_loads_strict)
    return reference_loads_strict(data)


def reference_loads_strict(data: bytes | str) -> Any:
    """:func:`loads_strict` with Python's json module alone (the reference)."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        return json.loads(data, object_pairs_hook=_pairs, parse_constant=_constant)
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    except ValueError as exc:
        if "digits" in str(exc):
            raise ValueError(
                "a number in the file has thousands of digits; no credential holds such a number"
            ) from None
        raise
