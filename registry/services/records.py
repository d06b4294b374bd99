"""Reads: a credential's holder copy (document + proof from its batch's stored tree), lists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.core.errors import BadRequest, Conflict, Forbidden, NotFound
from registry.db.models import Batch, BatchTree, Credential, Organisation
from registry.db.session import get_one
from registry.services.docpack import licence_key, stored_licence_identifier
from registry.services.issuance import document_of
from registry.services.orgs import CREDENTIAL_TYPE_CODES, Principal
from registry.services.participants import participant_ids
from verifier import redact
from verifier.errors import MerkleError
from verifier.issuance import (
    CITIZEN_ID_PATH,
    TYPE_NAMES,
    PreparedCredential,
    assemble_holder_copy,
    leaf_hash,
    proof_in_tree,
    salts_from_seed,
)
from verifier.licence_id import InvalidLicenceIdentifier, parse_licence_identifier

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

STATUS_NAMES = {1: "valid", 2: "revoked", 3: "suspended"}
STATUS_CODES = {v: k for k, v in STATUS_NAMES.items()}


def proof_from_tree(tree: bytes, leaf: bytes) -> list[bytes]:
    """The OZ StandardMerkleTree proof of `leaf` from a batch's stored node array."""
    try:
        return proof_in_tree(tree, leaf)
    except MerkleError:
        raise Conflict("the credential's leaf is not in its batch tree (database inconsistent)") from None


async def proof_in_batch(session: AsyncSession, batch_id: int, leaf: bytes) -> list[bytes]:
    """The proof of `leaf` from a signed batch's stored tree (``batch_trees``); RuntimeError naming
    the batch if it has none (a signed batch always has one: the row was deleted by hand)."""
    tree = (
        await session.execute(select(BatchTree.nodes).where(BatchTree.batch_id == batch_id))
    ).scalar_one_or_none()
    if tree is None:
        raise RuntimeError(f"batch {batch_id} is signed without its tree: changed by hand")
    return proof_from_tree(tree, leaf)


def can_read(principal: Principal, cred: Credential) -> bool:
    return principal.has("admin") or (principal.has("issuer") and cred.issuer_org_id == principal.org_id)


async def load_credential(session: AsyncSession, credential_id: str) -> Credential:
    cred = await session.get(Credential, credential_id)
    if cred is None:
        raise NotFound(f"no credential {credential_id}")
    return cred


async def anchored_batch(session: AsyncSession, cred: Credential) -> Batch | None:
    """The credential's batch if it is anchored."""
    batch = await session.get(Batch, cred.batch_id) if cred.batch_id else None
    return batch if batch is not None and batch.state == "anchored" else None


async def holder_copy(
    session: AsyncSession, ctx: ServiceContext, cred: Credential, *, disclose_citizen_id: bool = False
) -> dict:
    """The holder's copy (document + proof). A natural person's citizen ID number is redacted unless
    ``disclose_citizen_id`` (FORMAT.md §2.4: never shown unredacted by default)."""
    copy = await _full_holder_copy(session, ctx, cred)
    if not disclose_citizen_id and "citizenIdNumber" in copy["credentialSubject"]:
        copy = redact(copy, [CITIZEN_ID_PATH])
    return copy


async def _full_holder_copy(session: AsyncSession, ctx: ServiceContext, cred: Credential) -> dict:
    batch = await session.get(Batch, cred.batch_id) if cred.batch_id else None
    if batch is None or batch.state != "anchored":
        raise Conflict(
            f"credential {cred.id} is not anchored yet (state {describe_state(cred, batch)})",
            details={"state": describe_state(cred, batch)},
        )
    org = await get_one(session, Organisation, cred.issuer_org_id)
    anchored = batch.anchored()
    if org.issuer_id is None:
        raise RuntimeError(f"organisation {org.id} anchored batch {batch.id} without an issuer id")
    target, subject = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
    document = document_of(cred, ctx.deployment)
    salts = salts_from_seed(document, cred.salt_seed)
    holder = document["credentialSubject"]
    natural_person = holder.get("holderCodeType") == "citizenId"
    prepared = PreparedCredential(
        salts=salts,
        target_hash=target,
        subject_hash=subject,
        credential_type=cred.credential_type,
        suite=anchored.suite,
        subject_salt=None
        if natural_person
        else (await participant_ids(session)).salt(holder["unifiedSocialCreditCode"]),
    )
    return assemble_holder_copy(
        document,
        prepared,
        merkle_root=bytes.fromhex(anchored.root[2:]),
        merkle_proof=await proof_in_batch(session, batch.id, leaf_hash(target, subject)),
        batch_count=batch.count,
        issuer_id=org.issuer_id,
        key_version=anchored.key_version,
        signature=bytes.fromhex(anchored.signature[2:]),
        chain_id=ctx.deployment.chain_id,
        anchor_registry=ctx.deployment.anchor_registry,
        tx_hash=anchored.tx_hash or "0x" + "00" * 32,
        block_number=anchored.block_number,
    )


def describe_state(cred: Credential, batch: Batch | None) -> str:
    if batch is None:
        return "accepted"
    return {
        "sealed": "batched",
        "signed": "signed",
        "sending": "anchoring",
        "anchored": "anchored",
        "rejected": "rejected",
    }.get(batch.state, batch.state)


def credential_summary(cred: Credential, batch: Batch | None) -> dict:
    return {
        "id": cred.id,
        "type": TYPE_NAMES.get(cred.credential_type, str(cred.credential_type)),
        "subject": cred.subject_identifier,
        "statusListIndex": cred.status_index,
        "state": describe_state(cred, batch),
        "status": STATUS_NAMES.get(cred.status, "unknown"),
        "statusReason": cred.status_reason,
        "batchId": cred.batch_id,
        "targetHash": cred.target_hash,
        "acceptedAt": cred.accepted_at.isoformat(),
        "licenceIdentifier": (
            stored_licence_identifier(cred.packed_document) if cred.licence_key is not None else None
        ),
    }


async def list_credentials(
    session: AsyncSession,
    principal: Principal,
    *,
    type_name: str | None,
    status: str | None,
    subject: str | None,
    batch_id: int | None,
    limit: int,
    offset: int,
    licence_identifier: str | None = None,
) -> dict:
    q = select(Credential, Batch).outerjoin(Batch, Batch.id == Credential.batch_id)
    if not principal.has("admin"):
        if not principal.has("issuer"):
            raise Forbidden("only issuers and admins list credentials")
        q = q.where(Credential.issuer_org_id == principal.org_id)
    if type_name:
        if type_name not in CREDENTIAL_TYPE_CODES:
            raise BadRequest(f"unknown credential type {type_name!r}")
        q = q.where(Credential.credential_type == CREDENTIAL_TYPE_CODES[type_name])
    if status:
        if status not in STATUS_CODES:
            raise BadRequest(f"unknown status {status!r}: valid, revoked or suspended")
        q = q.where(Credential.status == STATUS_CODES[status])
    if subject:
        q = q.where(Credential.subject_identifier == subject)
    if batch_id is not None:
        q = q.where(Credential.batch_id == batch_id)
    if licence_identifier is not None:
        try:
            parse_licence_identifier(licence_identifier)
        except InvalidLicenceIdentifier as exc:
            raise BadRequest(f"licenceIdentifier: {exc}") from None
        q = q.where(Credential.licence_key == licence_key(licence_identifier))
    total = (await session.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
    rows = (await session.execute(q.order_by(Credential.status_index).limit(limit).offset(offset))).all()
    items = [credential_summary(c, b) for c, b in rows]
    if licence_identifier is not None:  # (another identifier with the same 64-bit key: never seen)
        kept = [i for i in items if i["licenceIdentifier"] == licence_identifier]
        total, items = total - (len(items) - len(kept)), kept
    return {"total": total, "items": items}


async def holder_credentials(session: AsyncSession, principal: Principal, *, limit: int, offset: int) -> dict:
    """The credentials whose subject is the calling holder organisation (its own credit code), with the
    holder copy of each one anchored. Never another subject's."""
    org = await get_one(session, Organisation, principal.org_id)
    q = (
        select(Credential, Batch)
        .outerjoin(Batch, Batch.id == Credential.batch_id)
        .where(Credential.subject_identifier == org.identifier)
    )
    total = (await session.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
    rows = (await session.execute(q.order_by(Credential.status_index).limit(limit).offset(offset))).all()
    return {"total": total, "items": [credential_summary(c, b) for c, b in rows]}


async def holder_credential(
    session: AsyncSession, ctx: Any, principal: Principal, credential_id: str
) -> dict:
    """One of the calling holder's own credentials, with its holder copy once anchored; 404 for any
    other (whether or not it exists: a holder learns nothing of others' credentials)."""
    org = await session.get(Organisation, principal.org_id)
    cred = await session.get(Credential, credential_id) if len(credential_id) <= 64 else None
    if cred is None or org is None or cred.subject_identifier != org.identifier:
        raise NotFound(f"no credential {credential_id} of yours")
    batch = await session.get(Batch, cred.batch_id) if cred.batch_id else None
    summary = credential_summary(cred, batch)
    if batch is None or batch.state != "anchored":
        return {**summary, "credential": None}
    return {**summary, "credential": await holder_copy(session, ctx, cred)}


def batch_summary(b: Batch) -> dict:
    return {
        "id": b.id,
        "issuerOrgId": b.issuer_org_id,
        "type": TYPE_NAMES.get(b.credential_type),
        "state": b.state,
        "count": b.count,
        "root": b.root,
        "txHash": b.tx_hash,
        "blockNumber": b.block_number,
        "status": STATUS_NAMES.get(b.status),
        "statusReason": b.status_reason,
        "attempts": b.attempts,
        "lastError": b.last_error,
        "createdAt": b.created_at.isoformat(),
        "anchoredAt": b.anchored_at.isoformat() if b.anchored_at else None,
    }
