"""Data customs on the chain: declare a flow (or an onward transfer), settle a declaration whose
receipt never reached its request, report a receipt, read a flow. A regulator's decision is
:mod:`registry.flows.decide`."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from eth_utils import keccak
from sqlalchemy import select

from registry.core.errors import (
    BadRequest,
    ChainRejected,
    ChainUnavailable,
    Forbidden,
    NotFound,
)
from registry.db.models import Batch, Credential, FlowDeclaration, Organisation, unix_time
from registry.flows.declare import (
    apply_rules,
    check_rule_fields,
)
from registry.flows.schemas import (
    DATA_ASSET_CERTIFICATE,
    DECISION_NAMES,
    LEGAL_BASES,
    PENDING,
    REJECTED,
    AssetMismatch,
    CertificateNotValid,
    DeclarationIn,
    DeclarationUnconfirmed,
    DestinationNotAuthorised,
    FlowLoop,
    JurisdictionMismatch,
    NotAssetHolder,
    NotCrossBorder,
    NotImporter,
    NotParentImporter,
    ParentFlowRejected,
    ReceiptIn,
    authorised,
    declaration_hash,
    hexs,
    iso,
    jurisdiction,
    parse_time,
)
from registry.services import audit, outbox
from registry.services import jurisdictions as J
from registry.services.issuance import document_of
from registry.services.orgs import Principal, signing_key
from registry.services.participants import participant_ids


def status_name(cred: Credential, batch: Batch | None) -> str:
    codes = {cred.status, batch.status if batch else 1}
    return "revoked" if 2 in codes else "suspended" if 3 in codes else "valid"


def validity_window(document: dict) -> tuple[int | None, int | None]:
    vf, vu = document.get("validFrom"), document.get("validUntil")
    return (
        parse_time(vf, "validFrom") if isinstance(vf, str) else None,
        parse_time(vu, "validUntil") if isinstance(vu, str) else None,
    )


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
        from registry.services.bundle import current_verifier

        result = (await current_verifier(ctx)).verify(presented)
        failed = [
            c
            for c in result.checks
            if c.status == "failed" and c.name in ("format", "integrity", "issuer", "anchor")
        ]
        if failed or proof.get("targetHash") != cred.target_hash or proof.get("merkleRoot") != batch.root:
            reason = failed[0].reason if failed else "it is not the registry's copy of this certificate"
            raise BadRequest(
                f"the presented certificate does not verify: {reason}",
                details={"checks": [{"name": c.name, "reason": c.reason} for c in failed]},
            )
    return cred, batch


def _check_certificate(cred: Credential, batch: Batch, document: dict, now: int) -> None:
    status = status_name(cred, batch)
    if status != "valid":
        raise CertificateNotValid(
            f"certificate {cred.id} is {status}: no flow of it may be declared",
            details={"credentialId": cred.id, "status": status},
        )
    vf, vu = validity_window(document)
    if (vf is not None and now < vf) or (vu is not None and now >= vu):
        raise CertificateNotValid(
            f"certificate {cred.id} is not within its validity "
            f"({document.get('validFrom')} – {document.get('validUntil')})",
            details={"credentialId": cred.id, "status": "expired"},
        )


# -- declare -----------------------------------------------------------------------------------
async def declare(ctx, principal: Principal, body: DeclarationIn, request_id: str) -> dict:
    from verifier.issuance import leaf_hash

    if not principal.has("exporter"):
        raise Forbidden(
            f"declaring a flow needs the role exporter; {principal.org_name} has {', '.join(principal.roles)}"
        )
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
    now = int(datetime.now(UTC).timestamp())
    async with ctx.sessions() as s:
        org = await _org(s, principal)
        if body.importer.identifier == org.identifier:
            raise BadRequest("the importer is the exporter itself")
        parent = None
        if body.parentFlowId is not None:
            parent = await _row(s, body.parentFlowId)
            if parent.decision == REJECTED:
                raise ParentFlowRejected(
                    f"flow {parent.flow_id} was rejected: no onward transfer of it",
                    details={"parentFlowId": parent.flow_id},
                )
            pdecl = parent.declaration
            if pdecl["importer"]["identifier"] != org.identifier:
                raise NotParentImporter(
                    f"only the importer of flow {parent.flow_id} may transfer it onward",
                    details={"parentFlowId": parent.flow_id},
                )
            if body.credentialId not in (None, parent.credential_id) or (
                body.credential is not None and body.credential.get("id") != parent.credential_id
            ):
                raise AssetMismatch(
                    f"an onward transfer carries the asset of flow {parent.flow_id} ({parent.credential_id})"
                )
            if frm != pdecl["toJurisdiction"]:
                raise JurisdictionMismatch(
                    f"flow {parent.flow_id} arrived in {pdecl['toJurisdiction']}; its onward "
                    f"transfer leaves from there, not from {frm}"
                )
            # loop: the importer must not appear upstream
            upstream: list[str] = []
            node: FlowDeclaration | None = parent
            seen: set[int] = set()
            while node is not None and node.flow_id not in seen:
                seen.add(node.flow_id)
                upstream += [
                    node.declaration["exporter"]["identifier"],
                    node.declaration["importer"]["identifier"],
                ]
                node = await _row(s, node.parent_flow_id) if node.parent_flow_id else None
            if body.importer.identifier in upstream:
                raise FlowLoop(
                    f"{body.importer.identifier} is already upstream of flow {parent.flow_id}: "
                    "an onward transfer may not loop back",
                    details={"chain": upstream},
                )
            cred = await s.get(Credential, parent.credential_id)
            batch = await s.get(Batch, cred.batch_id)
        else:
            cred, batch = await _asset(s, ctx, body)
            if cred.subject_identifier != org.identifier:
                raise NotAssetHolder(
                    f"{org.name} does not hold certificate {cred.id}: only its holder declares "
                    "an original flow of it",
                    details={"credentialId": cred.id},
                )
            if J.customs_area(frm) != J.customs_area(J.normalise(org.jurisdiction) or org.jurisdiction):
                raise JurisdictionMismatch(
                    f"{org.name} is in {org.jurisdiction}; it cannot export from {frm}"
                )
        unconfirmed = (
            await s.execute(
                select(FlowDeclaration.id)
                .where(
                    FlowDeclaration.exporter_org_id == principal.org_id,
                    FlowDeclaration.credential_id == cred.id,
                    FlowDeclaration.flow_id.is_(None),
                )
                .limit(1)
            )
        ).scalar()
        if unconfirmed is not None:
            waiting = await outbox.open_tx(s, outbox.Kind.FLOW_DECLARATION, _declaration_target(unconfirmed))
            raise DeclarationUnconfirmed(
                f"{org.name}'s earlier declaration of this asset (transaction {waiting or 'not yet sent'}) "
                "is not mined yet; it is recorded by itself once it is, so do not declare it again",
                details={"credentialId": cred.id, "txHash": waiting},
            )
        document = document_of(cred, ctx.deployment)
        _check_certificate(cred, batch, document, now)
        if not authorised(document["credentialSubject"], to, body.purpose, body.importer.identifier, now):
            raise DestinationNotAuthorised(
                f"the certificate does not authorise a transfer to {to} for {body.purpose!r}",
                details={"toJurisdiction": to, "purpose": body.purpose},
            )
        ids = await participant_ids(s)  # keyed participant ids (FORMAT.md §11)
        finding = await apply_rules(
            s,
            principal.org_id,
            ids.hex(org.identifier),
            org.name,
            body,
            frm,
            to,
            document["credentialSubject"].get("classificationLevel"),
            now,
        )
        from registry.services.records import proof_in_batch

        target, subject = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
        leaf = leaf_hash(target, subject)
        proof = await proof_in_batch(s, batch.id, leaf)
        root = bytes.fromhex(batch.root[2:])
        _, key, _ = await signing_key(s, org.id, ctx.settings.passphrase())
        declaration = {
            "version": 2,
            "nonce": secrets.token_hex(16),
            "credentialId": cred.id,
            "assetLeaf": hexs(leaf),
            "parentFlowId": body.parentFlowId,
            "exporter": {"name": org.name, "identifier": org.identifier, "jurisdiction": org.jurisdiction},
            "importer": {
                "name": body.importer.name,
                "identifier": body.importer.identifier,
                "jurisdiction": imp_j,
            },
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
        row = FlowDeclaration(
            declaration_hash=dhash,
            exporter_org_id=principal.org_id,
            credential_id=cred.id,
            parent_flow_id=body.parentFlowId,
            declaration=declaration,
            asset_leaf=hexs(leaf),
            decision=PENDING,
            created_at=datetime.now(UTC),
        )
        s.add(row)
        await s.flush()
        row_id = row.id
        # the intent, in the same transaction as the row: a row whose transaction never left is
        # undone by the settle pass (registry/services/outbox.py)
        pending_id = await outbox.record_queued(
            s,
            outbox.Kind.FLOW_DECLARATION,
            _declaration_target(row_id),
            {"actor": principal.org_name, "request_id": request_id},
            org_id=principal.org_id,
            wait=ctx.settings.tx_timeout_seconds + 5.0,
        )
    onchain = (
        body.parentFlowId or 0,
        ids.id(body.importer.identifier),
        J.to_bytes8(frm),
        J.to_bytes8(to),
        LEGAL_BASES[body.legalBasis],
        body.personalInformation,
        body.personalInformationSubjects,
        body.volume,
        keccak(text=body.purpose),
        bytes.fromhex(body.payloadDigest[2:]),
        bytes.fromhex(dhash[2:]),
    )
    fn = ctx.chain.flows.functions.declareFlow(onchain, (root, target, subject, proof))

    sent = False

    async def record(tx) -> None:  # the outbox: the signed transaction is recorded before it leaves
        nonlocal sent
        async with ctx.sessions() as s, s.begin():
            if not await outbox.mark_sent(s, pending_id, tx, wait=ctx.settings.tx_timeout_seconds + 5.0):
                raise ChainUnavailable(
                    "the declaration waited too long to be signed and was given up; declare it again"
                )
        sent = True

    try:
        receipt = await ctx.chain.transact(
            key, fn, timeout=ctx.settings.tx_timeout_seconds, before_send=record
        )
    except ChainRejected as exc:  # refused: nothing on-chain
        await _forget(ctx, row_id, pending_id, exc.message)
        raise
    except ChainUnavailable as exc:
        if not sent:  # nothing left the service: as if never declared
            await _forget(ctx, row_id, pending_id, exc.message)
            raise
        raise ChainUnavailable(
            f"{exc.message}. The declaration was sent; the registry records it by itself once it is "
            "mined (its flow appears in the trace then), so do not declare it again",
            details={"declarationHash": dhash, **(exc.details or {})},
        ) from None
    ctx.crash_point("declaration_mined")
    async with ctx.sessions() as s, s.begin():
        # claim the outbox row: if the settle pass got there first (the receipt came late), the row
        # holds the declaration and its audit entry once already
        if await outbox.finish(s, pending_id, outbox.State.CONFIRMED):
            r = await s.get(FlowDeclaration, row_id, with_for_update=True)
            await _settle(ctx, s, r, receipt, actor=principal.org_name, request_id=request_id)
        else:
            r = await s.get(FlowDeclaration, row_id)
        return flow_public(r)


def _declaration_target(row_id: int) -> str:
    """A declaration's outbox target: its row (its flow id is known only once it is mined)."""
    return f"declaration:{row_id}"


async def _forget(ctx, row_id: int, pending_id: int, error: str) -> None:
    """A declaration that never reached the chain: its row goes, its outbox row fails."""
    async with ctx.sessions() as s, s.begin():
        if await outbox.finish(s, pending_id, outbox.State.FAILED, error):
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
    r.declared_at = datetime.fromtimestamp(await ctx.chain.block_timestamp(receipt["blockNumber"]), UTC)
    await audit.append(
        s,
        actor=actor,
        action="declare_flow",
        target=f"flow:{r.flow_id}",
        request_id=request_id,
        org_id=r.exporter_org_id,
        details={"declarationHash": r.declaration_hash, "tx": tx, "parentFlowId": r.parent_flow_id},
    )


async def _undo_declaration(ctx, s, row) -> None:
    """A declaration whose transaction failed, lost its nonce to another, or never left: nothing of
    it is on the chain, so its row goes (the exporter may declare the asset again)."""
    r = await s.get(FlowDeclaration, int(row.target.split(":", 1)[1]))
    if r is not None and r.flow_id is None:
        await s.delete(r)


@outbox.settler(outbox.Kind.FLOW_DECLARATION, undo=_undo_declaration)
async def _settle_declaration(ctx, s, row, receipt: dict) -> None:
    """A declaration mined after its request gave up (or the process died): recorded on its row,
    with the audit entry ``declare_flow`` by the exporter that declared it."""
    r = await s.get(FlowDeclaration, int(row.target.split(":", 1)[1]), with_for_update=True)
    if r is not None and r.flow_id is None:
        await _settle(ctx, s, r, receipt, actor=row.payload["actor"], request_id=row.payload["request_id"])


def flow_public(r: FlowDeclaration) -> dict:
    d = r.declaration
    return {
        "flowId": r.flow_id,
        "parentFlowId": r.parent_flow_id,
        "status": DECISION_NAMES[r.decision],
        "declarationHash": r.declaration_hash,
        "declaration": d,
        "credentialId": r.credential_id,
        "assetLeaf": r.asset_leaf,
        "txHash": r.tx_hash,
        "declaredAt": iso(unix_time(r.declared_at)),
        "decision": None
        if r.decision == PENDING
        else {
            "status": DECISION_NAMES[r.decision],
            "reason": r.decision_reason,
            "decidedAt": iso(unix_time(r.decided_at)),
            "txHash": r.decision_tx,
            "rule": d.get("rule"),
        },  # the rule the decided declaration was accepted under (FORMAT.md §11.1)
        "receivedDigest": r.received_digest,
        "receivedAt": iso(unix_time(r.received_at)),
        "payloadMatches": None if r.received_digest is None else r.received_digest == d["payloadDigest"],
    }


# -- receipt / read ----------------------------------------------------------------------------
async def report_receipt(ctx, principal: Principal, flow_id: int, body: ReceiptIn, request_id: str) -> dict:
    async with ctx.sessions() as s, s.begin():
        row = await _row(s, flow_id)
        org = await _org(s, principal)
        if row.declaration["importer"]["identifier"] != org.identifier:
            raise NotImporter(f"only the importer of flow {flow_id} reports what it received")
        row.received_digest = body.payloadDigest
        row.received_at = datetime.now(UTC)
        await audit.append(
            s,
            actor=principal.org_name,
            action="report_flow_receipt",
            target=f"flow:{flow_id}",
            request_id=request_id,
            org_id=principal.org_id,
            details={"receivedDigest": body.payloadDigest},
        )
        return flow_public(row)


async def get_flow(ctx, principal: Principal, flow_id: int) -> dict:
    async with ctx.sessions() as s:
        row = await _row(s, flow_id)
        if not principal.has("regulator", "admin"):
            org = await _org(s, principal)
            if org.identifier not in (
                row.declaration["exporter"]["identifier"],
                row.declaration["importer"]["identifier"],
            ):
                raise Forbidden("a flow is read by its exporter, its importer, regulators and admins")
        return flow_public(row)
