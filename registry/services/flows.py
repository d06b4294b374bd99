"""Cross-border data flows ("data customs"): declare, decide, report receipt, trace.

**Declare.** An exporter organisation declares a flow of a data asset it holds a certificate for
(an original flow), or — as the importer of a parent flow — an onward transfer of the same asset.
The full declaration is stored off-chain; its hash ``declarationHash = sha256(JCS(declaration))``
(RFC 8785) goes on-chain with ``DataFlowLedger.declareFlow``, signed by the exporter's own key,
together with the certificate's Merkle proof (root, targetHash, subjectHash, proof), which the
contract checks against the anchor registry. The flow id comes from the FlowDeclared event.

**Decide.** A regulator approves or rejects (a rejection needs a reason) with ``decideFlow``,
signed by the regulator's key (REGULATOR_ROLE on-chain).

**Rules**, checked before a declaration is sent and re-checked when traced: the certificate is
valid (anchored, not revoked or suspended, within validFrom/validUntil); the destination and
purpose are within the certificate's authorised uses; the legal basis covers what the rule tables
require (``registry.flows.rules``, FORMAT.md §11.1: exemptions, thresholds, GBA scope, core data);
an onward transfer needs a parent that is approved or still pending, is
declared by the parent's importer from where the parent arrived, and must not loop back to an
organisation upstream.

*Authorised uses for a cross-border destination.* The credential schema's authorised use is
``{relyingParty: {name, unifiedSocialCreditCode}, purpose, until}``. A use authorises a flow to
jurisdiction J for purpose P, declared at time T (T < until), when either
  * its ``purpose`` is ``"export:<S>:<P>"`` or ``"export:<S>:*"`` where S is J or J's country
    (``export:CN:*`` covers CN-GD), or
  * its relying party's unified social credit code is the importer's identifier and its purpose
    is exactly P (a named importer).

**Trace.** Flows (edges) between participants (nodes, keyed by participant id =
keccak256(utf8(identifier)) as on-chain), totals per jurisdiction pair, and violations:

| kind | source | when |
|---|---|---|
| certificate_revoked / certificate_suspended | chain | an approved flow's certificate is revoked / suspended |
| parent_rejected | chain | an onward transfer (pending or approved) whose parent was rejected |
| destination_not_authorised | registry | a pending/approved flow outside the certificate's authorised uses |
| certificate_expired | registry | a pending/approved flow declared outside the certificate's validity |
| payload_digest_mismatch | registry | the importer reported a payload digest other than the declared one |
| threshold_split / basis_insufficient / gba_scope / filing_overdue / assessment_expired | registry | the rule tables (``registry.flows.assess``, FORMAT.md §11.2) |

The same trace is built from the registry's DB (:func:`trace_from_db`) and from chain events alone
(:func:`trace_from_chain`); :func:`chain_view` is the part the chain knows, which must be equal.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import rfc8785
from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from registry.core.errors import (
    BadRequest,
    ChainRejected,
    ChainUnavailable,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RegistryError,
)
from registry.db.models import Batch, Credential, FlowDeclaration, Organisation, as_utc, unix_time
from registry.flows import assess, rules
from registry.flows.declare import (  # noqa: F401  (the errors are part of this module's surface)
    ExportProhibited,
    FreeTradeZoneMismatch,
    GbaScope,
    LegalBasisRequired,
    UnknownFreeTradeZone,
    apply_rules,
    check_rule_fields,
)
from registry.services import audit
from registry.services import jurisdictions as J
from registry.services.issuance import document_of
from registry.services.orgs import Principal, signing_key

LEGAL_BASES = {"security-assessment": 0, "standard-contract": 1, "certification": 2,
               "gba-standard-contract": 3, "exemption": 4}
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
    reference: str | None = Field(None, min_length=1, max_length=128, description="the assessment / filing number")
    effectiveFrom: Day = Field(description="the assessment passed, or the contract took effect")
    filedAt: Day | None = Field(None, description="a standard contract: the day it was filed")
    validUntil: Day | None = Field(None, description="a security assessment: the last day of its validity")


class DeclarationIn(BaseModel):
    """A flow declaration as submitted (POST /v1/flows)."""

    model_config = ConfigDict(extra="forbid")
    credentialId: str | None = Field(None, max_length=64, description="an asset certificate the registry issued")
    credential: dict[str, Any] | None = Field(None, description="or the holder copy of that certificate")
    parentFlowId: int | None = Field(None, ge=1, le=MAX_JS_INT, description="for an onward transfer")
    importer: PartyIn
    fromJurisdiction: str = Field(min_length=2, max_length=8)
    toJurisdiction: str = Field(min_length=2, max_length=8)
    dataCategories: list[Category] = Field(min_length=1, max_length=MAX_CATEGORIES)
    personalInformation: bool = False
    personalInformationSubjects: int = Field(0, ge=0, le=2**32 - 1)
    legalBasis: Literal["security-assessment", "standard-contract", "certification", "gba-standard-contract",
                        "exemption"]
    purpose: str = Field(min_length=1, max_length=1024)
    volume: int = Field(ge=0, le=MAX_JS_INT, description="bytes")
    payloadDigest: str = Field(pattern=DIGEST, description="0x + 64 lower-case hex: digest of the payload")
    # the 2024 rules (FORMAT.md §11.1); all optional, so a version-1 declaration still parses
    sensitivePersonalInformation: bool = False
    sensitivePersonalInformationSubjects: int = Field(0, ge=0, le=2**32 - 1,
                                                      description="people whose sensitive PI is included")
    exporterIsCiio: bool = Field(False, description="the exporter is a critical-information-infrastructure operator")
    exemptionGround: Literal["contract-with-individual", "cross-border-hr", "emergency",
                             "annual-under-100000", "outside-negative-list"] | None = Field(None, description="with legalBasis exemption")
    filing: FilingIn | None = None
    freeTradeZone: str | None = Field(None, min_length=1, max_length=64,
                                      description="the free-trade zone the flow leaves from (its negative list applies)")


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
        raise PayloadTooLarge(f"the body is {len(raw):,} bytes; a flow request is at most {limit:,} bytes",
                              details={"limit": limit, "size": len(raw)})
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()][:20]
        raise BadRequest("the request is not valid: " + "; ".join(
            f"{'.'.join(map(str, d['loc'])) or 'body'}: {d['message']}" for d in details[:3]),
            details=details) from None


# -- helpers -----------------------------------------------------------------------------------
def iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None, field_name: str, *, end: bool = False) -> int | None:
    """An RFC 3339 date-time or a date (YYYY-MM-DD; `end` = the end of that day) → unix seconds."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            d = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            return int(d.timestamp()) + (86399 if end else 0)
        d = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return int(as_utc(d).timestamp())
    except ValueError:
        raise BadRequest(f"{field_name} must be a date (YYYY-MM-DD) or an RFC 3339 date-time, not {value!r}",
                         details={"field": field_name}) from None


def hexs(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def participant_hex(identifier: str) -> str:
    return hexs(keccak(text=identifier))


def declaration_hash(declaration: dict) -> str:
    return "0x" + hashlib.sha256(rfc8785.dumps(declaration)).hexdigest()


def jurisdiction(code: str, field_name: str) -> str:
    norm = J.normalise(code)
    if norm is None:
        raise UnknownJurisdiction(
            f"{field_name}: {code!r} is not a known jurisdiction (ISO 3166-1 alpha-2, a mainland subdivision "
            "such as CN-GD, or HK / MO / TW)", details={"field": field_name, "value": code})
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
        elif p == purpose and (use.get("relyingParty") or {}).get("unifiedSocialCreditCode") == importer_identifier:
            return True
    return False


def _status_name(cred: Credential, batch: Batch | None) -> str:
    codes = {cred.status, batch.status if batch else 1}
    return "revoked" if 2 in codes else "suspended" if 3 in codes else "valid"


def _validity(document: dict) -> tuple[int | None, int | None]:
    vf, vu = document.get("validFrom"), document.get("validUntil")
    return (parse_time(vf, "validFrom") if isinstance(vf, str) else None,
            parse_time(vu, "validUntil") if isinstance(vu, str) else None)


async def _org(session, principal: Principal) -> Organisation:
    org = await session.get(Organisation, principal.org_id)
    if org is None:
        raise Forbidden("your organisation no longer exists")
    return org


async def _row(session, flow_id: int) -> FlowDeclaration:
    row = (await session.execute(select(FlowDeclaration).where(FlowDeclaration.flow_id == flow_id))).scalar()
    if row is None:
        raise NotFound(f"no flow {flow_id}", details={"flowId": flow_id})
    return row


async def _asset(session, ctx, body: DeclarationIn) -> tuple[Credential, Batch]:
    """The certificate named by id, or presented as a holder copy (verified, then found by id)."""
    cred_id = body.credentialId
    presented = None
    if body.credential is not None:
        presented = body.credential
        pid = presented.get("id")
        proof = presented.get("proof") if isinstance(presented.get("proof"), dict) else {}
        if not isinstance(pid, str):
            raise BadRequest("the presented credential has no id")
        if cred_id is not None and cred_id != pid:
            raise AssetMismatch(f"credentialId {cred_id} and the presented credential {pid} differ")
        cred_id = pid
    if cred_id is None:
        raise BadRequest("name the asset certificate: credentialId, or credential (the holder copy)")
    cred = await session.get(Credential, cred_id)
    if cred is None:
        raise NotFound(f"no asset certificate {cred_id} in this registry", details={"credentialId": cred_id})
    if cred.credential_type != DATA_ASSET_CERTIFICATE:
        raise BadRequest(f"{cred_id} is not a data asset certificate")
    batch = await session.get(Batch, cred.batch_id) if cred.batch_id else None
    if batch is None or batch.state != "anchored":
        raise CertificateNotValid(f"certificate {cred_id} is not anchored yet")
    if presented is not None:
        from registry.api.routes.verify import current_verifier

        result = (await current_verifier(ctx)).verify(presented)
        failed = [c for c in result.checks if c.status == "failed" and c.name in ("format", "integrity", "issuer",
                                                                                   "anchor")]
        if failed or proof.get("targetHash") != cred.target_hash or proof.get("merkleRoot") != batch.root:
            reason = failed[0].reason if failed else "it is not the registry's copy of this certificate"
            raise BadRequest(f"the presented certificate does not verify: {reason}",
                             details={"checks": [{"name": c.name, "reason": c.reason} for c in failed]})
    return cred, batch


def _check_certificate(cred: Credential, batch: Batch, document: dict, now: int) -> None:
    status = _status_name(cred, batch)
    if status != "valid":
        raise CertificateNotValid(f"certificate {cred.id} is {status}: no flow of it may be declared",
                                  details={"credentialId": cred.id, "status": status})
    vf, vu = _validity(document)
    if (vf is not None and now < vf) or (vu is not None and now >= vu):
        raise CertificateNotValid(f"certificate {cred.id} is not within its validity "
                                  f"({document.get('validFrom')} – {document.get('validUntil')})",
                                  details={"credentialId": cred.id, "status": "expired"})


# -- declare -----------------------------------------------------------------------------------
async def declare(ctx, principal: Principal, body: DeclarationIn, request_id: str) -> dict:
    from verifier.issuance import leaf_hash

    if not principal.has("exporter"):
        raise Forbidden(f"declaring a flow needs the role exporter; {principal.org_name} has {', '.join(principal.roles)}")
    frm = jurisdiction(body.fromJurisdiction, "fromJurisdiction")
    to = jurisdiction(body.toJurisdiction, "toJurisdiction")
    imp_j = jurisdiction(body.importer.jurisdiction, "importer.jurisdiction")
    if not J.is_cross_border(frm, to):
        raise NotCrossBorder(f"{frm} → {to} does not cross a border (both are in {J.customs_area(frm)})")
    if J.customs_area(imp_j) != J.customs_area(to):
        raise JurisdictionMismatch(f"the importer is in {imp_j}, the flow goes to {to}")
    if body.personalInformation != (body.personalInformationSubjects > 0):
        raise BadRequest("personalInformationSubjects must be > 0 exactly when personalInformation is true")
    check_rule_fields(body)
    now = int(datetime.now(timezone.utc).timestamp())
    async with ctx.sessions() as s:
        org = await _org(s, principal)
        if body.importer.identifier == org.identifier:
            raise BadRequest("the importer is the exporter itself")
        parent = None
        if body.parentFlowId is not None:
            parent = await _row(s, body.parentFlowId)
            if parent.decision == REJECTED:
                raise ParentFlowRejected(f"flow {parent.flow_id} was rejected: no onward transfer of it",
                                         details={"parentFlowId": parent.flow_id})
            pdecl = parent.declaration
            if pdecl["importer"]["identifier"] != org.identifier:
                raise NotParentImporter(f"only the importer of flow {parent.flow_id} may transfer it onward",
                                        details={"parentFlowId": parent.flow_id})
            if body.credentialId not in (None, parent.credential_id) or (
                    body.credential is not None and body.credential.get("id") != parent.credential_id):
                raise AssetMismatch(f"an onward transfer carries the asset of flow {parent.flow_id} "
                                    f"({parent.credential_id})")
            if frm != pdecl["toJurisdiction"]:
                raise JurisdictionMismatch(f"flow {parent.flow_id} arrived in {pdecl['toJurisdiction']}; its onward "
                                           f"transfer leaves from there, not from {frm}")
            # loop: the importer must not appear upstream
            upstream: list[str] = []
            node: FlowDeclaration | None = parent
            seen: set[int] = set()
            while node is not None and node.flow_id not in seen:
                seen.add(node.flow_id)
                upstream += [node.declaration["exporter"]["identifier"], node.declaration["importer"]["identifier"]]
                node = await _row(s, node.parent_flow_id) if node.parent_flow_id else None
            if body.importer.identifier in upstream:
                raise FlowLoop(f"{body.importer.identifier} is already upstream of flow {parent.flow_id}: "
                               "an onward transfer may not loop back", details={"chain": upstream})
            cred = await s.get(Credential, parent.credential_id)
            batch = await s.get(Batch, cred.batch_id)
        else:
            cred, batch = await _asset(s, ctx, body)
            if cred.subject_identifier != org.identifier:
                raise NotAssetHolder(f"{org.name} does not hold certificate {cred.id}: only its holder declares "
                                     "an original flow of it", details={"credentialId": cred.id})
            if J.customs_area(frm) != J.customs_area(J.normalise(org.jurisdiction) or org.jurisdiction):
                raise JurisdictionMismatch(f"{org.name} is in {org.jurisdiction}; it cannot export from {frm}")
        unconfirmed = (await s.execute(
            select(FlowDeclaration.tx_hash).where(FlowDeclaration.exporter_org_id == principal.org_id,
                                                  FlowDeclaration.credential_id == cred.id,
                                                  FlowDeclaration.flow_id.is_(None)).limit(1))).first()
        if unconfirmed is not None:
            raise DeclarationUnconfirmed(
                f"{org.name}'s earlier declaration of this asset (transaction {unconfirmed[0] or 'not yet sent'}) "
                "is not mined yet; it is recorded by itself once it is, so do not declare it again",
                details={"credentialId": cred.id, "txHash": unconfirmed[0]})
        document = document_of(cred, ctx.deployment)
        _check_certificate(cred, batch, document, now)
        if not authorised(document["credentialSubject"], to, body.purpose, body.importer.identifier, now):
            raise DestinationNotAuthorised(
                f"the certificate does not authorise a transfer to {to} for {body.purpose!r}",
                details={"toJurisdiction": to, "purpose": body.purpose})
        finding = await apply_rules(s, principal.org_id, participant_hex(org.identifier), org.name, body, frm, to,
                                     document["credentialSubject"].get("classificationLevel"), now)
        from registry.services.records import proof_from_tree

        target, subject = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
        leaf = leaf_hash(target, subject)
        proof = proof_from_tree(batch.tree, leaf)
        root = bytes.fromhex(batch.root[2:])
        _, key, _ = await signing_key(s, org.id, ctx.settings.passphrase())
        declaration = {
            "version": 2,
            "nonce": secrets.token_hex(16),
            "credentialId": cred.id,
            "assetLeaf": hexs(leaf),
            "parentFlowId": body.parentFlowId,
            "exporter": {"name": org.name, "identifier": org.identifier, "jurisdiction": org.jurisdiction},
            "importer": {"name": body.importer.name, "identifier": body.importer.identifier, "jurisdiction": imp_j},
            "fromJurisdiction": frm,
            "toJurisdiction": to,
            "dataCategories": list(body.dataCategories),
            "personalInformation": body.personalInformation,
            "personalInformationSubjects": body.personalInformationSubjects,
            "legalBasis": body.legalBasis,
            "purpose": body.purpose,
            "volume": body.volume,
            "payloadDigest": body.payloadDigest,
            "submittedAt": iso(now),
            # the 2024 rules (FORMAT.md §11.1)
            "sensitivePersonalInformation": body.sensitivePersonalInformation,
            "sensitivePersonalInformationSubjects": body.sensitivePersonalInformationSubjects,
            "exporterIsCiio": body.exporterIsCiio,
            "classificationLevel": document["credentialSubject"].get("classificationLevel"),
            "exemptionGround": body.exemptionGround,
            "filing": body.filing.model_dump() if body.filing else None,
            "freeTradeZone": body.freeTradeZone,
            "rule": finding,
        }
    dhash = declaration_hash(declaration)
    async with ctx.sessions() as s, s.begin():
        row = FlowDeclaration(declaration_hash=dhash, exporter_org_id=principal.org_id, credential_id=cred.id,
                              parent_flow_id=body.parentFlowId, declaration=declaration, asset_leaf=hexs(leaf),
                              decision=PENDING, created_at=datetime.now(timezone.utc))
        s.add(row)
        await s.flush()
        row_id = row.id
    onchain = (body.parentFlowId or 0, keccak(text=body.importer.identifier), J.to_bytes8(frm), J.to_bytes8(to),
               LEGAL_BASES[body.legalBasis], body.personalInformation, body.personalInformationSubjects, body.volume,
               keccak(text=body.purpose), bytes.fromhex(body.payloadDigest[2:]), bytes.fromhex(dhash[2:]))
    fn = ctx.chain.flows.functions.declareFlow(onchain, (root, target, subject, proof))

    sent = False

    async def record(tx) -> None:  # the outbox: the signed transaction is on the row before it leaves
        nonlocal sent
        async with ctx.sessions() as s, s.begin():
            r = await s.get(FlowDeclaration, row_id)
            r.raw_tx, r.tx_hash, r.nonce, r.sender = tx.raw, tx.tx_hash, tx.nonce, tx.sender
        sent = True

    try:
        receipt = await ctx.chain.transact(key, fn, timeout=ctx.settings.tx_timeout_seconds, before_send=record)
    except ChainRejected:  # refused: nothing on-chain
        await _forget(ctx, row_id)
        raise
    except ChainUnavailable as exc:
        if not sent:  # nothing left the service: as if never declared
            await _forget(ctx, row_id)
            raise
        raise ChainUnavailable(
            f"{exc.message}. The declaration was sent; the registry records it by itself once it is "
            "mined (its flow appears in the trace then), so do not declare it again",
            details={"declarationHash": dhash, **(exc.details or {})}) from None
    async with ctx.sessions() as s, s.begin():
        r = await s.get(FlowDeclaration, row_id, with_for_update=True)
        if r.flow_id is None:  # (settle_flows may have got there first if the receipt came late)
            await _settle(ctx, s, r, receipt, actor=principal.org_name, request_id=request_id)
        return flow_public(r)


async def _forget(ctx, row_id: int) -> None:
    async with ctx.sessions() as s, s.begin():
        r = await s.get(FlowDeclaration, row_id)
        if r is not None and r.flow_id is None:
            await s.delete(r)


async def _settle(ctx, s, r: FlowDeclaration, receipt: dict, *, actor: str, request_id: str) -> None:
    """Copy the FlowDeclared facts of a mined declaration onto its row, with its audit entry."""
    from web3.logs import DISCARD

    ev = ctx.chain.flows.events.FlowDeclared().process_receipt(receipt, errors=DISCARD)[0]["args"]
    tx = hexs(receipt["transactionHash"])
    r.flow_id = int(ev["flowId"])
    r.tx_hash = tx
    r.raw_tx = None
    r.declared_at = datetime.fromtimestamp(await ctx.chain.block_timestamp(receipt["blockNumber"]), timezone.utc)
    await audit.append(s, actor=actor, action="declare_flow", target=f"flow:{r.flow_id}",
                       request_id=request_id, org_id=r.exporter_org_id,
                       details={"declarationHash": r.declaration_hash, "tx": tx, "parentFlowId": r.parent_flow_id})


async def _declared_on_chain(ctx, row_id: int) -> dict | None:
    """The receipt of the transaction that declared this row's flow, found by its asset leaf and
    declaration hash in the FlowDeclared events; None if no such declaration is on the chain."""
    async with ctx.sessions() as s:
        r = await s.get(FlowDeclaration, row_id)
        if r is None or r.asset_leaf is None:
            return None
        leaf, dhash = bytes.fromhex(r.asset_leaf[2:]), bytes.fromhex(r.declaration_hash[2:])
    for log_ in await ctx.chain.logs(ctx.chain.flows.events.FlowDeclared, 0, assetLeaf=leaf):
        if bytes(log_["args"]["declaration"]["declarationHash"]) == dhash:
            return await ctx.chain.receipt(hexs(log_["transactionHash"]))
    return None


@dataclass
class SettleReport:
    recorded: list[int] = field(default_factory=list)  # flow ids of declarations found mined
    dropped: list[str] = field(default_factory=list)  # declaration hashes whose transaction can never land
    waiting: int = 0  # sent, not mined yet (re-broadcast)

    def __bool__(self) -> bool:  # did this pass settle anything
        return bool(self.recorded or self.dropped)


async def settle_flows(ctx, *, grace: float | None = None) -> SettleReport:
    """Settle declarations whose receipt never reached the request that sent them.

    Mined → recorded (flow id, block time, audit entry ``declare_flow`` by the exporter). Mined but
    failed, or its nonce taken by another transaction → removed (nothing of it is on the chain).
    Not mined and its nonce still free → re-broadcast (the node may have lost its mempool). A row
    without a signed transaction (the process died before sending, or the row predates the outbox)
    → recorded if its asset's FlowDeclared events hold its declaration hash, removed if not.

    Only rows older than ``grace`` seconds are looked at (default: the transaction timeout + 5 s), so
    a request still waiting for its own receipt settles its row itself. Raises ChainUnavailable
    while the node is unreachable."""
    if grace is None:
        grace = ctx.settings.tx_timeout_seconds + 5.0
    report = SettleReport()
    async with ctx.sessions() as s:
        rows = (await s.execute(select(FlowDeclaration.id, FlowDeclaration.tx_hash, FlowDeclaration.raw_tx,
                                       FlowDeclaration.nonce, FlowDeclaration.sender, FlowDeclaration.created_at)
                                .where(FlowDeclaration.flow_id.is_(None)).order_by(FlowDeclaration.id))).all()
    now = datetime.now(timezone.utc)
    for row_id, tx_hash, raw, nonce, sender, created in rows:
        if (now - as_utc(created)).total_seconds() < grace:
            continue
        if raw is None:
            # no signed transaction on record (the process died before sending, or the row predates
            # the outbox): the chain's FlowDeclared events for its asset say whether it got there
            receipt = await _declared_on_chain(ctx, row_id)
            if receipt is None:
                async with ctx.sessions() as s, s.begin():
                    r = await s.get(FlowDeclaration, row_id, with_for_update=True)
                    if r is not None and r.flow_id is None and r.raw_tx is None:
                        report.dropped.append(r.declaration_hash)
                        await s.delete(r)
                continue
        else:
            receipt = await ctx.chain.outcome(tx_hash, raw, nonce, sender)
            if receipt is None:
                report.waiting += 1
                continue
        async with ctx.sessions() as s, s.begin():
            r = await s.get(FlowDeclaration, row_id, with_for_update=True)  # one instance settles it
            if r is None or r.flow_id is not None:
                continue
            if receipt["status"] == 1:
                exporter = await s.get(Organisation, r.exporter_org_id)
                await _settle(ctx, s, r, receipt, actor=exporter.name, request_id="settle-flows")
                report.recorded.append(r.flow_id)
            else:
                report.dropped.append(r.declaration_hash)
                await s.delete(r)
    return report


def flow_public(r: FlowDeclaration) -> dict:
    d = r.declaration
    return {
        "flowId": r.flow_id, "parentFlowId": r.parent_flow_id, "status": DECISION_NAMES[r.decision],
        "declarationHash": r.declaration_hash, "declaration": d, "credentialId": r.credential_id,
        "assetLeaf": r.asset_leaf, "txHash": r.tx_hash, "declaredAt": iso(unix_time(r.declared_at)),
        "decision": None if r.decision == PENDING else {
            "status": DECISION_NAMES[r.decision], "reason": r.decision_reason,
            "decidedAt": iso(unix_time(r.decided_at)), "txHash": r.decision_tx,
            "rule": d.get("rule")},  # the rule the decided declaration was accepted under (FORMAT.md §11.1)
        "receivedDigest": r.received_digest, "receivedAt": iso(unix_time(r.received_at)),
        "payloadMatches": None if r.received_digest is None else r.received_digest == d["payloadDigest"],
    }


# -- decide ------------------------------------------------------------------------------------
async def decide(ctx, principal: Principal, flow_id: int, body: DecisionIn, request_id: str) -> dict:
    if not principal.has("regulator"):
        raise Forbidden(f"deciding a flow needs the role regulator; {principal.org_name} has {', '.join(principal.roles)}")
    reason = body.reason.strip()
    if body.decision == "rejected" and not reason:
        raise BadRequest("a rejection needs a reason")
    async with ctx.sessions() as s:
        row = await _row(s, flow_id)
        if row.decision != PENDING:
            raise AlreadyDecided(f"flow {flow_id} was {DECISION_NAMES[row.decision]} already",
                                 details={"flowId": flow_id, "status": DECISION_NAMES[row.decision]})
        if body.decision == "approved":
            cred = await s.get(Credential, row.credential_id)
            batch = await s.get(Batch, cred.batch_id)
            _check_certificate(cred, batch, document_of(cred, ctx.deployment),
                               int(datetime.now(timezone.utc).timestamp()))
            if row.parent_flow_id:
                parent = await _row(s, row.parent_flow_id)
                if parent.decision == REJECTED:
                    raise ParentFlowRejected(f"flow {flow_id}'s parent {parent.flow_id} was rejected: reject it too")
        _, key, _ = await signing_key(s, principal.org_id, ctx.settings.passphrase())
    code = APPROVED if body.decision == "approved" else REJECTED
    rule = row.declaration.get("rule")
    details: dict[str, Any] = {"decision": body.decision, "reason": reason,
                               "rule": {k: rule[k] for k in ("table", "version", "rule", "requires", "covered")}
                               if rule else None}
    try:
        receipt = await ctx.chain.transact(key, ctx.chain.flows.functions.decideFlow(flow_id, code, reason),
                                           timeout=ctx.settings.tx_timeout_seconds)
    except ChainUnavailable as exc:
        raise ChainUnavailable(f"{exc.message}. It may still be mined: repeat the decision to bring the registry "
                               "up to date (a flow is decided once)", details=exc.details) from None
    except ChainRejected as exc:
        if (exc.details or {}).get("error") != "AlreadyDecided":
            raise
        # decided on-chain by a request that gave up before it was mined (503): the DB takes the chain's word
        receipt, ev = await _decision_on_chain(ctx, flow_id, row.tx_hash)
        code, reason = int(ev["decision"]), ev["reason"]
        details = {"decision": DECISION_NAMES[code], "reason": reason, "settledFromChain": True,
                   "regulator": ev["regulator"], "rule": details["rule"]}
    decided_at = datetime.fromtimestamp(await ctx.chain.block_timestamp(receipt["blockNumber"]), timezone.utc)
    tx = hexs(receipt["transactionHash"])
    async with ctx.sessions() as s, s.begin():
        row = await _row(s, flow_id)
        row.decision, row.decision_reason, row.decision_tx = code, reason, tx
        row.decided_at = decided_at
        await audit.append(s, actor=principal.org_name, action="decide_flow", target=f"flow:{flow_id}",
                           request_id=request_id, org_id=principal.org_id, details={**details, "tx": tx})
        out = flow_public(row)
    if DECISION_NAMES[code] != body.decision:
        raise AlreadyDecided(f"flow {flow_id} was {DECISION_NAMES[code]} already (on-chain, by {details['regulator']})",
                             details={"flowId": flow_id, "status": DECISION_NAMES[code]})
    return out | ({"settledFromChain": True} if details.get("settledFromChain") else {})


async def _decision_on_chain(ctx, flow_id: int, declare_tx: str | None) -> tuple[dict, dict]:
    """The receipt and FlowDecided arguments of a flow's decision, found in the chain's logs."""
    start = 0
    if declare_tx:
        declared = await ctx.chain.receipt(declare_tx)
        start = int(declared["blockNumber"]) if declared else 0
    logs = await ctx.chain.logs(ctx.chain.flows.events.FlowDecided, start, flowId=flow_id)
    if not logs:
        raise ChainUnavailable(f"the chain says flow {flow_id} is decided, but its FlowDecided event was not found")
    receipt = await ctx.chain.receipt(hexs(logs[-1]["transactionHash"]))
    return receipt, dict(logs[-1]["args"])


# -- receipt / read ----------------------------------------------------------------------------
async def report_receipt(ctx, principal: Principal, flow_id: int, body: ReceiptIn, request_id: str) -> dict:
    async with ctx.sessions() as s, s.begin():
        row = await _row(s, flow_id)
        org = await _org(s, principal)
        if row.declaration["importer"]["identifier"] != org.identifier:
            raise NotImporter(f"only the importer of flow {flow_id} reports what it received")
        row.received_digest = body.payloadDigest
        row.received_at = datetime.now(timezone.utc)
        await audit.append(s, actor=principal.org_name, action="report_flow_receipt", target=f"flow:{flow_id}",
                           request_id=request_id, org_id=principal.org_id,
                           details={"receivedDigest": body.payloadDigest})
        return flow_public(row)


async def get_flow(ctx, principal: Principal, flow_id: int) -> dict:
    async with ctx.sessions() as s:
        row = await _row(s, flow_id)
        if not principal.has("regulator", "admin"):
            org = await _org(s, principal)
            if org.identifier not in (row.declaration["exporter"]["identifier"],
                                      row.declaration["importer"]["identifier"]):
                raise Forbidden("a flow is read by its exporter, its importer, regulators and admins")
        return flow_public(row)


# -- trace -------------------------------------------------------------------------------------
@dataclass
class FlowRecord:
    flow_id: int
    parent_flow_id: int
    asset_leaf: str
    asset_root: str
    exporter_id: str
    importer_id: str
    from_j: str
    to_j: str
    decision: int
    declared_at: int
    decided_at: int | None
    reason: str | None
    legal_basis: int
    personal_information: bool
    subjects: int
    volume: int
    payload_digest: str
    declaration_hash: str
    declared_tx: str
    decided_tx: str | None
    # registry-only enrichment (None from the chain)
    credential_id: str | None = None
    exporter_name: str | None = None
    exporter_identifier: str | None = None
    importer_name: str | None = None
    importer_identifier: str | None = None
    purpose: str | None = None
    categories: list[str] | None = None
    received_digest: str | None = None
    authorised: bool | None = None
    within_validity: bool | None = None


@dataclass
class CertState:
    status: str  # valid | revoked | suspended
    changed_at: int | None = None


@dataclass
class TraceQuery:
    asset: str | None = None  # asset leaf (0x…)
    organisation: str | None = None  # participant id (0x…)
    jurisdiction: str | None = None
    since: int | None = None
    until: int | None = None
    labels: dict = field(default_factory=dict)  # as the caller gave them, for the report

    def matches(self, f: FlowRecord) -> bool:
        if self.asset and f.asset_leaf != self.asset:
            return False
        if self.organisation and self.organisation not in (f.exporter_id, f.importer_id):
            return False
        if self.jurisdiction and not (J.covers(self.jurisdiction, f.from_j) or J.covers(self.jurisdiction, f.to_j)):
            return False
        if self.since is not None and f.declared_at < self.since:
            return False
        if self.until is not None and f.declared_at > self.until:
            return False
        return True


def make_query(*, asset: str | None, organisation: str | None, jurisdiction_code: str | None,
               since: str | None, until: str | None) -> TraceQuery:
    """Validate the filters. `asset` must be a leaf here; `organisation` an identifier or participant id."""
    q = TraceQuery(labels={"asset": asset, "organisation": organisation, "jurisdiction": jurisdiction_code,
                           "from": since, "to": until})
    if asset:
        if not _is_hash(asset):
            raise BadRequest(f"asset must be a certificate id or its leaf (0x + 64 hex), not {asset!r}")
        q.asset = asset.lower()
    if organisation:
        q.organisation = organisation.lower() if _is_hash(organisation) else participant_hex(organisation)
    if jurisdiction_code:
        q.jurisdiction = jurisdiction(jurisdiction_code, "jurisdiction")
    q.since = parse_time(since, "from")
    q.until = parse_time(until, "to", end=True)
    if q.since is not None and q.until is not None and q.since > q.until:
        raise BadRequest("the time window is empty: from is after to")
    return q


def _is_hash(v: str) -> bool:
    return len(v) == 66 and v[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in v[2:])


def build_trace(flows: list[FlowRecord], certs: dict[str, CertState], query: TraceQuery, source: str,
                rule_flows: list[assess.RuleFlow] | None = None) -> dict:
    by_id = {f.flow_id: f for f in flows}
    violations: list[dict] = []
    # the rule tables (registry only: the chain holds no sensitivity, CIIO or classification facts)
    table = rules.load()
    findings, problems, exporter_totals = assess.rule_violations(table, rule_flows or [], assess.now_unix())
    for fid, kind, message, details in problems:
        if fid in by_id:
            violations.append(_violation(by_id[fid], kind, "registry", message, details))
    for f in flows:
        if f.decision == APPROVED:
            cs = certs.get(f.asset_leaf)
            if cs and cs.status in ("revoked", "suspended"):
                after = cs.changed_at is not None and f.decided_at is not None and cs.changed_at >= f.decided_at
                violations.append(_violation(
                    f, f"certificate_{cs.status}", "chain",
                    f"flow {f.flow_id} was approved, but its asset certificate is {cs.status}"
                    + (" (since after the approval)" if after else ""),
                    {"certificateStatus": cs.status, "changedAt": iso(cs.changed_at), "afterApproval": after}))
        if f.parent_flow_id and f.decision != REJECTED:
            p = by_id.get(f.parent_flow_id)
            if p is not None and p.decision == REJECTED:
                violations.append(_violation(
                    f, "parent_rejected", "chain",
                    f"onward transfer {f.flow_id} is {DECISION_NAMES[f.decision]}, but its parent flow "
                    f"{p.flow_id} was rejected after it was declared",
                    {"parentFlowId": p.flow_id, "parentDecidedAt": iso(p.decided_at), "reason": p.reason}))
        if f.authorised is False and f.decision != REJECTED:
            violations.append(_violation(
                f, "destination_not_authorised", "registry",
                f"flow {f.flow_id} to {f.to_j} for {f.purpose!r} is outside the certificate's authorised uses",
                {"toJurisdiction": f.to_j, "purpose": f.purpose}))
        if f.within_validity is False and f.decision != REJECTED:
            violations.append(_violation(
                f, "certificate_expired", "registry",
                f"flow {f.flow_id} was declared outside its certificate's validity", {}))
        if f.received_digest is not None and f.received_digest != f.payload_digest:
            violations.append(_violation(
                f, "payload_digest_mismatch", "registry",
                f"the importer of flow {f.flow_id} received a payload whose digest is not the declared one",
                {"declared": f.payload_digest, "received": f.received_digest}))
    selected = sorted((f for f in flows if query.matches(f)), key=lambda f: f.flow_id)
    ids = {f.flow_id for f in selected}
    violations = [v for v in violations if v["flowId"] in ids]
    per_flow: dict[int, list[str]] = {}
    for v in violations:
        per_flow.setdefault(v["flowId"], []).append(v["kind"])

    nodes: dict[str, dict] = {}

    def node(pid: str, name: str | None, identifier: str | None, j: str) -> None:
        n = nodes.setdefault(pid, {"id": pid, "name": name, "identifier": identifier, "jurisdictions": []})
        if n["name"] is None and name:
            n["name"], n["identifier"] = name, identifier
        if j not in n["jurisdictions"]:
            n["jurisdictions"].append(j)

    edges = []
    totals: dict[tuple[str, str], dict] = {}
    for f in selected:
        node(f.exporter_id, f.exporter_name, f.exporter_identifier, f.from_j)
        node(f.importer_id, f.importer_name, f.importer_identifier, f.to_j)
        edges.append({
            "flowId": f.flow_id, "parentFlowId": f.parent_flow_id or None, "from": f.exporter_id,
            "to": f.importer_id, "fromJurisdiction": f.from_j, "toJurisdiction": f.to_j,
            "status": DECISION_NAMES[f.decision], "declaredAt": iso(f.declared_at), "decidedAt": iso(f.decided_at),
            "decisionReason": f.reason, "legalBasis": LEGAL_BASIS_NAMES.get(f.legal_basis, str(f.legal_basis)),
            "personalInformation": f.personal_information, "personalInformationSubjects": f.subjects,
            "volume": f.volume, "payloadDigest": f.payload_digest, "declarationHash": f.declaration_hash,
            "assetLeaf": f.asset_leaf, "assetRoot": f.asset_root, "declaredTx": f.declared_tx,
            "decidedTx": f.decided_tx, "violations": per_flow.get(f.flow_id, []),
            "credentialId": f.credential_id, "exporterName": f.exporter_name, "importerName": f.importer_name,
            "purpose": f.purpose, "dataCategories": f.categories, "receivedDigest": f.received_digest,
            "rule": findings.get(f.flow_id),
        })
        t = totals.setdefault((f.from_j, f.to_j), {"from": f.from_j, "to": f.to_j, "flows": 0, "approved": 0,
                                                   "pending": 0, "rejected": 0, "volume": 0})
        t["flows"] += 1
        t[DECISION_NAMES[f.decision]] += 1
        t["volume"] += f.volume
    for n in nodes.values():
        n["jurisdictions"].sort()
    return {
        "source": source,
        "query": {k: v for k, v in query.labels.items() if v},
        "generatedAt": iso(int(datetime.now(timezone.utc).timestamp())),
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "edges": edges,
        "totals": sorted(totals.values(), key=lambda t: (t["from"], t["to"])),
        "violations": violations,
        "rules": {"table": table.id, "version": table.version},
        "exporterTotals": [t for t in exporter_totals if t["exporter"] in nodes],
    }


def _violation(f: FlowRecord, kind: str, source: str, message: str, details: dict) -> dict:
    return {"flowId": f.flow_id, "kind": kind, "source": source, "message": message, "details": details}


CHAIN_EDGE_FIELDS = ("flowId", "parentFlowId", "from", "to", "fromJurisdiction", "toJurisdiction", "status",
                     "declaredAt", "decidedAt", "decisionReason", "legalBasis", "personalInformation",
                     "personalInformationSubjects", "volume", "payloadDigest", "declarationHash", "assetLeaf",
                     "assetRoot", "declaredTx", "decidedTx")


def chain_view(trace: dict) -> dict:
    """What the chain alone knows of a trace: the DB's trace and the chain's must agree on it."""
    return {
        "nodes": sorted(({"id": n["id"], "jurisdictions": n["jurisdictions"]} for n in trace["nodes"]),
                        key=lambda n: n["id"]),
        "edges": [{k: e[k] for k in CHAIN_EDGE_FIELDS} for e in trace["edges"]],
        "totals": trace["totals"],
        "violations": sorted((v["flowId"], v["kind"]) for v in trace["violations"] if v["source"] == "chain"),
    }


async def resolve_asset(ctx, asset: str | None) -> str | None:
    """A certificate id → its leaf (a leaf passes through)."""
    if not asset or _is_hash(asset):
        return asset
    from verifier.issuance import leaf_hash

    async with ctx.sessions() as s:
        cred = await s.get(Credential, asset)
    if cred is None:
        raise NotFound(f"no asset certificate {asset}", details={"asset": asset})
    return hexs(leaf_hash(bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])))


async def resolve_organisation(ctx, organisation: str | None) -> str | None:
    """An organisation id (digits) → its identifier; identifiers and participant ids pass through."""
    if organisation and organisation.isdigit() and len(organisation) < 10:
        async with ctx.sessions() as s:
            org = await s.get(Organisation, int(organisation))
        if org is None:
            raise NotFound(f"organisation {organisation} does not exist")
        return org.identifier
    return organisation


async def trace_from_db(ctx, query: TraceQuery) -> dict:
    async with ctx.sessions() as s:
        rows = (await s.execute(
            select(FlowDeclaration, Credential, Batch)
            .join(Credential, Credential.id == FlowDeclaration.credential_id)
            .join(Batch, Batch.id == Credential.batch_id)
            .where(FlowDeclaration.flow_id.is_not(None)).order_by(FlowDeclaration.flow_id))).all()
    flows, certs = [], {}
    rule_flows: list[assess.RuleFlow] = []
    docs: dict[str, dict] = {}
    for r, cred, batch in rows:
        d = r.declaration
        doc = docs.get(cred.id) or docs.setdefault(cred.id, document_of(cred, ctx.deployment))
        declared = unix_time(r.declared_at)
        vf, vu = _validity(doc)
        flows.append(FlowRecord(
            flow_id=r.flow_id, parent_flow_id=r.parent_flow_id or 0, asset_leaf=r.asset_leaf, asset_root=batch.root,
            exporter_id=participant_hex(d["exporter"]["identifier"]),
            importer_id=participant_hex(d["importer"]["identifier"]), from_j=d["fromJurisdiction"],
            to_j=d["toJurisdiction"], decision=r.decision, declared_at=declared, decided_at=unix_time(r.decided_at),
            reason=r.decision_reason, legal_basis=LEGAL_BASES[d["legalBasis"]],
            personal_information=d["personalInformation"], subjects=d["personalInformationSubjects"],
            volume=d["volume"], payload_digest=d["payloadDigest"], declaration_hash=r.declaration_hash,
            declared_tx=r.tx_hash, decided_tx=r.decision_tx, credential_id=cred.id,
            exporter_name=d["exporter"]["name"], exporter_identifier=d["exporter"]["identifier"],
            importer_name=d["importer"]["name"], importer_identifier=d["importer"]["identifier"],
            purpose=d["purpose"], categories=d["dataCategories"], received_digest=r.received_digest,
            authorised=authorised(doc["credentialSubject"], d["toJurisdiction"], d["purpose"],
                                  d["importer"]["identifier"], declared),
            within_validity=not ((vf is not None and declared < vf) or (vu is not None and declared >= vu)),
        ))
        certs[r.asset_leaf] = CertState(_status_name(cred, batch),
                                        unix_time(cred.status_changed_at) if cred.status != 1 else None)
        rule_flows.append(assess.from_declaration(
            r.flow_id, flows[-1].exporter_id, d, declared, r.decision == REJECTED, r.decision == PENDING,
            d.get("classificationLevel", doc["credentialSubject"].get("classificationLevel")),
            J.customs_area(d["fromJurisdiction"]) == "CN"))
    return build_trace(flows, certs, query, "registry", rule_flows)


def trace_from_chain(rpc_url: str, deployment, query: TraceQuery, *, step: int = 5000) -> dict:
    """The trace from the chain's events alone (FlowDeclared, FlowDecided, status changes). Sync."""
    from web3 import HTTPProvider, Web3

    from ledger_node.artifacts import load_artifact

    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    ledger = w3.eth.contract(address=Web3.to_checksum_address(deployment.data_flow_ledger),
                             abi=load_artifact("DataFlowLedger").abi)
    anchors = w3.eth.contract(address=Web3.to_checksum_address(deployment.anchor_registry),
                              abi=load_artifact("AnchorRegistry").abi)
    head = w3.eth.block_number
    times: dict[int, int] = {}

    def when(n: int) -> int:
        if n not in times:
            times[n] = int(w3.eth.get_block(n)["timestamp"])
        return times[n]

    def logs(event) -> list:
        out = []
        start = deployment.deploy_block
        while start <= head:
            end = min(head, start + step - 1)
            out += event.get_logs(from_block=start, to_block=end)
            start = end + 1
        return sorted(out, key=lambda e: (e["blockNumber"], e["logIndex"]))

    flows: dict[int, FlowRecord] = {}
    for e in logs(ledger.events.FlowDeclared()):
        a, d = e["args"], e["args"]["declaration"]
        get = (lambda k, i: d[i] if isinstance(d, (tuple, list)) else d[k])
        fid = int(a["flowId"])
        flows[fid] = FlowRecord(
            flow_id=fid, parent_flow_id=int(a["parentFlowId"]), asset_leaf=hexs(a["assetLeaf"]),
            asset_root=hexs(a["assetRoot"]), exporter_id=hexs(a["exporterId"]), importer_id=hexs(get("importerId", 1)),
            from_j=J.from_bytes8(get("fromJurisdiction", 2)), to_j=J.from_bytes8(get("toJurisdiction", 3)),
            decision=PENDING, declared_at=when(e["blockNumber"]), decided_at=None, reason=None,
            legal_basis=int(get("legalBasis", 4)), personal_information=bool(get("personalInformation", 5)),
            subjects=int(get("personalInformationSubjects", 6)), volume=int(get("volume", 7)),
            payload_digest=hexs(get("payloadDigest", 9)), declaration_hash=hexs(get("declarationHash", 10)),
            declared_tx=hexs(e["transactionHash"]), decided_tx=None)
    for e in logs(ledger.events.FlowDecided()):
        f = flows.get(int(e["args"]["flowId"]))
        if f is None:
            continue
        f.decision = int(e["args"]["decision"])
        f.decided_at = when(e["blockNumber"])
        f.reason = e["args"]["reason"]
        f.decided_tx = hexs(e["transactionHash"])
    wanted_leaves = {f.asset_leaf for f in flows.values()}
    wanted_roots = {f.asset_root for f in flows.values()}
    cred_status: dict[str, tuple[int, int]] = {}
    batch_status: dict[str, tuple[int, int]] = {}
    if flows:
        for e in logs(anchors.events.CredentialStatusChanged()):
            leaf = hexs(e["args"]["leaf"])
            if leaf in wanted_leaves:
                cred_status[leaf] = (int(e["args"]["status"]), when(e["blockNumber"]))
        for e in logs(anchors.events.BatchStatusChanged()):
            root = hexs(e["args"]["root"])
            if root in wanted_roots:
                batch_status[root] = (int(e["args"]["status"]), when(e["blockNumber"]))
    certs = {}
    for f in flows.values():
        c, b = cred_status.get(f.asset_leaf, (0, None)), batch_status.get(f.asset_root, (1, None))
        codes = {c[0], b[0]}
        status = "revoked" if 2 in codes else "suspended" if 3 in codes else "valid"
        changed = max((x[1] for x in (c, b) if x[1] is not None and x[0] in (2, 3)), default=None)
        certs[f.asset_leaf] = CertState(status, changed if status != "valid" else None)
    return build_trace(list(flows.values()), certs, query, "chain")


# -- exports -----------------------------------------------------------------------------------
def to_json(trace: dict) -> str:
    return json.dumps(trace, ensure_ascii=False, indent=2)


CSV_TABLES = {
    "flows": ("flowId", "parentFlowId", "status", "fromJurisdiction", "toJurisdiction", "exporterName", "from",
              "importerName", "to", "credentialId", "assetLeaf", "declaredAt", "decidedAt", "decisionReason",
              "legalBasis", "personalInformation", "personalInformationSubjects", "volume", "purpose",
              "dataCategories", "payloadDigest", "receivedDigest", "declarationHash", "declaredTx", "decidedTx",
              "violations", "sensitivePersonalInformationSubjects", "rule", "ruleRequires", "ruleCovered",
              "ruleArticle"),
    "violations": ("flowId", "kind", "source", "message", "flows"),
    "totals": ("from", "to", "flows", "approved", "pending", "rejected", "volume"),
    "exporters": ("exporter", "exporterName", "year", "subjects", "sensitiveSubjects", "flows", "thresholdsReached"),
}


def _csv_rows(trace: dict, table: str) -> list[dict]:
    if table == "flows":
        return [e | {"rule": (e.get("rule") or {}).get("rule"), "ruleRequires": (e.get("rule") or {}).get("requires"),
                     "ruleCovered": (e.get("rule") or {}).get("covered"),
                     "ruleArticle": ((e.get("rule") or {}).get("source") or {}).get("article")}
                for e in trace["edges"]]
    if table == "violations":
        return [v | {"flows": v["details"].get("flows")} for v in trace["violations"]]
    if table == "exporters":
        return [t | {"thresholdsReached": [x["id"] for x in t["thresholds"] if x["reached"]]}
                for t in trace.get("exporterTotals", [])]
    return trace["totals"]


def to_csv(trace: dict, table: str = "flows") -> str:
    if table not in CSV_TABLES:
        raise BadRequest(f"unknown table {table!r}: flows, violations, totals or exporters")
    cols = CSV_TABLES[table]
    rows = _csv_rows(trace, table)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(cols)
    for r in rows:
        out = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, list):
                v = ";".join(map(str, v))
            elif isinstance(v, bool):
                v = "true" if v else "false"
            elif v is None:
                v = ""
            out.append(_csv_safe(str(v)))
        w.writerow(out)
    return buf.getvalue()


def _csv_safe(v: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in free text."""
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") and not _looks_numeric(v) else v


def _looks_numeric(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


STATUS_COLOURS = {"approved": "#2e7d32", "pending": "#b7791f", "rejected": "#8a8a8a"}
VIOLATION_COLOUR = "#d32f2f"


def to_svg(trace: dict, *, tx_link: str = "/trace/tx/{tx}") -> str:
    """The flow graph as a standalone SVG: nodes in columns by depth, edges coloured by status,
    violations in red; each edge links to its declaring transaction."""
    nodes = {n["id"]: n for n in trace["nodes"]}
    edges = trace["edges"]
    depth = {nid: 0 for nid in nodes}
    for _ in range(len(nodes)):  # longest path, bounded (cycles from the chain stay finite)
        changed = False
        for e in edges:
            if e["from"] != e["to"] and depth[e["to"]] < depth[e["from"]] + 1 and depth[e["from"]] + 1 < len(nodes):
                depth[e["to"]] = depth[e["from"]] + 1
                changed = True
        if not changed:
            break
    cols: dict[int, list[str]] = {}
    for nid in sorted(nodes, key=lambda i: (depth[i], nodes[i]["jurisdictions"], nodes[i]["name"] or "", i)):
        cols.setdefault(depth[nid], []).append(nid)
    row: dict[str, float] = {}
    for d in sorted(cols):  # order each column by its parents' rows (fewer crossings)
        if d > 0:
            def bary(nid: str) -> float:
                ups = [row[x["from"]] for x in edges if x["to"] == nid and x["from"] in row]
                return sum(ups) / len(ups) if ups else float("inf")
            cols[d].sort(key=bary)
        row.update({nid: r for r, nid in enumerate(cols[d])})
    W, H, GX, GY, M = 200, 58, 300, 120, 40
    pos = {nid: (M + d * GX, M + 30 + r * GY) for d, ids in cols.items() for r, nid in enumerate(ids)}
    width = M * 2 + max([d for d in cols] or [0]) * GX + W
    height = M * 2 + 30 + max([len(v) for v in cols.values()] or [1]) * GY
    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
           f'class="flow-graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="12" role="img" aria-label="data flow graph">',
           "<title>certledger data flow trace</title>", "<defs>"]
    for name, colour in list(STATUS_COLOURS.items()) + [("violation", VIOLATION_COLOUR)]:
        out.append(f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="12" '
                   f'markerHeight="12" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    out.append("</defs>")
    out.append(f'<text x="{M}" y="{M - 10}" font-size="14" font-weight="bold">'
               f'{len(edges)} flows, {len(trace["violations"])} violations</text>')
    pair_seen: dict[tuple[str, str], int] = {}
    for ed in edges:
        x1, y1 = pos[ed["from"]]
        x2, y2 = pos[ed["to"]]
        k = pair_seen.get((ed["from"], ed["to"]), 0)
        pair_seen[(ed["from"], ed["to"])] = k + 1
        bend = (k - 0) * 26
        viol = bool(ed["violations"])
        colour = VIOLATION_COLOUR if viol else STATUS_COLOURS.get(ed["status"], "#555")
        marker = "violation" if viol else ed["status"]
        if x2 > x1:
            sx, sy, tx_, ty = x1 + W, y1 + H / 2 + bend / 3, x2, y2 + H / 2 + bend / 3
            c1, c2 = (sx + (tx_ - sx) / 2, sy - bend), (sx + (tx_ - sx) / 2, ty - bend)
        else:  # same column or backwards: loop out to the right
            sx, sy, tx_, ty = x1 + W, y1 + H / 2, x2 + W, y2 + H / 2
            off = 80 + bend
            c1, c2 = (sx + off, sy), (tx_ + off, ty)
        d = f"M{sx:.1f},{sy:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {tx_:.1f},{ty:.1f}"
        mx = 0.125 * sx + 0.375 * c1[0] + 0.375 * c2[0] + 0.125 * tx_
        my = 0.125 * sy + 0.375 * c1[1] + 0.375 * c2[1] + 0.125 * ty
        dash = ' stroke-dasharray="6 4"' if ed["status"] == "rejected" else ""
        cls = f'edge status-{e(ed["status"])}' + (" violation" if viol else "")
        title = (f'flow {ed["flowId"]}: {ed["fromJurisdiction"]} → {ed["toJurisdiction"]}, {ed["status"]}'
                 + (f' — violations: {", ".join(ed["violations"])}' if viol else ""))
        href = e(tx_link.format(tx=ed["declaredTx"]))
        out.append(f'<a href="{href}" xlink:href="{href}" class="{cls}" data-flow-id="{ed["flowId"]}" '
                   f'data-status="{e(ed["status"])}" data-violation="{"1" if viol else "0"}" '
                   f'data-violations="{e(" ".join(ed["violations"]))}" '
                   f'data-rule="{e((ed.get("rule") or {}).get("rule") or "")}" '
                   f'data-from-jurisdiction="{e(ed["fromJurisdiction"])}" data-to-jurisdiction="{e(ed["toJurisdiction"])}">'
                   f"<title>{e(title)}</title>"
                   f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{4 if viol else 2.5}"{dash} '
                   f'marker-end="url(#arrow-{marker})"/>'
                   f'<path d="{d}" fill="none" stroke="transparent" stroke-width="14"/>'
                   f'<text x="{mx:.1f}" y="{my - 6:.1f}" text-anchor="middle" fill="{colour}" paint-order="stroke" '
                   f'stroke="#fff" stroke-width="3" '
                   f'font-weight="{"bold" if viol else "normal"}">#{ed["flowId"]} {e(ed["status"])}'
                   f'{" ⚠" if viol else ""}</text></a>')
    for nid, n in nodes.items():
        x, y = pos[nid]
        label = n["name"] or (nid[:10] + "…" + nid[-4:])
        if len(label) > 24:
            label = label[:23] + "…"
        out.append(f'<g class="node" data-node-id="{e(nid)}" data-jurisdictions="{e(" ".join(n["jurisdictions"]))}">'
                   f'<title>{e((n["name"] or "") + " " + (n["identifier"] or nid))}</title>'
                   f'<rect x="{x}" y="{y}" width="{W}" height="{H}" rx="8" fill="#f4f6fb" stroke="#34495e"/>'
                   f'<text x="{x + 10}" y="{y + 22}" font-weight="bold">{e(label)}</text>'
                   f'<text x="{x + 10}" y="{y + 42}" fill="#34495e">{e(", ".join(n["jurisdictions"]))}'
                   f'{"  " + e(n["identifier"]) if n["identifier"] else ""}</text></g>')
    totals = trace.get("exporterTotals") or []
    if totals:  # the annual totals per exporter against each threshold (FORMAT.md §11.2)
        y0 = height
        height += 24 + 18 * len(totals)
        out[0] = out[0].replace(f'height="{y0}" viewBox="0 0 {width} {y0}"',
                                f'height="{height}" viewBox="0 0 {width} {height}"')
        out.append(f'<g class="exporter-totals"><text x="{M}" y="{y0 + 4}" font-weight="bold">'
                   "annual totals per exporter (people, since 1 January)</text>")
        for i, t in enumerate(totals):
            reached = [x["id"] for x in t["thresholds"] if x["reached"]]
            out.append(f'<text x="{M}" y="{y0 + 22 + 18 * i}" class="exporter-total" data-exporter="{e(t["exporter"])}" '
                       f'data-year="{t["year"]}" data-subjects="{t["subjects"]}" '
                       f'data-reached="{e(" ".join(reached))}">{e(t["exporterName"] or t["exporter"])} {t["year"]}: '
                       f'{t["subjects"]:,} people, {t["sensitiveSubjects"]:,} sensitive; flows '
                       f'{e(", ".join(map(str, t["flows"])))}; thresholds reached: {e(", ".join(reached) or "none")}'
                       "</text>")
        out.append("</g>")
    violations = trace["violations"]
    out.append('<g class="violations">' + "".join(
        f'<desc class="violation" data-flow-id="{v["flowId"]}" data-kind="{e(v["kind"])}">{e(v["message"])}</desc>'
        for v in violations) + "</g>")
    out.append("</svg>")
    return "\n".join(out)


def render(trace: dict, fmt: str, table: str = "flows") -> tuple[str, str]:
    """(body, media type) for format json | csv | svg."""
    if fmt == "json":
        return to_json(trace), "application/json"
    if fmt == "csv":
        return to_csv(trace, table), "text/csv; charset=utf-8"
    if fmt == "svg":
        return to_svg(trace), "image/svg+xml"
    raise BadRequest(f"unknown format {fmt!r}: json, csv or svg")

