"""Data customs: the constants, the errors, the request bodies and the small pure helpers every
part shares (declaration hash, participant id, jurisdictions, authorised uses)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    PayloadTooLarge,
    RegistryError,
)
from registry.db.models import as_utc
from registry.services import jurisdictions as J

LEGAL_BASES = {
    "security-assessment": 0,
    "standard-contract": 1,
    "certification": 2,
    "gba-standard-contract": 3,
    "exemption": 4,
}
LEGAL_BASIS_NAMES = {v: k for k, v in LEGAL_BASES.items()}
PENDING, APPROVED, REJECTED = 1, 2, 3
DECISION_NAMES = {PENDING: "pending", APPROVED: "approved", REJECTED: "rejected"}
DATA_ASSET_CERTIFICATE = 3
MAX_BODY = 256 * 1024
MAX_CATEGORIES = 64
MAX_JS_INT = 2**53 - 1
DIGEST = r"^0x[0-9a-f]{64}$"
ZERO32 = b"\0" * 32


# -- errors ------------------------------------------------------------------------------------
class UnknownJurisdiction(BadRequest):
    code = "unknown_jurisdiction"


class NotCrossBorder(BadRequest):
    code = "not_cross_border"


class FlowLoop(BadRequest):
    code = "flow_loop"


class AssetMismatch(BadRequest):
    code = "asset_mismatch"


class JurisdictionMismatch(BadRequest):
    code = "jurisdiction_mismatch"


class NotAssetHolder(Forbidden):
    code = "not_asset_holder"


class NotParentImporter(Forbidden):
    code = "not_parent_importer"


class NotImporter(Forbidden):
    code = "not_importer"


class CertificateNotValid(Conflict):
    code = "certificate_not_valid"


class ParentFlowRejected(Conflict):
    code = "parent_flow_rejected"


class AlreadyDecided(Conflict):
    code = "already_decided"


class DeclarationUnconfirmed(Conflict):
    """An earlier declaration of this asset by this exporter was sent and is not mined yet."""

    code = "declaration_unconfirmed"


class DecisionUnconfirmed(Conflict):
    """An earlier decision on this flow was sent and is not mined yet."""

    code = "decision_unconfirmed"


class DestinationNotAuthorised(RegistryError):
    code, http_status = "destination_not_authorised", 422


# -- input -------------------------------------------------------------------------------------
class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    identifier: str = Field(min_length=1, max_length=64)
    jurisdiction: str = Field(min_length=2, max_length=8)


Category = Annotated[str, Field(min_length=1, max_length=128)]
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]


class FilingIn(BaseModel):
    """The security assessment or the standard-contract filing (or certification) a flow relies on."""

    model_config = ConfigDict(extra="forbid")
    reference: str | None = Field(
        None, min_length=1, max_length=128, description="the assessment / filing number"
    )
    effectiveFrom: Day = Field(description="the assessment passed, or the contract took effect")
    filedAt: Day | None = Field(None, description="a standard contract: the day it was filed")
    validUntil: Day | None = Field(None, description="a security assessment: the last day of its validity")


class DeclarationIn(BaseModel):
    """A flow declaration as submitted (POST /v1/flows)."""

    model_config = ConfigDict(extra="forbid")
    credentialId: str | None = Field(
        None, max_length=64, description="an asset certificate the registry issued"
    )
    credential: dict[str, Any] | None = Field(None, description="or the holder copy of that certificate")
    parentFlowId: int | None = Field(None, ge=1, le=MAX_JS_INT, description="for an onward transfer")
    importer: PartyIn
    fromJurisdiction: str = Field(min_length=2, max_length=8)
    toJurisdiction: str = Field(min_length=2, max_length=8)
    dataCategories: list[Category] = Field(min_length=1, max_length=MAX_CATEGORIES)
    personalInformation: bool = False
    personalInformationSubjects: int = Field(0, ge=0, le=2**32 - 1)
    legalBasis: Literal[
        "security-assessment", "standard-contract", "certification", "gba-standard-contract", "exemption"
    ]
    purpose: str = Field(min_length=1, max_length=1024)
    volume: int = Field(ge=0, le=MAX_JS_INT, description="bytes")
    payloadDigest: str = Field(pattern=DIGEST, description="0x + 64 lower-case hex: digest of the payload")
    # the 2024 rules (FORMAT.md §11.1); all optional, so a version-1 declaration still parses
    sensitivePersonalInformation: bool = False
    sensitivePersonalInformationSubjects: int = Field(
        0, ge=0, le=2**32 - 1, description="people whose sensitive PI is included"
    )
    exporterIsCiio: bool = Field(
        False, description="the exporter is a critical-information-infrastructure operator"
    )
    exemptionGround: (
        Literal[
            "contract-with-individual",
            "cross-border-hr",
            "emergency",
            "annual-under-100000",
            "outside-negative-list",
        ]
        | None
    ) = Field(None, description="with legalBasis exemption")
    filing: FilingIn | None = None
    freeTradeZone: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="the free-trade zone the flow leaves from (its negative list applies)",
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approved", "rejected"]
    reason: str = Field("", max_length=1000)


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payloadDigest: str = Field(pattern=DIGEST)


def parse_body(model: type[BaseModel], raw: bytes, limit: int = MAX_BODY) -> BaseModel:
    """Parse a JSON body with a size limit (413) and the one error shape for bad input (400)."""
    if len(raw) > limit:
        raise PayloadTooLarge(
            f"the body is {len(raw):,} bytes; a flow request is at most {limit:,} bytes",
            details={"limit": limit, "size": len(raw)},
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()][:20]
        raise BadRequest(
            "the request is not valid: "
            + "; ".join(f"{'.'.join(map(str, d['loc'])) or 'body'}: {d['message']}" for d in details[:3]),
            details=details,
        ) from None


# -- helpers -----------------------------------------------------------------------------------
def iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None, field_name: str, *, end: bool = False) -> int | None:
    """An RFC 3339 date-time or a date (YYYY-MM-DD; `end` = the end of that day) → unix seconds."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            d = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return int(d.timestamp()) + (86399 if end else 0)
        d = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return int(as_utc(d).timestamp())
    except ValueError:
        raise BadRequest(
            f"{field_name} must be a date (YYYY-MM-DD) or an RFC 3339 date-time, not {value!r}",
            details={"field": field_name},
        ) from None


def hexs(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def declaration_hash(declaration: dict) -> str:
    return "0x" + hashlib.sha256(rfc8785.dumps(declaration)).hexdigest()


def jurisdiction(code: str, field_name: str) -> str:
    norm = J.normalise(code)
    if norm is None:
        raise UnknownJurisdiction(
            f"{field_name}: {code!r} is not a known jurisdiction (ISO 3166-1 alpha-2, a mainland subdivision "
            "such as CN-GD, or HK / MO / TW)",
            details={"field": field_name, "value": code},
        )
    return norm


def authorised(subject: dict, to_j: str, purpose: str, importer_identifier: str, at: int) -> bool:
    """Is a flow to `to_j` for `purpose` (to that importer), declared at `at`, an authorised use?"""
    for use in subject.get("authorisedUses") or []:
        if not isinstance(use, dict):
            continue
        until = parse_time(use.get("until"), "until") if isinstance(use.get("until"), str) else None
        if until is None or until <= at:
            continue
        p = use.get("purpose")
        if not isinstance(p, str):
            continue
        if p.startswith("export:"):
            _, _, rest = p.partition(":")
            scope, sep, what = rest.partition(":")
            if sep and J.normalise(scope) and J.covers(J.normalise(scope), to_j) and what in ("*", purpose):
                return True
        elif (
            p == purpose
            and (use.get("relyingParty") or {}).get("unifiedSocialCreditCode") == importer_identifier
        ):
            return True
    return False
