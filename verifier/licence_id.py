"""证照标识 — the national e-licence identifier (docs/FORMAT.md §2.4).

An e-licence on China's national platform is identified by an OID-style string (GB/T 36904-2018,
《电子证照 标识规范》)::

    1.2.156.3005.2 . <licence type code> . <issuing body's code> . <serial> . <version> . <check>

* ``1.2.156.3005.2`` — the e-licence root code (电子证照根代码);
* the licence type code (证照类型代码) — in the national catalogue, the code of the department that
  defines the licence type followed by a type number, e.g. ``11100000000013338W011``;
* the issuing body's code (证照颁发机构代码) — its unified social credit code (certledger requires
  that; older platforms also used administrative division codes);
* a serial (流水号) of digits and capital letters, unique for the issuing body and type;
* a three-digit version (版本号), ``001`` for a first issue;
* one check character (校验位): ISO 7064 MOD 37,36 (GB/T 17710) over the type code, issuing body's
  code, serial and version written together without the dots (the root code is not part of it).

The standard itself could not be read here: the form and the check character's input are taken
second-hand, from public integration code for provincial e-licence platforms, and confirmed on real
identifiers quoted there (``tests/assets/licence_identifiers.json``, which names its sources). The
check character is computed with python-stdnum's ISO 7064 implementation; the verifier's fast paths
(:func:`is_valid_licence_identifier`: the C accelerator's one pass over the text, or without it
:func:`reference_is_valid_licence_identifier`, table-driven, a licence's type and issuer prefix
computed once) are tested against it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum.iso7064 import mod_37_36

from verifier._internal.accelerator import module as accelerator
from verifier.uscc import is_valid_uscc

__all__ = [
    "ROOT_CODE",
    "InvalidLicenceIdentifier",
    "LicenceIdentifier",
    "is_valid_licence_identifier",
    "licence_check_character",
    "licence_key",
    "make_licence_identifier",
    "parse_licence_identifier",
    "reference_is_valid_licence_identifier",
    "reference_licence_key",
]

#: 电子证照根代码: the arc every e-licence identifier starts with.
ROOT_CODE = "1.2.156.3005.2"

_FORM = re.compile(
    r"1\.2\.156\.3005\.2\.([0-9A-Z]{1,40})\.([0-9A-Z]{1,40})\.([0-9A-Z]{1,64})\.([0-9]{3})\.([0-9A-Z])"
)


class InvalidLicenceIdentifier(ValueError):
    """A string that is not a well-formed 证照标识 (the message says what is wrong)."""


@dataclass(frozen=True)
class LicenceIdentifier:
    """The parts of a 证照标识."""

    type_code: str
    issuer_code: str
    serial: str
    version: str
    check: str

    def __str__(self) -> str:
        return ".".join((ROOT_CODE, self.type_code, self.issuer_code, self.serial, self.version, self.check))


def licence_check_character(type_code: str, issuer_code: str, serial: str, version: str) -> str:
    """The ISO 7064 MOD 37,36 check character of an identifier with these parts."""
    return str(mod_37_36.calc_check_digit(type_code + issuer_code + serial + version))


def parse_licence_identifier(text: str, *, issuer_code: str | None = None) -> LicenceIdentifier:
    """The parts of ``text``, or :class:`InvalidLicenceIdentifier` naming what is wrong.

    With ``issuer_code``, the identifier must name that issuing body (a credential's issuer)."""
    if type(text) is not str:
        raise InvalidLicenceIdentifier("a licence identifier is a string")
    m = _FORM.fullmatch(text)
    if m is None:
        if not text.startswith(ROOT_CODE + "."):
            raise InvalidLicenceIdentifier(
                f"{text!r} does not start with the e-licence root code {ROOT_CODE}"
            )
        raise InvalidLicenceIdentifier(
            f"{text!r} is not of the form {ROOT_CODE}.<type code>.<issuing body's code>.<serial>.<version>.<check> "
            "(digits and capital letters; a three-digit version; one check character)"
        )
    ident = LicenceIdentifier(*m.groups())
    if not is_valid_uscc(ident.issuer_code):
        raise InvalidLicenceIdentifier(
            f"{text!r}: the issuing body's code {ident.issuer_code} is not a valid unified social credit code"
        )
    expected = licence_check_character(ident.type_code, ident.issuer_code, ident.serial, ident.version)
    if ident.check != expected:
        raise InvalidLicenceIdentifier(
            f"{text!r}: the check character is {ident.check}, ISO 7064 MOD 37,36 gives {expected}"
        )
    if issuer_code is not None and ident.issuer_code != issuer_code:
        raise InvalidLicenceIdentifier(
            f"{text!r} names the issuing body {ident.issuer_code}, but the credential's issuer is {issuer_code}"
        )
    return ident


# -- the fast path: ISO 7064 MOD 37,36 a character pair at a time -----------------------------------
# The running value p (python-stdnum's "check") starts at 18 and takes each character's value v to
# (((p or 36) * 2) % 37 + v) % 36; a string ending in its check character ends at p = 1.
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _step(p: int, v: int) -> int:
    return (((p or 36) * 2) % 37 + v) % 36


@functools.cache
def _tables() -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]:
    """Running value → character (pair) → next running value: built on first use (46,656 pairs,
    90 ms), so not at all where the C accelerator runs."""
    one = {(p, a): _step(p, i) for p in range(36) for i, a in enumerate(_ALPHABET)}
    pairs = {
        (p, a + b): _step(_step(p, i), j)
        for p in range(36)
        for i, a in enumerate(_ALPHABET)
        for j, b in enumerate(_ALPHABET)
    }
    return one, pairs


#: The C accelerator's run (verifier/_internal/_leaves.c), or None without it.
_fast_run: Callable[[int, str], int] | None = accelerator.mod37_36_run if accelerator is not None else None
_PREFIXES: dict[str, int | None] = {}  # type code + issuer code → running value, None: issuer code invalid


def _run(p: int, text: str) -> int:
    """The running value after ``text`` (its characters in the alphabet: the caller's pattern checked)."""
    if _fast_run is not None:
        return _fast_run(p, text)
    return reference_run(p, text)


def reference_run(p: int, text: str) -> int:
    """:func:`_run` in Python alone (the reference the C accelerator is tested against)."""
    one, pairs = _tables()
    for k in range(0, len(text) - 1, 2):
        p = pairs[p, text[k : k + 2]]
    return one[p, text[-1]] if len(text) % 2 else p


def _check_of(p: int) -> str:
    """The character that takes running value ``p`` to 1 (python-stdnum's calc_check_digit)."""
    return _ALPHABET[(1 - ((p or 36) * 2) % 37) % 36]


def reference_is_valid_licence_identifier(text: object) -> bool:
    """Whether ``text`` is a well-formed 证照标识 naming a valid credit code, with a right check
    character (what :func:`parse_licence_identifier` accepts, answered faster)."""
    if type(text) is not str or _FORM.fullmatch(text) is None:
        return False
    _, _, _, _, _, type_code, issuer_code, serial, version, check = text.split(".")
    prefix = type_code + issuer_code
    p = _PREFIXES.get(prefix, -1)
    if p == -1:
        p = _run(18, prefix) if is_valid_uscc(issuer_code) else None
        if len(_PREFIXES) > 10_000:
            _PREFIXES.clear()
        _PREFIXES[prefix] = p
    return p is not None and _run(p, serial + version + check) == 1


_HEAD = re.compile(r"1\.2\.156\.3005\.2\.[0-9A-Z]{1,40}\.[0-9A-Z]{1,40}\.")
_SERIAL = re.compile(r"[0-9A-Z]{1,64}")


@functools.lru_cache(maxsize=256)
def _made_head(type_code: str, issuer_code: str) -> tuple[str, int] | None:
    """The text of an identifier before its serial, and the check's running value after the type and
    issuer codes (for :func:`make_licence_identifier`); None if they do not fit the form."""
    head = f"{ROOT_CODE}.{type_code}.{issuer_code}."
    return (head, _run(18, type_code + issuer_code)) if _HEAD.fullmatch(head) is not None else None


#: :func:`reference_is_valid_licence_identifier`, by the C accelerator where it is built (one pass
#: over the text: 0.15 µs, not 1.0; tests/verifier/test_licence_id.py holds the two equal).
is_valid_licence_identifier: Callable[[object], bool] = (
    accelerator.licence_identifier_valid if accelerator is not None else reference_is_valid_licence_identifier
)


def make_licence_identifier(type_code: str, issuer_code: str, serial: str, version: int = 1) -> str:
    """A 证照标识 for these parts, with its check character (refuses parts that do not fit the form).
    An upload's records share their type and issuer codes, so those are checked and run through once
    (:func:`_made_head`)."""
    if not 1 <= version <= 999:
        raise InvalidLicenceIdentifier(f"a licence identifier's version is 1–999, not {version}")
    for part in (type_code, issuer_code, serial):
        if not isinstance(part, str):
            raise TypeError(f"a licence identifier's parts are text, not {type(part).__name__}")
    head = _made_head(type_code, issuer_code)
    if head is None or _SERIAL.fullmatch(serial) is None:
        raise InvalidLicenceIdentifier(
            f"cannot form a licence identifier from type code {type_code!r}, issuing body {issuer_code!r}, "
            f"serial {serial!r}: each is digits and capital letters"
        )
    v = f"{version:03d}"
    return f"{head[0]}{serial}.{v}.{_check_of(_run(head[1], serial + v))}"


def reference_licence_key(identifier: str) -> int:
    """A 64-bit key of an identifier, for an index to find a licence by (the registry's
    ``credentials.licence_key``: a tenth of the bytes of an index on the 88-character identifier):
    the first 8 bytes of the SHA-256 of its UTF-8, as a signed big-endian integer."""
    return int.from_bytes(hashlib.sha256(identifier.encode()).digest()[:8], "big", signed=True)


#: :func:`reference_licence_key`, by the C accelerator where it has its own SHA-256 (0.2 µs, not
#: 0.65: hashlib's constructor is most of the reference's time; issuance computes it for every
#: e-licence; tests/verifier/test_leaves_accelerator.py holds the two equal)
licence_key: Callable[[str], int] = (
    accelerator.licence_key
    if accelerator is not None and accelerator.native_sha256
    else reference_licence_key
)
