"""One outbox for the chain transactions the registry signs (issue #20, point 2).

A row is written before its signed transaction leaves (state ``sent``; ``queued`` for a kind that
records its intent before signing), and ends ``confirmed`` (the DB took the mined outcome) or
``failed`` (reverted, or its nonce was taken). :func:`settle` is the one settle loop: it looks at
every ``sent`` row whose ``next_attempt_at`` has come, asks the chain what became of it, and hands
a mined receipt to the settler registered for the row's ``kind``. Control state lives in columns
(``state``, ``attempts``, ``refused_resends``, ``next_attempt_at``); ``last_error`` is for people
only.

Anchors (kind ``anchor``, target ``batch:ID``) are the one kind :func:`settle` does not look at: the
pipeline sends them hundreds at a time and confirms them by root, in one batched call for all its
batches (registry/services/anchoring.py), with :func:`record_all_sent`, :func:`open_rows` and
:func:`finish_targets` here. A batch in ``sending`` has one open row: its transaction in flight."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select, update

from registry.core.errors import ChainRejected, ChainUnavailable
from registry.db.models import OutboxTx, as_utc
from registry.db.session import rowcount

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.services.chain import SentTx, TxSigner
    from registry.services.context import ServiceContext


class Kind(StrEnum):
    ANCHOR = "anchor"
    STATUS_CHANGE = "status_change"
    FLOW_DECLARATION = "flow_declaration"
    FLOW_DECISION = "flow_decision"
    REGISTRATION = "registration"
    PLEDGE_REGISTRY = "pledge_registry"


class State(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


#: kind → what the DB does with a mined receipt, in the settling session
Settler = Callable[["ServiceContext", "AsyncSession", OutboxTx, dict], Awaitable[None]]
#: kind → what the DB undoes when the row's transaction failed or was never sent, in the same session
Undo = Callable[["ServiceContext", "AsyncSession", OutboxTx], Awaitable[None]]
#: kind → how the settle pass signs and sends a queued row itself (``mark_sent`` before it leaves)
Send = Callable[["ServiceContext", OutboxTx], Awaitable[None]]
_SETTLERS: dict[Kind, Settler] = {}
_UNDO: dict[Kind, Undo] = {}
_SEND: dict[Kind, Send] = {}

#: the longest wait between two looks at a transaction that is not mined yet
MAX_BACKOFF = 60.0


def settler(
    kind: Kind, *, undo: Undo | None = None, send: Send | None = None
) -> Callable[[Settler], Settler]:
    """Register ``kind``'s settler; for a kind whose request wrote a row before sending, what to undo
    when its transaction fails or never leaves; for a kind the settle pass may send itself (nothing
    of the request is needed to sign it), how to send a queued row whose request ended first."""

    def register(fn: Settler) -> Settler:
        _SETTLERS[kind] = fn
        if undo is not None:
            _UNDO[kind] = undo
        if send is not None:
            _SEND[kind] = send
        return fn

    return register


def now() -> datetime:
    return datetime.now(UTC)


async def record_sent(
    s: AsyncSession, kind: Kind, target: str, payload: dict, tx: SentTx, *, org_id: int | None, wait: float
) -> int:
    """Record a signed transaction ``tx`` (a chain.SentTx) in ``s``'s transaction; the settler looks
    at it ``wait`` seconds from now (the request that sent it waits for it until then)."""
    row = OutboxTx(**_sent_row(kind, target, payload, tx, org_id, now(), wait))
    s.add(row)
    await s.flush()
    return row.id


def _sent_row(
    kind: Kind, target: str, payload: dict, tx: SentTx, org_id: int | None, at: datetime, wait: float
) -> dict[str, Any]:
    """The column values of a sent transaction's row."""
    return dict(
        kind=str(kind),
        state=str(State.SENT),
        target=target,
        payload=payload,
        org_id=org_id,
        raw_tx=tx.raw,
        tx_hash=tx.tx_hash,
        nonce=tx.nonce,
        sender=tx.sender,
        attempts=0,
        refused_resends=0,
        next_attempt_at=at + timedelta(seconds=wait),
        created_at=at,
    )


async def record_all_sent(
    s: AsyncSession, kind: Kind, sent: list[tuple[str, SentTx, int | None]], *, wait: float = 0.0
) -> None:
    """Record many signed transactions of ``kind`` at once, each ``(target, tx, org id)``, in ``s``'s
    transaction. A target's earlier open row (a transaction this one replaces: re-signed with a new
    nonce) is ``failed`` first, so a target has one open row."""
    if not sent:
        return
    await finish_targets(
        s, kind, [t for t, _, _ in sent], State.FAILED, "replaced by a new transaction (signed again)"
    )
    at = now()
    # (one INSERT run for all rows, not the unit of work's flush of an object per row)
    await s.execute(
        insert(OutboxTx), [_sent_row(kind, target, {}, tx, org_id, at, wait) for target, tx, org_id in sent]
    )


def _open_of(kind: Kind, targets: list[str], states: tuple[State, ...] = (State.QUEUED, State.SENT)) -> Any:
    """The condition for the open rows of ``kind`` of ``targets``."""
    return and_(
        OutboxTx.kind == str(kind), OutboxTx.target.in_(targets), OutboxTx.state.in_([str(x) for x in states])
    )


async def open_rows(s: AsyncSession, kind: Kind, targets: list[str]) -> dict[str, OutboxTx]:
    """The open (sent) row of ``kind`` of each of ``targets`` that has one."""
    rows = (await s.execute(select(OutboxTx).where(_open_of(kind, targets, (State.SENT,))))).scalars()
    return {r.target: r for r in rows}


async def finish_targets(
    s: AsyncSession, kind: Kind, targets: list[str], state: State, error: str | None = None
) -> None:
    """Settle the open rows of ``kind`` of ``targets`` as ``state`` (``error`` for people)."""
    if not targets:
        return
    values = {"state": str(state), "settled_at": now()} | ({"last_error": error} if error else {})
    await s.execute(update(OutboxTx).where(_open_of(kind, targets)).values(**values))


async def count_refused_resend(s: AsyncSession, kind: Kind, target: str, note: str) -> None:
    """The node refused to take the open (sent) transaction of ``kind`` for ``target`` again while
    it is not mined: one more in its ``refused_resends`` (``note`` for people)."""
    await s.execute(
        update(OutboxTx)
        .where(_open_of(kind, [target], (State.SENT,)))
        .values(refused_resends=OutboxTx.refused_resends + 1, last_error=note)
    )


async def record_queued(
    s: AsyncSession, kind: Kind, target: str, payload: dict, *, org_id: int | None, wait: float
) -> int:
    """Record the intent to send a transaction of ``kind`` for ``target`` (state ``queued``), in
    ``s``'s transaction, before it is signed: the request then signs it and :func:`mark_sent` puts
    the signed transaction on the row before it leaves. A row still queued ``wait`` seconds from now
    was never sent (the request or the process ended first): the settle pass fails it and undoes its
    kind's row."""
    at = now()
    row = OutboxTx(
        kind=str(kind),
        state=str(State.QUEUED),
        target=target,
        payload=payload,
        org_id=org_id,
        attempts=0,
        next_attempt_at=at + timedelta(seconds=wait),
        created_at=at,
    )
    s.add(row)
    await s.flush()
    return row.id


async def mark_sent(s: AsyncSession, row_id: int, tx: SentTx, *, wait: float) -> bool:
    """Put the signed transaction ``tx`` on a queued row (``sent``), in ``s``'s transaction. False if
    the row is no longer queued (the settle pass gave it up as never sent): do not send it then."""
    result = await s.execute(
        update(OutboxTx)
        .where(OutboxTx.id == row_id, OutboxTx.state == str(State.QUEUED))
        .values(
            state=str(State.SENT),
            raw_tx=tx.raw,
            tx_hash=tx.tx_hash,
            nonce=tx.nonce,
            sender=tx.sender,
            next_attempt_at=now() + timedelta(seconds=wait),
        )
    )
    return rowcount(result) == 1


async def transact_recorded(
    ctx: ServiceContext,
    key: TxSigner,
    fn: Any,
    kind: Kind,
    target: str,
    payload: dict,
    *,
    org_id: int | None,
    sent_note: str,
) -> tuple[dict, int]:
    """Sign ``fn`` with ``key``, record the signed transaction in the outbox (``kind``, ``target``,
    ``payload``) before it leaves, send it and wait for its receipt: ``(receipt, row id)``.

    Not mined within ``tx_timeout_seconds``: ChainUnavailable, its message ending in ``sent_note``
    (the settle pass applies it once it is mined); refused (a revert, found by the estimate or on
    chain): the row, if any, is failed and ChainRejected raised as the chain gave it. The caller
    claims the row (:func:`finish`) before applying the receipt, so it is applied once."""
    row_id: int | None = None

    async def record(tx: SentTx) -> None:
        nonlocal row_id
        async with ctx.sessions() as s, s.begin():
            row_id = await record_sent(
                s, kind, target, payload, tx, org_id=org_id, wait=ctx.settings.tx_timeout_seconds + 5.0
            )

    try:
        receipt = await ctx.chain.transact(
            key, fn, timeout=ctx.settings.tx_timeout_seconds, before_send=record
        )
    except ChainUnavailable as exc:
        if row_id is None:
            raise
        raise ChainUnavailable(f"{exc.message}. {sent_note}", details=exc.details) from None
    except ChainRejected as exc:
        if row_id is not None:
            async with ctx.sessions() as s, s.begin():
                await finish(s, row_id, State.FAILED, exc.message)
        raise
    if row_id is None:  # pragma: no cover - transact calls before_send before anything leaves
        raise RuntimeError(f"a {kind} transaction for {target} was mined without being recorded")
    return receipt, row_id


async def open_tx(s: AsyncSession, kind: Kind, target: str) -> str | None:
    """The transaction of ``kind`` for ``target`` that was sent and is not settled yet."""
    return (
        await s.execute(
            select(OutboxTx.tx_hash)
            .where(OutboxTx.kind == str(kind), OutboxTx.target == target, OutboxTx.state == str(State.SENT))
            .limit(1)
        )
    ).scalar()


async def finish(s: AsyncSession, row_id: int, state: State, error: str | None = None) -> bool:
    """Claim a queued or sent row for ``state`` in ``s``'s transaction: False if another request or
    instance settled it already (then the DB holds its outcome once)."""
    values = {"state": str(state), "settled_at": now()} | ({"last_error": error} if error else {})
    result = await s.execute(
        update(OutboxTx)
        .where(OutboxTx.id == row_id, OutboxTx.state.in_([str(State.QUEUED), str(State.SENT)]))
        .values(**values)
    )
    return rowcount(result) == 1


@dataclass
class Report:
    applied: list[str] = field(default_factory=list)  # targets whose transaction was mined and applied
    dropped: list[str] = field(default_factory=list)  # ... whose transaction failed or can never be mined
    waiting: int = 0  # sent, not mined yet (re-broadcast)

    def __bool__(self) -> bool:
        return bool(self.applied or self.dropped)


async def settle(
    ctx: ServiceContext, *, kinds: tuple[Kind, ...] | None = None, grace: float | None = None
) -> Report:
    """The settle loop's one pass. A row is due once its ``next_attempt_at`` has come (or, with
    ``grace``, once it is ``grace`` seconds old). Mined → its kind's settler writes the DB and the row
    is ``confirmed``; reverted or its nonce taken → ``failed``; not mined → re-broadcast, ``attempts``
    + 1 and looked at again after a backoff. Raises ChainUnavailable while the node is unreachable."""
    report = Report()
    kinds = kinds or tuple(_SETTLERS)
    at = now()
    async with ctx.sessions() as s:
        rows = (
            (
                await s.execute(
                    select(OutboxTx)
                    .where(
                        OutboxTx.state.in_([str(State.QUEUED), str(State.SENT)]),
                        OutboxTx.kind.in_([str(k) for k in kinds]),
                    )
                    .order_by(OutboxTx.id)
                )
            )
            .scalars()
            .all()
        )
    for row in rows:
        due = (
            (at - as_utc(row.created_at)).total_seconds() >= grace
            if grace is not None
            else as_utc(row.next_attempt_at) <= at
        )
        if not due:
            continue
        if row.state == State.QUEUED and Kind(row.kind) in _SEND:  # its request ended first: send it here
            try:
                await _SEND[Kind(row.kind)](ctx, row)
            except ChainRejected as exc:
                async with ctx.sessions() as s, s.begin():
                    if await finish(s, row.id, State.FAILED, exc.message):
                        await _undo(ctx, s, row)
                        report.dropped.append(row.target)
                continue
            report.waiting += 1
            continue
        if row.state == State.QUEUED:  # never signed and sent: the request that queued it ended first
            async with ctx.sessions() as s, s.begin():
                if await finish(s, row.id, State.FAILED, "never sent: its request ended before signing"):
                    await _undo(ctx, s, row)
                    report.dropped.append(row.target)
            continue
        if row.tx_hash is None or row.raw_tx is None or row.nonce is None or row.sender is None:
            raise RuntimeError(f"outbox row {row.id} is {row.state} without its signed transaction")
        receipt = await ctx.chain.outcome(row.tx_hash, row.raw_tx, row.nonce, row.sender)
        if receipt is None:
            report.waiting += 1
            async with ctx.sessions() as s, s.begin():
                backoff = min(MAX_BACKOFF, 5.0 * 2**row.attempts)
                await s.execute(
                    update(OutboxTx)
                    .where(OutboxTx.id == row.id)
                    .values(
                        attempts=OutboxTx.attempts + 1, next_attempt_at=now() + timedelta(seconds=backoff)
                    )
                )
            continue
        async with ctx.sessions() as s, s.begin():
            if receipt["status"] == 1:
                if not await finish(s, row.id, State.CONFIRMED):
                    continue  # another instance settled it
                await _SETTLERS[Kind(row.kind)](ctx, s, row, receipt)
                report.applied.append(row.target)
            else:
                why = (
                    "dropped: another transaction took its nonce"
                    if receipt["status"] == "dropped"
                    else "reverted"
                )
                if await finish(s, row.id, State.FAILED, why):
                    await _undo(ctx, s, row)
                    report.dropped.append(row.target)
    return report


async def _undo(ctx: ServiceContext, s: AsyncSession, row: OutboxTx) -> None:
    undo = _UNDO.get(Kind(row.kind))
    if undo is not None:
        await undo(ctx, s, row)


async def unconfirmed(s: AsyncSession) -> tuple[dict[Kind, int], datetime | None]:
    """How many transactions of each kind are queued or sent and not settled, and when the oldest
    was recorded (/health)."""
    from sqlalchemy import func

    open_states = [str(State.QUEUED), str(State.SENT)]
    counts = dict.fromkeys(Kind, 0)
    for kind, n in (
        await s.execute(
            select(OutboxTx.kind, func.count()).where(OutboxTx.state.in_(open_states)).group_by(OutboxTx.kind)
        )
    ).all():
        counts[Kind(kind)] = n
    oldest = (
        await s.execute(select(func.min(OutboxTx.created_at)).where(OutboxTx.state.in_(open_states)))
    ).scalar()
    return counts, oldest
