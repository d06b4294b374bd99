"""RFC 8785 (JCS) canonical bytes of one JSON value, with fast paths.

Strings, integers, booleans, null and empty containers (the subject's leaf values) are
serialised here without going through :func:`rfc8785.dumps`. A non-empty object or array (the
credential's envelope, docs/FORMAT.md §3.1) is first checked to hold JSON values only — no
floats, no integer beyond ±(2^53−1), text keys — and then written by ``orjson`` with sorted keys,
which is JCS byte for byte except in one case: JCS sorts member names by UTF-16 code units,
``orjson`` by code points, and the two orders differ only between a character above U+FFFF and
one in U+E000–U+FFFF. So when the output holds any 4-byte UTF-8 sequence, :func:`rfc8785.dumps`
writes it instead. ``tests/verifier/test_canon.py`` proves both paths byte-identical to
``rfc8785`` on generated values, including non-ASCII text, astral characters and control
characters.

RFC 8785 §3.2.2.2: strings are serialised as ECMAScript ``JSON.stringify`` does — ``"`` and ``\\``
escaped, U+0008/0009/000A/000C/000D as ``\\b \\t \\n \\f \\r``, the other C0 controls as
``\\u00xx`` (lower-case hex), everything else as literal UTF-8. CPython's
``json.encoder.encode_basestring`` (the C accelerator behind ``ensure_ascii=False``) does exactly
this. §3.2.2.3: integers in the IEEE-754 safe range print as their decimal digits.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

import orjson
import rfc8785

from verifier.errors import InvalidDocument, NumberOutOfRange

__all__ = ["MAX_SAFE_INTEGER", "check_number", "jcs", "jcs_of_checked", "jcs_unchecked"]

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
    if kind is dict or kind is list:
        if not value:
            return b"{}" if kind is dict else b"[]"
        if not _tree_ok(value):
            _check_tree(value, path)  # raises, naming where
        return jcs_of_checked(value, path)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise InvalidDocument(f"field {path or '/'} cannot be written as canonical JSON: {exc}") from None


def jcs_of_checked(value: dict[str, Any] | list[Any], path: str = "") -> bytes:
    """:func:`jcs` of a non-empty container already known to hold only JSON values (text keys, no
    floats, safe integers) — e.g. one that passed its JSON Schema."""
    try:
        out: bytes = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        out = b""  # a lone surrogate: let rfc8785 name it
    if out and not _has_astral(out):
        return out
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise InvalidDocument(f"field {path or '/'} cannot be written as canonical JSON: {exc}") from None


def jcs_unchecked(value: Any) -> bytes:
    """:func:`jcs`, without the walk that first refuses floats anywhere inside a container: for a
    value that is also checked in full elsewhere (a presented credential is verified beside its
    holder's signature, and a float fails that). Byte for byte :func:`jcs` on every value :func:`jcs`
    accepts (tests/verifier/test_canon.py); integers beyond ±(2^53−1), non-text keys and lone
    surrogates are still refused with InvalidDocument (orjson refuses them, OPT_STRICT_INTEGER for
    the first, and :func:`jcs` then names the problem); a float is written as orjson writes it."""
    kind = type(value)
    if (kind is dict or kind is list) and value:
        try:
            out: bytes = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
        except orjson.JSONEncodeError:
            return jcs(value)  # raises, naming what cannot be written
        return out if not _has_astral(out) else jcs(value)
    return jcs(value)


def _has_astral(utf8: bytes) -> bool:
    """Whether valid UTF-8 holds a 4-byte sequence (a character above U+FFFF): its lead byte is one
    of F0–F4. Five ``memchr`` scans; a regular-expression class is six times slower on 1 KB."""
    return b"\xf0" in utf8 or b"\xf1" in utf8 or b"\xf2" in utf8 or b"\xf3" in utf8 or b"\xf4" in utf8


def _tree_ok(value: Any) -> bool:
    """Whether ``value`` holds only what JSON (and a certledger credential) can: text keys, no
    floats, safe integers. :func:`_check_tree` without building a path for every member: the
    common case (a valid credential) costs a third as much; ``_check_tree`` then names what is
    wrong. The two agree on every value (tests/verifier/test_canon.py)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            t = type(item)
            if t is not str and t is not bool and item is not None and not _tree_ok(item):
                return False
        return True
    if kind is list:
        for item in value:
            t = type(item)
            if t is not str and t is not bool and item is not None and not _tree_ok(item):
                return False
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    return kind is str or kind is bool or value is None


def _check_tree(value: Any, path: str) -> None:
    """Refuse what JSON (or a certledger credential) cannot hold anywhere inside ``value``."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidDocument(f"object {path or '/'} has a non-text key {key!r}")
            t = type(item)
            if t is not str and t is not bool and item is not None:
                _check_tree(item, path + "/" + key.replace("~", "~0").replace("/", "~1"))
    elif kind is list:
        for index, item in enumerate(value):
            t = type(item)
            if t is not str and t is not bool and item is not None:
                _check_tree(item, f"{path}/{index}")
    elif kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            check_number(value, path)
    elif kind is float:
        check_number(value, path)
    elif kind is not str and kind is not bool and value is not None:
        raise InvalidDocument(f"field {path or '/'} holds a {kind.__name__}, which JSON cannot carry")
