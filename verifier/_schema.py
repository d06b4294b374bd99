"""JSON Schemas of the credential types and the ``format`` check (docs/FORMAT.md §1–2)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from stdnum.cn import ric

from verifier._internal.fastschema import compile_schema
from verifier.licence_id import (
    InvalidLicenceIdentifier,
    is_valid_licence_identifier,
    parse_licence_identifier,
)
from verifier.uscc import is_valid_uscc

if TYPE_CHECKING:  # jsonschema is imported on first use (~45 ms): a valid credential never needs it
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import ValidationError

__all__ = [
    "CREDENTIAL_TYPES",
    "SCHEMA_BASE",
    "TYPE_NAMES",
    "parse_datetime",
    "schema_errors",
    "schema_for_id",
    "validator_for",
]

#: Credential type name → on-chain ``uint16`` code.
CREDENTIAL_TYPES: dict[str, int] = {"BusinessLicence": 1, "OperatingPermit": 2, "DataAssetCertificate": 3}
#: Code → name.
TYPE_NAMES: dict[int, str] = {code: name for name, code in CREDENTIAL_TYPES.items()}
#: The e-licence types: they carry the national identifier and metadata (FORMAT.md §2.4).
E_LICENCE_TYPES = frozenset({"BusinessLicence", "OperatingPermit"})

_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$")


def parse_datetime(text: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp (``...Z``, up to nanoseconds); ``ValueError`` otherwise."""
    m = _DATETIME.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{text!r} is not an RFC 3339 UTC time such as 2026-03-02T09:30:00Z")
    t = m.group(1)
    fraction = m.group(2)
    return datetime(
        int(t[0:4]),
        int(t[5:7]),
        int(t[8:10]),
        int(t[11:13]),
        int(t[14:16]),
        int(t[17:19]),
        int(fraction[:6].ljust(6, "0")) if fraction else 0,
        tzinfo=UTC,
    )


def _is_uscc(value: object) -> bool:
    return not isinstance(value, str) or is_valid_uscc(value)


def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(parse_datetime(value))


def _is_citizen_id(value: object) -> bool:
    return not isinstance(value, str) or bool(ric.is_valid(value))


def _is_licence_identifier(value: object) -> bool:
    return not isinstance(value, str) or is_valid_licence_identifier(value)


@cache
def schema_of(type_name: str) -> dict[str, Any]:
    """The JSON Schema document of a credential type."""
    text = resources.files("verifier").joinpath("schemas", f"{type_name}.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


#: Where the normative schemas (FORMAT.md §2.2) are published: ``$id`` = this + ``<Type>.json``.
SCHEMA_BASE = "https://certledger.example/schemas/v1/"


def schema_for_id(schema_id: str) -> dict[str, Any]:
    """The normative JSON Schema whose ``$id`` (or a credential's ``credentialSchema.id``) is
    ``schema_id``, read from the package (FORMAT.md §2.2): no network. ``KeyError`` if unknown."""
    name = schema_id[len(SCHEMA_BASE) : -len(".json")] if schema_id.startswith(SCHEMA_BASE) else ""
    if name not in CREDENTIAL_TYPES or schema_id != f"{SCHEMA_BASE}{name}.json":
        raise KeyError(f"no certledger schema has the $id {schema_id!r}")
    return schema_of(name)


@cache
def _format_checker() -> FormatChecker:
    """The ``format`` keywords of the credential schemas, for ``jsonschema``."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("uscc")(_is_uscc)
    checker.checks("date", raises=ValueError)(_is_date)
    checker.checks("date-time", raises=ValueError)(_is_datetime)
    checker.checks("citizen-id")(_is_citizen_id)
    checker.checks("licence-identifier")(_is_licence_identifier)
    return checker


@cache
def validator_for(type_name: str) -> Draft202012Validator:
    """A format-asserting draft 2020-12 validator for a credential type."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema_of(type_name), format_checker=_format_checker())


def _ok(check: Any) -> Any:
    def run(value: Any) -> bool:
        try:
            return bool(check(value))
        except ValueError:
            return False

    return run


#: The patterns a format's check implies (every string it accepts matches them): the compiled check
#: skips such a pattern where the schema names it beside the format (tests/verifier/test_fastschema.py
#: holds each claim on generated strings).
_FAST_IMPLIED = {
    "uscc": frozenset({"^[0-9A-HJ-NPQRTUWXY]{18}$"}),
    "licence-identifier": frozenset(
        {
            r"^1\.2\.156\.3005\.2\.[0-9A-Z]{1,40}\.[0-9A-HJ-NPQRTUWXY]{18}\.[0-9A-Z]{1,64}\.[0-9]{3}"
            r"\.[0-9A-Z]$"
        }
    ),
}

_FAST_FORMATS = {  # fastschema asks only about text; the two that answer any text without raising, directly
    "uscc": is_valid_uscc,
    "date": _ok(_is_date),
    "date-time": _ok(_is_datetime),
    "licence-identifier": is_valid_licence_identifier,
    "citizen-id": _ok(_is_citizen_id),
}


@cache
def fast_validator_for(type_name: str) -> Any:
    """A compiled yes/no validator that agrees with :func:`validator_for` (see fastschema) on the
    document without ``proof``; it is compiled to ignore a ``proof`` member, so no copy is needed."""
    schema = dict(schema_of(type_name))
    schema["properties"] = {**schema["properties"], "proof": True}
    return compile_schema(schema, _FAST_FORMATS, _FAST_IMPLIED)


#: The members of a credential an issuer's own record supplies; the rest it builds itself.
RECORD_MEMBERS = ("id", "validFrom", "validUntil", "credentialSubject")


@cache
def fast_record_validator_for(type_name: str) -> Any:
    """:func:`fast_validator_for` restricted to :data:`RECORD_MEMBERS` (required ones stay required).

    An issuer validating many documents that share everything else (``@context``, ``type``,
    ``issuer``, ``credentialSchema``, the shape of ``credentialStatus``) checks one of them whole
    and the others with this."""
    schema = schema_of(type_name)
    return compile_schema(
        {
            "type": "object",
            "required": [k for k in schema["required"] if k in RECORD_MEMBERS],
            "properties": {k: v for k, v in schema["properties"].items() if k in RECORD_MEMBERS},
            **({"oneOf": schema["oneOf"]} if "oneOf" in schema else {}),
            "$defs": schema.get("$defs", {}),
        },
        _FAST_FORMATS,
        _FAST_IMPLIED,
    )


def _pointer(error: ValidationError) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path)


def _describe(error: ValidationError) -> str:
    where = _pointer(error) or "the credential"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "format" and error.validator_value == "licence-identifier":
        try:
            parse_licence_identifier(error.instance)
        except InvalidLicenceIdentifier as exc:
            return f"{where}: {exc}"
    if error.validator == "oneOf" and not error.context:
        return (
            f"{where}: has both validUntil and credentialSubject.longTermValidity (长期); a licence has one"
        )
    if error.validator == "oneOf":
        return f"{where}: has neither validUntil nor credentialSubject.longTermValidity (长期); a licence has one"
    if error.validator == "format" and error.validator_value == "citizen-id":
        return f"{where}: is not a valid citizen ID number (GB 11643: its date or check character is wrong)"
    if error.validator == "format" and error.validator_value == "uscc":
        return f"{where}: {error.instance!r} is not a valid unified social credit code (its check character is wrong)"
    if error.validator == "additionalProperties":
        return f"{where}: {error.message}"
    message = error.message
    if len(message) > 200:
        message = message[:200] + "…"
    return f"{where}: {message}"


def schema_errors(
    document: dict[str, Any], type_name: str, redacted: frozenset[str] = frozenset()
) -> list[str]:
    """Human-readable schema violations of ``document`` (without ``proof``) for ``type_name``.

    ``redacted`` holds redacted paths and their ancestors: a required member that was redacted and a
    ``null`` placeholder left at a redacted array position are not violations.
    """
    if not redacted and fast_validator_for(type_name)(document):
        return []
    body = {k: v for k, v in document.items() if k != "proof"}
    problems: list[str] = []
    for error in validator_for(type_name).iter_errors(body):
        path = _pointer(error)
        if redacted:
            if error.validator == "required" and isinstance(error.instance, dict):
                missing = [p for p in error.validator_value if p not in error.instance]
                if missing and all(f"{path}/{p}" in redacted for p in missing):
                    continue
            # Only an array element can be a placeholder (FORMAT.md §3.4); a null object member is
            # a schema violation even at a redacted path.
            if path in redacted and error.instance is None and error.path and type(error.path[-1]) is int:
                continue
        problems.append(_describe(error))
    return problems


def licence_metadata_problems(document: dict[str, Any]) -> list[str]:
    """What ties an e-licence's metadata together beyond its schema (FORMAT.md §2.4), for a document
    that passed the schema: its 证照标识 names the credential's issuer as the issuing body and
    ``licenceTypeCode`` as its type, and a replaced licence is another one."""
    subject = document["credentialSubject"]
    ident = subject.get("licenceIdentifier")
    if type(ident) is not str:
        return []  # redacted
    _, _, _, _, _, type_code, issuer_code, _, _, _ = ident.split(".")
    problems = []
    issuer = document["issuer"]["unifiedSocialCreditCode"]
    if issuer_code != issuer:
        problems.append(
            f"/credentialSubject/licenceIdentifier: names the issuing body {issuer_code}, but the issuer is {issuer}"
        )
    declared = subject.get("licenceTypeCode")
    if declared is not None and declared != type_code:
        problems.append(
            f"/credentialSubject/licenceTypeCode: {declared} is not the type code in the licence "
            f"identifier ({type_code})"
        )
    if subject.get("replaces") == ident:
        problems.append("/credentialSubject/replaces: a licence cannot replace itself")
    return problems


def holder_problems(document: dict[str, Any], redacted: Any = ()) -> list[str]:
    """Whether the subject names its holder by exactly the code its ``holderCodeType`` says
    (FORMAT.md §2.4): ``unifiedSocialCreditCode`` (``uscc``, the default), or ``citizenIdNumber``
    (``citizenId``: a natural person; it may be redacted, listed in ``redacted``)."""
    subject = document["credentialSubject"]
    kind = subject.get("holderCodeType", "uscc")
    has_uscc = "unifiedSocialCreditCode" in subject
    has_citizen = "citizenIdNumber" in subject or "/credentialSubject/citizenIdNumber" in redacted
    if kind == "uscc" and not has_uscc:
        return ["/credentialSubject: 'unifiedSocialCreditCode' is a required property (the holder's code)"]
    if kind == "uscc" and has_citizen:
        return ["/credentialSubject/citizenIdNumber: only a holder of holderCodeType citizenId has one"]
    if kind == "citizenId" and has_uscc:
        return ["/credentialSubject/unifiedSocialCreditCode: a natural person holder (citizenId) has none"]
    if kind == "citizenId" and not has_citizen:
        return ["/credentialSubject: 'citizenIdNumber' is a required property (holderCodeType citizenId)"]
    return []
