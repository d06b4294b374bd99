"""Revoke, suspend, reinstate — one credential or a batch. On-chain first (signed by the issuing
organisation's own key, or governance for an admin), the DB after the transaction is mined.
The contract enforces the same rule as the API: a compromised API cannot make one issuer
change another issuer's credential, because it would have to sign with that issuer's key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from registry.core.errors import BadRequest, ChainRejected, Conflict, Forbidden
from registry.db.models import Batch, Credential
from registry.services import audit, outbox
from registry.services.chain import TxSigner
from registry.services.orgs import Principal, signing_key
from registry.services.records import load_credential, proof_in_batch
from verifier.issuance import leaf_hash

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.db.models import OutboxTx
    from registry.services.context import ServiceContext

ACTIONS = {"revoke": 2, "suspend": 3, "reinstate": 1}
#: What the contract answers when the requested status already holds on-chain.
_ALREADY = {"AlreadyRevoked", "AlreadySuspended", "NotSuspended"}
REASONS = {
    "unspecified": 0,
    "keyCompromise": 1,
    "superseded": 2,
    "cessationOfOperation": 3,
    "affiliationChanged": 4,
    "privilegeWithdrawn": 5,
    "dataInaccurate": 6,
    "holderRequest": 7,
    "courtOrder": 8,
}


def forget_verifier(ctx: ServiceContext) -> None:
    """This instance's next verification sees the change (``ServiceContext.anchors_changed``)."""
    ctx.anchors_changed()


def reason_code(reason: str | int | None) -> int:
    if reason is None:
        return 0
    if isinstance(reason, int) and 0 <= reason <= 255:
        return reason
    if isinstance(reason, str) and reason in REASONS:
        return REASONS[reason]
    raise BadRequest(f"unknown reason {reason!r}: one of {', '.join(REASONS)}")


async def _signer(
    ctx: ServiceContext, session: AsyncSession, principal: Principal, issuer_org_id: int
) -> TxSigner:
    """Who signs the change: governance for an admin; the issuer's key, or its own signer (which
    checks that the root is one it signed), for the issuing organisation."""
    if principal.has("admin"):
        return ctx.governance_key
    if principal.has("issuer") and principal.org_id == issuer_org_id:
        _, key, _ = await signing_key(
            session,
            principal.org_id,
            ctx.settings.passphrase(),
            signer_timeout=ctx.settings.signer_timeout_seconds,
        )
        return key
    raise Forbidden("only the issuing organisation (or an admin) may change this status")


def _already(exc: ChainRejected, action: str, chain_status: int) -> bool:
    """The chain refused because the status ``action`` asks for holds on-chain already."""
    return (exc.details or {}).get("error") in _ALREADY and chain_status == ACTIONS[action]


_NAMES = {1: "valid", 2: "revoked", 3: "suspended"}


async def change_credential(
    ctx: ServiceContext,
    principal: Principal,
    credential_id: str,
    action: str,
    reason: str | int | None,
    request_id: str,
) -> dict:
    code = reason_code(reason)
    async with ctx.sessions() as s:
        cred = await load_credential(s, credential_id)
        key = await _signer(ctx, s, principal, cred.issuer_org_id)
        batch = await s.get(Batch, cred.batch_id) if cred.batch_id else None
        if batch is None or batch.state != "anchored":
            raise Conflict(
                f"credential {credential_id} is not anchored yet; its status can change once it is"
            )
        target, subject = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
        leaf = leaf_hash(target, subject)
        anchored = batch.anchored()
        root = bytes.fromhex(anchored.root[2:])
        proof = await proof_in_batch(s, batch.id, leaf)
    f = ctx.chain.anchors.functions
    if action == "revoke":
        fn = f.revokeCredential(root, target, subject, proof, code)
    elif action == "suspend":
        fn = f.suspendCredential(root, target, subject, proof, code)
    elif action == "reinstate":
        fn = f.reinstateCredential(root, leaf)
    else:
        raise BadRequest(f"unknown action {action!r}")

    async def on_chain() -> tuple[int, int, int]:
        st, why, ts = await ctx.chain.call(ctx.chain.anchors.functions.credentialStatusOf(root, leaf))
        return st or 1, why, ts

    return await _change(
        ctx,
        principal,
        "credential",
        credential_id,
        action,
        code,
        key,
        fn,
        request_id,
        db_status=cred.status,
        on_chain=on_chain,
    )


async def change_batch(
    ctx: ServiceContext,
    principal: Principal,
    batch_id: int,
    action: str,
    reason: str | int | None,
    request_id: str,
) -> dict:
    code = reason_code(reason)
    async with ctx.sessions() as s:
        batch = await s.get(Batch, batch_id)
        if batch is None:
            from registry.core.errors import NotFound

            raise NotFound(f"no batch {batch_id}")
        key = await _signer(ctx, s, principal, batch.issuer_org_id)
        if batch.state != "anchored":
            raise Conflict(f"batch {batch_id} is not anchored yet")
        root_hex = batch.anchored().root
        root = bytes.fromhex(root_hex[2:])
    f = ctx.chain.anchors.functions
    fn = {
        "revoke": lambda: f.revokeBatch(root, code),
        "suspend": lambda: f.suspendBatch(root, code),
        "reinstate": lambda: f.reinstateBatch(root),
    }.get(action)
    if fn is None:
        raise BadRequest(f"unknown action {action!r}")

    async def on_chain() -> tuple[int, int, int]:
        anchor = await ctx.chain.anchor_of(root_hex)
        if not anchor:
            return 0, 0, 0
        # the anchor record keeps no date for its status: the latest BatchStatusChanged block has it
        return (
            anchor["status"],
            anchor["reason"],
            await ctx.chain.batch_status_time(root, anchor["blockNumber"]),
        )

    return await _change(
        ctx,
        principal,
        "batch",
        str(batch_id),
        action,
        code,
        key,
        fn(),
        request_id,
        db_status=batch.status,
        on_chain=on_chain,
    )


class ChangeUnconfirmed(Conflict):
    """An earlier change of the same credential or batch was sent and is not mined yet."""

    code = "change_unconfirmed"


async def _change(
    ctx: ServiceContext,
    principal: Principal,
    kind: str,
    target: str,
    action: str,
    code: int,
    key: TxSigner,
    fn: Any,
    request_id: str,
    *,
    db_status: int,
    on_chain: Callable[[], Awaitable[tuple[int, int, int]]],
) -> dict:
    """Send the change (its signed transaction recorded in the outbox first), then apply it
    to the DB. The chain decides; the DB follows."""
    async with ctx.sessions() as s:
        waiting = await pending_tx(s, kind, target)
    if waiting is not None:
        raise ChangeUnconfirmed(
            f"an earlier change of {kind} {target} (transaction {waiting}) is not mined yet; the registry applies "
            "it by itself once it is",
            details={"txHash": waiting},
        )
    pending_id: int | None = None
    try:
        receipt, pending_id = await outbox.transact_recorded(
            ctx,
            key,
            fn,
            outbox.Kind.STATUS_CHANGE,
            f"{kind}:{target}",
            {"action": action, "reason": code, "actor": principal.org_name, "request_id": request_id},
            org_id=principal.org_id,
            sent_note=f"The change was sent; the registry applies it by itself once it is mined (another change "
            f"of this {kind} waits until then)",
        )
    except ChainRejected as exc:
        status, why, ts = await on_chain()
        if not (_already(exc, action, status) and db_status != ACTIONS[action]):
            raise
        # The chain holds this status already (a transaction the registry lost track of, from before
        # pending changes were recorded): the DB takes the chain's word.
        async with ctx.sessions() as s, s.begin():
            await _apply(
                s,
                kind,
                target,
                action,
                why,
                None,
                datetime.fromtimestamp(ts, UTC) if ts else None,
                actor=principal.org_name,
                org_id=principal.org_id,
                request_id=request_id,
                settled=True,
            )
        forget_verifier(ctx)
        out = {
            "id": _id(kind, target),
            "status": _NAMES[ACTIONS[action]],
            "reason": why,
            "txHash": None,
            "settledFromChain": True,
        }
        return out | ({"blockNumber": None} if kind == "credential" else {})
    ctx.crash_point("change_mined")
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    assert pending_id is not None  # (transact_recorded returned)
    async with ctx.sessions() as s, s.begin():
        # claim the pending record: if the settler already applied it (this request outlived its
        # grace period), the DB holds the change and its audit entry once
        if await outbox.finish(s, pending_id, outbox.State.CONFIRMED):
            await _apply(
                s,
                kind,
                target,
                action,
                code,
                tx,
                datetime.now(UTC),
                actor=principal.org_name,
                org_id=principal.org_id,
                request_id=request_id,
            )
    forget_verifier(ctx)
    out = {"id": _id(kind, target), "status": _NAMES[ACTIONS[action]], "reason": code, "txHash": tx}
    return out | ({"blockNumber": receipt["blockNumber"]} if kind == "credential" else {})


def _id(kind: str, target: str) -> str | int:
    return int(target) if kind == "batch" else target


async def pending_tx(s: AsyncSession, kind: str, target: str) -> str | None:
    """The transaction of a change of this credential or batch that was sent and is not settled yet."""
    return await outbox.open_tx(s, outbox.Kind.STATUS_CHANGE, f"{kind}:{target}")


def _reason(action: str, reason: int) -> int:
    """The reason a status keeps: a reinstated credential or batch has none."""
    return 0 if action == "reinstate" else reason


async def _apply(
    s: AsyncSession,
    kind: str,
    target: str,
    action: str,
    reason: int,
    tx: str | None,
    when: datetime | None,
    *,
    actor: str,
    org_id: int | None,
    request_id: str,
    settled: bool = False,
) -> None:
    """Write a mined change into the DB, with its audit entry."""
    reason = _reason(action, reason)
    details = {"reason": reason, "tx": tx} | ({"settledFromChain": True} if settled else {})
    if kind == "credential":
        await s.execute(
            update(Credential)
            .where(Credential.id == target)
            .values(status=ACTIONS[action], status_reason=reason, status_changed_at=when, status_tx=tx)
        )
        await audit.append(
            s,
            actor=actor,
            action=f"{action}_credential",
            target=target,
            request_id=request_id,
            org_id=org_id,
            details=details,
        )
    else:
        await s.execute(
            update(Batch)
            .where(Batch.id == int(target))
            .values(status=ACTIONS[action], status_reason=reason, status_changed_at=when)
        )
        await audit.append(
            s,
            actor=actor,
            action=f"{action}_batch",
            target=f"batch:{target}",
            request_id=request_id,
            org_id=org_id,
            details=details,
        )


#: status code → the action that leads to it
_ACTION_OF = {code: action for action, code in ACTIONS.items()}


async def adopt_status(
    s: AsyncSession,
    kind: str,
    target: str,
    status: int,
    reason: int,
    when: datetime | None,
    *,
    org_id: int,
    request_id: str,
) -> None:
    """Take a status from the chain that no request of the registry made (``certledger audit
    --adopt-chain-status``): written as a mined change by the operator's audit, in ``s``'s transaction."""
    await _apply(
        s,
        kind,
        target,
        _ACTION_OF[status],
        reason,
        None,
        when,
        actor="certledger audit",
        org_id=org_id,
        request_id=request_id,
        settled=True,
    )


@outbox.settler(outbox.Kind.STATUS_CHANGE)
async def _settle_change(ctx: ServiceContext, s: AsyncSession, row: OutboxTx, receipt: dict) -> None:
    """A status change mined after its request gave up: applied by the organisation that asked,
    dated by its block."""
    kind, target = row.target.split(":", 1)
    p = row.payload
    mined = await ctx.chain.block_timestamp(receipt["blockNumber"])
    await _apply(
        s,
        kind,
        target,
        p["action"],
        p["reason"],
        row.tx_hash,
        datetime.fromtimestamp(mined, UTC),
        actor=p["actor"],
        org_id=row.org_id,
        request_id=p["request_id"],
        settled=True,
    )


ChangesReport = outbox.Report


async def settle_changes(ctx: ServiceContext, *, grace: float | None = None) -> outbox.Report:
    """Finish the status changes a request left pending (it timed out, or the process died): the
    outbox's settle pass for :attr:`outbox.Kind.STATUS_CHANGE` (``grace``: look at rows this old
    instead of waiting for their ``next_attempt_at``)."""
    report = await outbox.settle(ctx, kinds=(outbox.Kind.STATUS_CHANGE,), grace=grace)
    if report.applied:
        forget_verifier(ctx)
    return report
