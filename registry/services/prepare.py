"""Preparing records for issuance — build the W3C document, check it against the type's schema,
salt, hash — in the issuance worker processes (see :mod:`registry.services.issuance`).

This module imports only the verifier, the standard library, orjson and zstandard, so that a worker process
starts in a fraction of the time the service's modules take to import (eth_account, SQLAlchemy).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NoReturn

import orjson

from registry.services.docpack import licence_key, pack
from verifier.issuance import (
    E_LICENCE_TYPES,
    SUITE_HASHES,
    build_document,
    envelope_jcs,
    fast_record_validator_for,
    fast_validator_for,
    holder_problems,
    leaf_hash,
    licence_metadata_problems,
    loads_like,
    new_credential_ids,
    parse_datetime,
    salts_from_seed,
    schema_errors,
    seeded_target_hash_of_parts,
    subject_hash_and_leaf,
    subject_hash_of,
    with_licence_metadata,
)
from verifier.issuance import EnvelopeTemplate as _EnvelopeTemplate
from verifier.issuance import iso_time as _iso

# CONTEXT, build_document and new_credential_id(s) are the format's (verifier.issuance), imported here
# for this module's callers.


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON value")


#: The decoder of uploaded records, one for all (json.loads with an argument builds a decoder and
#: its scanner per call: a third of the parse time of a 600-byte record): strict JSON (NaN and
#: Infinity refused).
RECORD_DECODER = json.JSONDecoder(parse_constant=_not_json)
#: why a text RECORD_DECODER gave up on with RecursionError is refused
NESTED_TOO_DEEPLY = "the JSON is nested too deeply"  # (as the verifier says it)


def decode_record(text: str | bytes) -> Any:
    """``RECORD_DECODER.decode(text)``: the same value, or the same error, by orjson where it gives
    them (:func:`verifier.issuance.loads_like`: two thirds of the time). ``text`` may be the
    record's UTF-8 bytes, as a JSON Lines upload's lines reach the workers (the body is not decoded
    in the service): bytes that are not UTF-8 are refused with a ValueError saying so.
    tests/registry/test_prepare_decode.py holds the two equal on generated texts, as text and as bytes."""
    if isinstance(text, bytes):
        return loads_like(text, _decode_utf8)
    string = text
    return loads_like(string.encode("utf-8", "surrogatepass"), lambda _: RECORD_DECODER.decode(string))


def _decode_utf8(data: bytes) -> Any:
    """``RECORD_DECODER.decode`` of a record's bytes, which must be UTF-8 (strictly: no surrogates)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 (byte {exc.start + 1} of the line)") from None
    return RECORD_DECODER.decode(text)


RECORD_KEYS = frozenset({"id", "validFrom", "validUntil", "credentialSubject"})
_UUID_URN = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def shape_errors(record: Any) -> list[str]:
    """What is wrong with the shape of an uploaded record (before anything is built from it)."""
    if (
        type(record) is dict
        and record.keys() <= RECORD_KEYS
        and type(record.get("credentialSubject")) is dict
    ):
        rid, valid_from, until = record.get("id"), record.get("validFrom"), record.get("validUntil")
        if (
            (rid is None or (type(rid) is str and _UUID_URN.fullmatch(rid)))
            and (valid_from is None or type(valid_from) is str)
            and (until is None or type(until) is str)
        ):
            return []  # the usual record, checked without building anything
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, not {type(record).__name__}"]
    errs = []
    extra = sorted(set(record) - RECORD_KEYS)
    if extra:
        errs.append(
            f"unknown fields {extra}: a record has credentialSubject, and optionally id, validFrom, validUntil"
        )
    if not isinstance(record.get("credentialSubject"), dict):
        errs.append("credentialSubject must be a JSON object")
    rid = record.get("id")
    if rid is not None and (not isinstance(rid, str) or not _UUID_URN.fullmatch(rid)):
        errs.append("id must be a 'urn:uuid:...' string (lower-case hex)")
    for k in ("validFrom", "validUntil"):
        if k in record and record[k] is not None and not isinstance(record[k], str):
            errs.append(f"{k} must be an RFC 3339 date-time string")
    return errs


#: The members of a document its row stores: the others — @context, type, credentialSchema,
#: credentialStatus — follow from the row's type and status-list index and the deployment, and are
#: rebuilt on reading (:func:`document_of`); they were a quarter of every row.
STORED_MEMBERS = ("id", "issuer", "validFrom", "validUntil", "credentialSubject")
#: Of those, the ones its ``packed_document`` holds: ``id`` is the row's own id column (rows written
#: before stop 37 hold it in both). Its ~40 packed bytes decided whether 5 or 6 rows fit in a 4 KiB
#: SQLite page: 821 or 684 bytes of the table a credential.
PACKED_MEMBERS = STORED_MEMBERS[1:]


#: What a worker returns for one accepted record, in this order (see :func:`prepare_records`).
ROW_FIELDS = (
    "id",
    "status_index",
    "subject_identifier",
    "target_hash",
    "subject_hash",
    "packed_document",
    "salt_seed",
    "valid_until",
    "licence_key",
)


def sqlite_datetime(dt: datetime) -> str:
    """How SQLAlchemy stores a DateTime in SQLite (its default ``storage_format``), UTC assumed."""
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond:06d}"
    )


@lru_cache(maxsize=4096)
def _until_value(text: str, sqlite: bool) -> datetime | str:
    """The ``valid_until`` column value of a validUntil text (an upload's records often share one)."""
    return sqlite_datetime(parse_datetime(text)) if sqlite else parse_datetime(text)


def prepare_upload(
    items: list[Any],
    from_text: bool,
    type_name: str,
    suite: str,
    issuer: dict,
    deployment: dict,
    first_index: int,
    sqlite: bool,
    subject_key: bytes,
) -> tuple[list[Any], list[int]]:
    """One chunk of an upload, as a worker process takes it: each item is a record, or with
    ``from_text`` a record's JSON text (a JSON Lines upload), as ``str`` or as its UTF-8 ``bytes``
    (the bulk route's), decoded here by :func:`decode_record`.
    (Sending the text costs a tenth of pickling and unpickling the decoded record, and the decoding
    runs here, on every core, instead of on the service's event loop.)

    Returns, per item, :func:`prepare_records`' output (row values and leaf hash, or a list of
    error messages), or for a text that is not JSON a str, the decoder's message; and the
    positions of the records that name their own id (the service checks those against the rest
    of the upload and the database). The k-th item has status-list index ``first_index + k``."""
    decode = decode_record
    out: list[Any] = [None] * len(items)
    records, at, supplied = [], [], []
    for k, item in enumerate(items):
        if from_text:
            try:
                item = decode(item)
            except ValueError as exc:  # JSONDecodeError, NaN / Infinity, bytes not UTF-8
                out[k] = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                continue
            except RecursionError:
                out[k] = NESTED_TOO_DEEPLY
                continue
        errs = shape_errors(item)
        if errs:
            out[k] = errs
            continue
        records.append(item)
        at.append(k)
        if item.get("id") is not None:
            supplied.append(k)
    prepared = prepare_records(
        records,
        type_name,
        suite,
        issuer,
        deployment,
        first_index,
        sqlite,
        indexes=[first_index + k for k in at],
        subject_key=subject_key,
    )
    for k, p in zip(at, prepared):
        out[k] = p
    return out, supplied


def prepare_records(
    records: list[dict],
    type_name: str,
    suite: str,
    issuer: dict,
    deployment: dict,
    first_index: int,
    sqlite: bool = False,
    indexes: list[int] | None = None,
    *,
    subject_key: bytes,
) -> list[tuple | list[str]]:
    """Build, validate, salt and hash each record (shaped as :func:`shape_errors` accepts); the k-th
    gets status-list index first_index + k, or ``indexes[k]``. An enterprise holder's
    ``subjectSalt`` is derived from ``subject_key`` (registry.services.participants).

    Returns, per record, either the values of :data:`ROW_FIELDS` followed by the credential's Merkle
    leaf hash, or a list of error messages. ``valid_until`` is a datetime, or with ``sqlite`` the
    text SQLAlchemy would store (a datetime costs more to pickle than the rest of the row).
    Runs in worker processes (all the per-credential work, so the service process only writes
    rows): imports only the verifier, json, orjson and zstandard.

    The first document of a chunk is built and checked whole. Once one has passed, the others
    share every member they do not take from their record, so only those are checked (on the
    members the row stores), and their envelope leaf is written from an :class:`_EnvelopeTemplate`
    (checked against the first document) instead of building the document.
    """
    from verifier.errors import InvalidDocument

    h = SUITE_HASHES[suite]
    whole, record_part = fast_validator_for(type_name), fast_record_validator_for(type_name)
    shared_ok = False  # whether a document of the chunk passed whole
    templates: dict[bool, _EnvelopeTemplate | None] = {}  # by "has validUntil"; None: not usable
    licence = type_name in E_LICENCE_TYPES
    issuer_code = issuer.get("unifiedSocialCreditCode", "")
    seeds = os.urandom(32 * len(records))
    ids: list[str] = []
    now: str | None = None
    out: list[Any] = []
    for k, record in enumerate(records):
        index = first_index + k if indexes is None else indexes[k]
        cid, valid_from, until = record.get("id"), record.get("validFrom"), record.get("validUntil")
        if not cid:
            ids = ids or new_credential_ids(len(records))
            cid = ids[k]
        if not valid_from:
            now = now or _iso(datetime.now(UTC))
            valid_from = now
        if licence:  # the national identifier and metadata the record left out (FORMAT.md §2.4)
            record = {
                **record,
                "credentialSubject": with_licence_metadata(
                    record["credentialSubject"], type_name, issuer_code, cid, valid_from
                ),
            }
        template = templates.get(until is not None)
        if template is not None:
            stored = (
                {
                    "id": cid,
                    "issuer": issuer,
                    "validFrom": valid_from,
                    "validUntil": until,
                    "credentialSubject": record["credentialSubject"],
                }
                if until is not None
                else {
                    "id": cid,
                    "issuer": issuer,
                    "validFrom": valid_from,
                    "credentialSubject": record["credentialSubject"],
                }
            )
            ok = record_part(stored)
        if template is None or not ok:
            doc = build_document(
                {**record, "id": cid, "validFrom": valid_from}, type_name, issuer, index, deployment
            )
            if not (record_part(doc) if shared_ok else whole(doc)):
                out.append(schema_errors(doc, type_name) or ["the record does not match the schema"])
                continue
            shared_ok = True
            envelope = envelope_jcs(doc)
            if (until is not None) not in templates:
                made = _EnvelopeTemplate(type_name, issuer, deployment, until is not None)
                usable = made.template is not None and made.jcs(cid, valid_from, until, index) == envelope
                templates[until is not None] = made if usable else None
            stored = {m: doc[m] for m in STORED_MEMBERS if m in doc}
        else:
            envelope = template.jcs(cid, valid_from, until, index)
        problems = holder_problems(stored) or (licence_metadata_problems(stored) if licence else [])
        if problems:
            out.append(problems)
            continue
        del stored["id"]  # (the row's id column: PACKED_MEMBERS)
        seed = seeds[32 * k : 32 * k + 32]
        credential_subject = record["credentialSubject"]
        try:
            target = seeded_target_hash_of_parts(envelope, credential_subject, h, seed)
        except InvalidDocument as exc:
            out.append([str(exc)])
            continue
        if credential_subject.get("holderCodeType") == "citizenId":
            # a natural person: bound by the salted digest of its citizen ID number (FORMAT.md §2.4),
            # which is also all the row keeps as its subject
            only_subject = {"credentialSubject": credential_subject}
            subject_hash = subject_hash_of(only_subject, salts_from_seed(only_subject, seed), {}, h, None)
            subject = subject_hash.hex()
            leaf = leaf_hash(target, subject_hash)
        else:
            subject = credential_subject["unifiedSocialCreditCode"]
            subject_hash, leaf = subject_hash_and_leaf(subject_key, subject, target)
        out.append(
            (
                cid,
                index,
                subject,
                "0x" + target.hex(),
                "0x" + subject_hash.hex(),
                pack(orjson.dumps(stored)),
                seed,
                _until_value(until, sqlite) if until else None,
                licence_key(record["credentialSubject"]["licenceIdentifier"]) if licence else None,
                leaf,
            )
        )
    return out
