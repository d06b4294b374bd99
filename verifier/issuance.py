"""The issuing side of the format (docs/FORMAT.md §2–§6): what an issuer — the registry, or anyone
issuing certledger credentials — builds, with the fast paths it needs, each checked in the tests
against the reference implementation the verifier itself uses.

* the W3C document an issuer makes of a record (:func:`build_document`, §2) and the canonical
  envelope leaf of many such documents at once (:class:`EnvelopeTemplate`, §3);
* salts and ``targetHash`` (§3): :func:`seeded_target_hash_of_parts` (salts derived from a 32-byte
  secret seed, reproduced later by :func:`salts_from_seed`);
* the Merkle tree (§4): :func:`leaf_hash`, :func:`tree_of_leaves` (the tree array over leaf
  hashes; :func:`tree_bytes` the same as bytes, from leaves given as bytes), :func:`proof_in_tree`
  (a proof read from a stored tree array), :class:`StandardMerkleTree`;
* the batch signature (§5): :func:`sign_batch`, :func:`sm2_public_key`;
* the holder copy (§6): :class:`PreparedCredential`, :func:`assemble_holder_copy`;
* an e-licence's national identifier and metadata (§2.4): :func:`with_licence_metadata`;
* the schemas (§2): :data:`CREDENTIAL_TYPES`, :data:`TYPE_NAMES`, :func:`fast_validator_for`,
  :func:`fast_record_validator_for`, :func:`schema_errors`, :func:`parse_datetime`.

Other packages (the registry, ledger_node) use this module and :mod:`verifier` only, never
``verifier._*`` (``tests/verifier/test_isolation.py`` enforces it), so a change to the format has
one place to go. Issue a batch::

    from verifier import issuance as iss

    doc = iss.build_document(record, "BusinessLicence", issuer, status_index, deployment)
    seed = os.urandom(32)
    target = iss.seeded_target_hash_of_parts(iss.envelope_jcs(doc), doc["credentialSubject"],
                                             iss.SUITE_HASHES["secp256k1"], seed)
    code = doc["credentialSubject"]["unifiedSocialCreditCode"]
    subject = iss.subject_hash(code, iss.subject_salt_for(registry_secret, code))  # FORMAT.md §1
    tree = iss.tree_of_leaves([iss.leaf_hash(target, subject), ...])
    signature = iss.sign_batch("secp256k1", key, tree[0], 1, count, chain_id=..., anchor_registry=...)
    proof = iss.proof_in_tree(b"".join(tree), iss.leaf_hash(target, subject))
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any

from verifier._holder import (
    PreparedCredential,
    assemble_holder_copy,
    subject_hash,
    subject_hash_and_leaf,
    subject_hash_of,
    subject_salt_for,
)
from verifier._internal.canon import jcs_of_checked
from verifier._internal.disclosure import (
    CITIZEN_ID_PATH,
    SUITE_HASHES,
    envelope_of,
    escape_token,
    salts_from_seed,
    seeded_target_hash_of_parts,
)
from verifier._internal.keccak import keccak256
from verifier._internal.merkle import (
    StandardMerkleTree,
    hash_pair,
    leaf_hash,
    process_proof,
    proof_in_tree,
    tree_bytes,
    tree_of_leaves,
)
from verifier._internal.statuslist import encode_status_list
from verifier._internal.suites import sign_batch, sm2_public_key
from verifier._jsonio import loads_like, loads_strict
from verifier._schema import (
    CREDENTIAL_TYPES,
    E_LICENCE_TYPES,
    TYPE_NAMES,
    fast_record_validator_for,
    fast_validator_for,
    holder_problems,
    licence_metadata_problems,
    parse_datetime,
    schema_errors,
)
from verifier.licence_id import make_licence_identifier

__all__ = [
    "CITIZEN_ID_PATH",
    "CONTEXT",
    "CREDENTIAL_TYPES",
    "DEFAULT_LICENCE_TYPE_CODES",
    "E_LICENCE_TYPES",
    "SUITE_HASHES",
    "TYPE_NAMES",
    "EnvelopeTemplate",
    "PreparedCredential",
    "StandardMerkleTree",
    "assemble_holder_copy",
    "build_document",
    "encode_status_list",
    "envelope_jcs",
    "escape_token",
    "fast_record_validator_for",
    "fast_validator_for",
    "hash_pair",
    "iso_time",
    "keccak256",
    "leaf_hash",
    "licence_metadata_problems",
    "holder_problems",
    "subject_hash",
    "subject_hash_and_leaf",
    "subject_hash_of",
    "subject_salt_for",
    "loads_like",
    "loads_strict",
    "new_credential_id",
    "new_credential_ids",
    "parse_datetime",
    "process_proof",
    "proof_in_tree",
    "salts_from_seed",
    "schema_errors",
    "seeded_target_hash_of_parts",
    "sign_batch",
    "sm2_public_key",
    "tree_bytes",
    "tree_of_leaves",
    "with_licence_metadata",
]

#: The document's ``@context`` (FORMAT.md §2).
CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://certledger.example/ns/v1"]


def envelope_jcs(document: Mapping[str, Any]) -> bytes:
    """The canonical JSON of ``document``'s envelope leaf (FORMAT.md §3): every member but
    ``credentialSubject`` and ``proof``, as :func:`seeded_target_hash_of_parts` takes it."""
    return jcs_of_checked(envelope_of(document))


def iso_time(dt: datetime) -> str:
    """``dt`` as the documents write a time: RFC 3339, UTC, whole seconds, ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_credential_id() -> str:
    """A fresh ``urn:uuid:`` with a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random
    bits. Time-ordered ids keep the credentials' primary-key index append-mostly (random UUIDv4
    keys scatter every insert across the index); the id reveals the issuance millisecond, which the
    credential's ``validFrom`` and its anchor's block time disclose anyway."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | (rand >> 62 & 0xFFF) << 64
        | 0b10 << 62
        | rand & ((1 << 62) - 1)
    )
    h = f"{value:032x}"
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID_VERSION = bytes((b & 0x0F) | 0x70 for b in range(256))  # the high nibble of byte 6 is 7
_UUID_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))  # the top bits of byte 8 are 10


def new_credential_ids(n: int) -> list[str]:
    """``n`` fresh ids as :func:`new_credential_id` makes them, sharing one millisecond (and so in
    random order among themselves), with the randomness drawn in one call."""
    rand = bytearray(os.urandom(10 * n))
    rand[0::10] = rand[0::10].translate(_UUID_VERSION)
    rand[2::10] = rand[2::10].translate(_UUID_VARIANT)
    r = rand.hex()
    ms = f"{time.time_ns() // 1_000_000:012x}"
    head = f"urn:uuid:{ms[:8]}-{ms[8:]}-"
    return [f"{head}{r[i : i + 4]}-{r[i + 4 : i + 8]}-{r[i + 8 : i + 20]}" for i in range(0, 20 * n, 20)]


def build_document(
    record: Mapping[str, Any],
    type_name: str,
    issuer: Mapping[str, Any],
    status_index: int,
    deployment: Mapping[str, Any],
) -> dict[str, Any]:
    """The credential (FORMAT.md §2, without ``proof``) of an issuer's ``record`` (``credentialSubject``
    and optionally ``id``, ``validFrom``, ``validUntil``), with its two status-list entries at
    ``status_index`` of the deployment's (``chainId``, ``anchorRegistry``) lists; an e-licence's
    subject gets the identifier and metadata its record left out (:func:`with_licence_metadata`)."""
    chain_id, registry = deployment["chainId"], deployment["anchorRegistry"].lower()
    base = f"urn:certledger:{chain_id}:{registry}:status"
    cid: str = record.get("id") or new_credential_id()
    valid_from: str = record.get("validFrom") or iso_time(datetime.now(UTC))
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": cid,
        "type": ["VerifiableCredential", type_name],
        "issuer": issuer,
        "validFrom": valid_from,
    }
    if record.get("validUntil") is not None:
        doc["validUntil"] = record["validUntil"]
    subject = record["credentialSubject"]
    if (
        type_name in E_LICENCE_TYPES
        and type(subject) is dict
        and type(issuer.get("unifiedSocialCreditCode")) is str
    ):
        subject = with_licence_metadata(
            subject, type_name, issuer["unifiedSocialCreditCode"], cid, valid_from
        )
    doc["credentialSubject"] = subject
    doc["credentialSchema"] = {
        "id": f"https://certledger.example/schemas/v1/{type_name}.json",
        "type": "JsonSchema",
    }
    doc["credentialStatus"] = [
        {
            "id": f"{base}:{purpose}#{status_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose,
            "statusListIndex": str(status_index),
            "statusListCredential": f"{base}:{purpose}",
        }
        for purpose in ("revocation", "suspension")
    ]
    return doc


def _occurrences(text: bytes, part: bytes) -> list[int]:
    """Where ``part`` starts in ``text``, every time."""
    found, at = [], text.find(part)
    while at >= 0:
        found.append(at)
        at = text.find(part, at + 1)
    return found


class EnvelopeTemplate:
    """The envelope leaf's canonical JSON (``jcs(envelope_of(document))``) of the documents
    :func:`build_document` makes for one issuer, type and deployment. They differ only in ``id``,
    ``validFrom``, ``validUntil`` and the status-list index, so the workers %-format a template
    made once from a document holding marker values instead of building each document and
    serialising it. Canonical JSON sorts members by name, so the values fill the template in the
    order of :data:`ORDER`; a template whose markers are not found exactly so (an issuer's own
    text holding one) is not used (``template`` is None)."""

    _MARK = {"id": "\x01I\x01", "validFrom": "\x01F\x01", "validUntil": "\x01U\x01"}
    _INDEX = "\x01N\x01"
    #: the template's slots: the index four times (both status entries' id and statusListIndex),
    #: then id, validFrom and validUntil
    ORDER = ("index", "index", "index", "index", "id", "validFrom", "validUntil")

    def __init__(
        self, type_name: str, issuer: Mapping[str, Any], deployment: Mapping[str, Any], with_until: bool
    ):
        record = {k: v for k, v in self._MARK.items() if with_until or k != "validUntil"}
        doc = build_document({**record, "credentialSubject": {}}, type_name, issuer, 0, deployment)
        doc["credentialStatus"] = [
            {**e, "id": e["id"][:-1] + self._INDEX, "statusListIndex": self._INDEX}
            for e in doc["credentialStatus"]
        ]
        text = jcs_of_checked(envelope_of(doc)).replace(b"%", b"%%")
        # each marker as canonical JSON writes it: the index sits inside strings, each other marker
        # is a whole string value
        escaped = {
            name: (mark if name == "index" else f'"{mark}"').replace("\x01", "\\u0001").encode()
            for name, mark in [*record.items(), ("index", self._INDEX)]
        }
        slots = sorted((at, name) for name, e in escaped.items() for at in _occurrences(text, e))
        ok = tuple(name for _, name in slots) == (self.ORDER if with_until else self.ORDER[:-1])
        for name, e in escaped.items():
            text = text.replace(e, b"%d" if name == "index" else b"%b")
        self.template: bytes | None = text if ok else None
        self.with_until = with_until

    def jcs(self, cid: str, valid_from: str, valid_until: str | None, index: int) -> bytes:
        """The envelope's canonical JSON with these values (text the schema accepted: no lone
        surrogates) and status-list index."""
        assert self.template is not None
        if self.with_until:
            assert valid_until is not None, "this template's envelope has validUntil"
            return self.template % (
                index,
                index,
                index,
                index,
                encode_basestring(cid).encode(),
                encode_basestring(valid_from).encode(),
                encode_basestring(valid_until).encode(),
            )
        return self.template % (
            index,
            index,
            index,
            index,
            encode_basestring(cid).encode(),
            encode_basestring(valid_from).encode(),
        )


#: The licence type codes (证照类型代码) certledger gives an e-licence whose issuer's record names none.
#: They are placeholders, not codes from the national licence catalogue (which could not be read
#: here): an issuer on the national platform sends its catalogue code in ``licenceTypeCode`` and
#: ``licenceIdentifier`` (FORMAT.md §2.4).
DEFAULT_LICENCE_TYPE_CODES = {"BusinessLicence": "CERTLEDGERBL001", "OperatingPermit": "CERTLEDGEROP001"}
_CN = timezone(timedelta(hours=8))


@lru_cache(maxsize=1024)
def _issue_date(valid_from: str) -> str:
    """``issueDate`` for a ``validFrom`` (its day in China time; an upload's records mostly share one)."""
    return parse_datetime(valid_from).astimezone(_CN).date().isoformat()


def with_licence_metadata(
    subject: Mapping[str, Any], type_name: str, issuer_code: str, credential_id: str, valid_from: str
) -> Mapping[str, Any]:
    """An e-licence's ``credentialSubject`` with the national identifier and metadata an issuer's
    record left out (FORMAT.md §2.4): ``licenceTypeCode`` (:data:`DEFAULT_LICENCE_TYPE_CODES`),
    ``licenceIdentifier`` (that type, the issuer's credit code ``issuer_code``, the credential id's
    32 hex digits in capitals as the serial, version 001), ``holderCodeType`` ``uscc`` and
    ``issueDate`` (``valid_from``'s day in China time). What the record gives is kept as it is (and
    checked by the schema); ``subject`` itself is not changed. Other types are returned unchanged."""
    if type_name not in E_LICENCE_TYPES or (
        "licenceIdentifier" in subject and "holderCodeType" in subject and "issueDate" in subject
    ):
        return subject
    out = dict(subject)
    type_code = out.setdefault("licenceTypeCode", DEFAULT_LICENCE_TYPE_CODES[type_name])
    if "licenceIdentifier" not in out:
        serial = credential_id.rsplit(":", 1)[-1].replace("-", "").upper()
        if type(type_code) is str:
            try:
                out["licenceIdentifier"] = make_licence_identifier(type_code, issuer_code, serial)
            except ValueError:
                pass  # the record's own licenceTypeCode is malformed: the schema names it
    out.setdefault("holderCodeType", "uscc")
    if "issueDate" not in out:
        try:
            out["issueDate"] = _issue_date(valid_from)
        except ValueError:
            pass  # a malformed validFrom: the schema names it
    return out
