"""The issuance pipeline: accepted credentials → batch → Merkle tree → signature → anchor tx
→ confirmation. Each step's state is committed *before* its external effect (an outbox):

    accepted (credential.batch_id NULL)
      └─ seal ──────► batch `sealed`   credentials get batch_id (one statement)
      └─ sign ──────► batch `signed`   root, whole tree, issuer signature stored
      └─ prepare tx ► batch `sending`  signed tx in the outbox (kind anchor), THEN broadcast
      └─ confirm ───► batch `anchored` the chain's anchorOf(root) names our issuer

An issuer with its own signer (registry/signer/) has no key here: its sealed batches go to the
signer, one call per batch with the leaves, which answers with the root's signature and the signed
anchor transaction; both are stored together (batch `sending`) before the broadcast. A signer that
is down, too slow or refuses leaves the batch `sealed` (the reason in ``last_error``), and it is
sent again after ``signer_retry_seconds``.

A crash anywhere leaves a state from which the next step is safe to repeat: the tree is
deterministic, the raw tx is re-broadcast as is, and the contract refuses a root anchored
before (`RootAlreadyAnchored`) — so no accepted credential is lost and no root is anchored
twice. Batches are leased (claimed_by + lease_until) so with several instances on one
PostgreSQL each batch advances in exactly one of them; sealing takes an advisory lock.
While the node is unreachable the pipeline keeps its queue and retries with back-off.

This module seals, leases and drives the steps; signing is :mod:`registry.services.batch_signing`
and sending and confirming :mod:`registry.services.anchoring` (mixins of :class:`Pipeline`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, text, update

from registry.core.config import Settings
from registry.core.errors import ChainUnavailable
from registry.db.models import Batch, Credential, as_utc
from registry.db.session import rowcount
from registry.services.anchoring import Anchoring
from registry.services.batch_signing import BatchSigning, chunks

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

log = logging.getLogger("certledger.pipeline")

LEASE = timedelta(seconds=30)
#: batches taken into one round of a pass (a backlog after an outage moves in rounds of this many:
#: their trees in memory at once, and well within the lease)
ROUND = 50
_SEAL_LOCK = 0x7365616C  # "seal"


def now() -> datetime:
    return datetime.now(UTC)


class Pipeline(BatchSigning, Anchoring):
    def __init__(self, ctx: ServiceContext, *, instance_id: str | None = None):
        self.ctx = ctx
        self.instance = instance_id or ctx.settings.instance_id
        self.chain_ok = True
        self.last_error: str | None = None
        self.anchored_batches = 0
        self._pass = asyncio.Lock()

    # -- driver --------------------------------------------------------------------------------
    async def run_forever(self) -> None:
        backoff = self.settings.poll_interval_seconds
        while True:
            try:
                self.ctx.batches_sealed.clear()  # (an upload that seals during the pass sets it again)
                did = await self.step()
                self.chain_ok = True
                backoff = self.settings.poll_interval_seconds
                if not did:
                    # nothing to move (and no upload sealed batches during the pass): housekeeping now
                    if self.ctx.wal_grown.is_set() and not self.ctx.batches_sealed.is_set():
                        await self.ctx.checkpoint_wal()
                    await self._idle(self.settings.poll_interval_seconds)
            except ChainUnavailable as exc:
                self.chain_ok = False
                self.last_error = str(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the pipeline alive, report it
                log.exception("pipeline step failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less if an upload here seals batches meanwhile (an upload of a
        batch or more seals its own: registry.services.issuance), so that they are signed and
        anchored at once rather than up to a poll interval later."""
        # (asyncio.timeout, not wait_for: Python 3.11's wait_for returns the event's result when the
        # task is cancelled just as the event is set, and the cancellation is lost: a service shut
        # down as an upload woke its pipeline then waited for it forever)
        try:
            async with asyncio.timeout(seconds):
                await self.ctx.batches_sealed.wait()
        except TimeoutError:
            pass

    async def step(self) -> bool:
        """One pass: seal what is due, advance every batch we can lease. True if anything moved.

        Passes never overlap within a process (the lease is per instance, not per task)."""
        async with self._pass:
            sealed = await self.seal_due()
            advanced = await self.advance_all()
        return bool(sealed or advanced)

    async def drain(self, timeout: float = 120.0) -> None:
        """Run until nothing is pending (tests, CLI, benchmark)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self._pass:
                if not await self.pending():  # (the background pass may have moved the last of it)
                    return
                await self.seal_due(force=True)
                await self.advance_all()
            if not await self.pending():
                return
            if loop.time() > deadline:
                raise TimeoutError("issuance pipeline did not drain in time")
            await asyncio.sleep(0.02)

    async def pending(self) -> int:
        """Credentials not in a batch, and batches not yet anchored (or rejected): one query."""
        unbatched = select(func.count()).select_from(Credential).where(Credential.batch_id.is_(None))
        open_batches = (
            select(func.count()).select_from(Batch).where(Batch.state.in_(("sealed", "signed", "sending")))
        )
        async with self.ctx.sessions() as s:
            return int(
                (
                    await s.execute(select(unbatched.scalar_subquery() + open_batches.scalar_subquery()))
                ).scalar_one()
            )

    # -- seal ------------------------------------------------------------------------------------
    async def seal_due(self, *, force: bool = False) -> int:
        """Close batches by size, or by time window (or all, if `force`). Returns batches sealed."""
        size = self.settings.batch_size
        cutoff = now() - timedelta(seconds=self.settings.batch_window_seconds)
        made = 0
        async with self.ctx.sessions() as s:
            groups = (
                await s.execute(
                    select(
                        Credential.issuer_org_id,
                        Credential.credential_type,
                        func.count(),
                        func.min(Credential.accepted_at),
                    )
                    .where(Credential.batch_id.is_(None))
                    .group_by(Credential.issuer_org_id, Credential.credential_type)
                )
            ).all()
        for org_id, ctype, count, oldest in groups:
            while count >= size or (count > 0 and (force or as_utc(oldest) <= cutoff)):
                n = await self._seal_one(org_id, ctype, size)
                if n == 0:
                    break
                made += 1
                count -= n
        return made

    async def _seal_one(self, org_id: int, ctype: int, size: int) -> int:
        async with self.ctx.writing() as s:
            if s.get_bind().dialect.name == "postgresql":
                await s.execute(text("SELECT pg_advisory_xact_lock(:k, :o)"), {"k": _SEAL_LOCK, "o": org_id})
            ids = (
                (
                    await s.execute(
                        select(Credential.id)
                        .where(
                            Credential.batch_id.is_(None),
                            Credential.issuer_org_id == org_id,
                            Credential.credential_type == ctype,
                        )
                        .order_by(Credential.status_index)
                        .limit(size)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return 0
            batch = Batch(
                issuer_org_id=org_id,
                credential_type=ctype,
                state="sealed",
                count=len(ids),
                created_at=now(),
                attempts=0,
                status=1,
                status_reason=0,
            )
            s.add(batch)
            await s.flush()
            assigned = 0
            for chunk in chunks(ids, 5000):
                # `batch_id IS NULL` again: a credential another sealer took meanwhile is not taken twice
                res = await s.execute(
                    update(Credential)
                    .where(Credential.id.in_(chunk), Credential.batch_id.is_(None))
                    .values(batch_id=batch.id)
                )
                assigned += rowcount(res)
            if assigned == 0:
                await s.delete(batch)
                return 0
            batch.count = assigned
        self.ctx.crash_point("sealed")
        return assigned

    # -- advance ---------------------------------------------------------------------------------
    # Every batch this instance can lease moves together, step by step: one write transaction
    # stores all sealed batches' signatures with their anchor transactions, the chain is asked
    # about all of them in one JSON-RPC batch request per step (per issuer, for the dry runs with
    # nonce and fee), one write transaction records what the chain says. At batches of 1,000 a
    # batch at a time spent ~47 ms per batch on round trips and transactions.
    async def advance_all(self) -> int:
        """Move every batch we can lease as far as it goes now. Returns the number of transitions.

        Each round takes in the batches that became ready meanwhile (e.g. sealed by an upload that
        committed while this pass waited for the write gate), so they move together with the others;
        a batch that could not move (not mined yet, held) waits for the next pass."""
        moved = 0
        stalled: set[int] = set()
        for _ in range(3):
            async with self.ctx.sessions() as s:  # (a read first: an idle pass takes no write lock)
                if not (await s.execute(select(Batch.id).where(self._claimable(stalled)).limit(1))).first():
                    break
            states = await self._lease(stalled)
            active = sorted(states)
            if not active:
                break
            # each step also takes the batches the step before moved into its state (the signing
            # step sends most batches itself: sealed to sending at once)
            signed, sending = await self._sign([i for i in active if states.get(i) == "sealed"])
            sent = await self._send(sorted({*signed, *(i for i in active if states.get(i) == "signed")}))
            done = await self._confirm(
                sorted({*sent, *sending, *(i for i in active if states.get(i) == "sending")})
            )
            moved += len(signed) + len(sending) + len(sent) + len(done)
            # next round: batches sealed meanwhile, and any whose tx failed (back to `sealed`)
            stalled.update(set(active) - set(done))
        return moved

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def _claimable(self, stalled: set[int]) -> Any:
        return and_(
            Batch.state.in_(("sealed", "signed", "sending")),
            or_(Batch.claimed_by.is_(None), Batch.claimed_by == self.instance, Batch.lease_until < now()),
            Batch.id.not_in(stalled),
        )

    async def _lease(self, stalled: set[int]) -> dict[int, str]:
        """Claim for this instance up to ROUND batches no other live instance holds (the oldest
        first, not those in `stalled`): {id: state} of each. They are chosen inside the write
        transaction, so on SQLite a pass that waited for the write gate also takes the batches
        sealed meanwhile."""
        async with self.ctx.writing() as s:
            pick = select(Batch.id).where(self._claimable(stalled)).order_by(Batch.id).limit(ROUND)
            got = (
                await s.execute(
                    update(Batch)
                    .where(Batch.id.in_(pick), self._claimable(stalled))
                    .values(claimed_by=self.instance, lease_until=now() + LEASE)
                    .returning(Batch.id, Batch.state)
                )
            ).all()
        return {batch_id: state for batch_id, state in got}

    async def _hold(self, batch_id: int, reason: str, retry: timedelta = LEASE) -> None:
        """The chain (or the issuer's signer) refuses this batch for now: retry after ``retry`` (the
        reason shows in /v1/batches)."""
        log.warning("batch %s held: %s", batch_id, reason)
        self.last_error = reason
        async with self.ctx.writing() as s:
            await s.execute(
                update(Batch)
                .where(Batch.id == batch_id)
                .values(last_error=reason[:500], claimed_by="held", lease_until=now() + retry)
            )
