"""W3C Bitstring Status List v1.0 ``encodedList`` (§3.1 and §3.2 of the Recommendation).

``encodedList`` is the Multibase base64url (no padding, prefix ``u``) encoding of the GZIP
compression of the bitstring. Bit ``i`` is bit ``7 − i mod 8`` of byte ``i // 8``: index 0 is the
left-most (most significant) bit of the first byte. The bitstring is at least 131,072 bits
(16 KiB) long, so that a list does not reveal how few credentials it covers (§6.5, herd privacy).
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable

__all__ = ["MIN_BITS", "bit_is_set", "decode_status_list", "encode_status_list"]

MIN_BITS = 131_072
_MAX_DECODED = 16 * 1024 * 1024  # refuse gzip bombs: 128 Mibit is far beyond any province


def encode_status_list(set_indexes: Iterable[int], length: int = MIN_BITS) -> str:
    """The ``encodedList`` of a bitstring of ``max(length, MIN_BITS)`` bits with ``set_indexes`` set."""
    indexes = list(set_indexes)
    bits = max(length, MIN_BITS, (max(indexes) + 1) if indexes else 0)
    bits = (bits + 7) // 8 * 8
    raw = bytearray(bits // 8)
    for i in indexes:
        if i < 0:
            raise ValueError("status list indexes are non-negative")
        raw[i // 8] |= 0x80 >> (i % 8)
    compressed = gzip.compress(bytes(raw), compresslevel=9, mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def decode_status_list(encoded: str) -> bytes:
    """The bitstring bytes of an ``encodedList``; ``ValueError`` if it is malformed or too short."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise ValueError("encodedList must be multibase base64url (it starts with 'u')")
    body = encoded[1:]
    try:
        compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        with gzip.GzipFile(fileobj=__import__("io").BytesIO(compressed)) as f:
            raw = f.read(_MAX_DECODED + 1)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"encodedList is not base64url-encoded GZIP data ({exc})") from None
    if len(raw) > _MAX_DECODED:
        raise ValueError("encodedList decompresses to more than 16 MiB")
    if len(raw) * 8 < MIN_BITS:
        raise ValueError(f"a status list has at least {MIN_BITS} bits; this one has {len(raw) * 8}")
    return raw


def bit_is_set(bitstring: bytes, index: int) -> bool:
    """Whether bit ``index`` (0 = left-most bit of byte 0) is set; indexes past the end are unset."""
    byte = index // 8
    return byte < len(bitstring) and bool(bitstring[byte] & (0x80 >> (index % 8)))
