"""RFC 8785 (JCS) canonical bytes of one JSON value, with a fast path for the common scalars.

Strings, integers, booleans, null and empty containers (the only leaf values a certledger
credential has) are serialised here without going through :func:`rfc8785.dumps`; anything else
is handed to it. ``tests/verifier/test_canon.py`` proves the fast path byte-identical to
``rfc8785`` on generated values, including non-ASCII text and control characters.

RFC 8785 §3.2.2.2: strings are serialised as ECMAScript ``JSON.stringify`` does — ``"`` and ``\\``
escaped, U+0008/0009/000A/000C/000D as ``\\b \\t \\n \\f \\r``, the other C0 controls as
``\\u00xx`` (lower-case hex), everything else as literal UTF-8. CPython's
``json.encoder.encode_basestring`` (the C accelerator behind ``ensure_ascii=False``) does exactly
this. §3.2.2.3: integers in the IEEE-754 safe range print as their decimal digits.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

import rfc8785

from verifier.errors import InvalidDocument, NumberOutOfRange

__all__ = ["MAX_SAFE_INTEGER", "check_number", "jcs"]

#: 2^53 − 1: the largest integer every JSON implementation (IEEE-754 double) reads exactly.
MAX_SAFE_INTEGER = 2**53 - 1


def check_number(value: Any, path: str) -> None:
    """Refuse floats and integers outside ±(2^53−1) at ``path`` (a JSON Pointer)."""
    if type(value) is float:
        raise InvalidDocument(
            f"field {path or '/'} holds the number {value!r}: certledger credentials carry no "
            'fractional numbers (amounts are decimal strings such as "1000000.00")'
        )
    if type(value) is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise NumberOutOfRange(
            f"field {path or '/'} holds an integer with {len(str(abs(value)))} digits; integers must "
            f"lie within ±{MAX_SAFE_INTEGER} (2^53−1) to be read the same everywhere"
        )


def jcs(value: Any, path: str = "") -> bytes:
    """RFC 8785 canonical UTF-8 bytes of ``value`` (a JSON scalar or empty container).

    Raises :class:`InvalidDocument` for floats, out-of-range integers and values JSON cannot hold
    (lone surrogates, non-JSON types).
    """
    kind = type(value)
    if kind is str:
        try:
            return encode_basestring(value).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidDocument(
                f"field {path or '/'} holds text that is not valid Unicode (a lone surrogate)"
            ) from None
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return str(value).encode("ascii")
        check_number(value, path)
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if value is None:
        return b"null"
    if kind is float:
        check_number(value, path)
    if (kind is dict or kind is list) and not value:
        return b"{}" if kind is dict else b"[]"
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidDocument(f"field {path or '/'} cannot be written as canonical JSON: {exc}") from None
