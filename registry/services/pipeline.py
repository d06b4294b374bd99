"""The issuance pipeline: accepted credentials → batch → Merkle tree → signature → anchor tx
→ confirmation. Each step's state is committed *before* its external effect (an outbox):

    accepted (credential.batch_id NULL)
      └─ seal ──────► batch `sealed`   credentials get batch_id (one statement)
      └─ sign ──────► batch `signed`   root, whole tree, issuer signature stored
      └─ prepare tx ► batch `sending`  raw signed tx + hash + nonce stored, THEN broadcast
      └─ confirm ───► batch `anchored` the chain's anchorOf(root) names our issuer

A crash anywhere leaves a state from which the next step is safe to repeat: the tree is
deterministic, the raw tx is re-broadcast as is, and the contract refuses a root anchored
before (`RootAlreadyAnchored`) — so no accepted credential is lost and no root is anchored
twice. Batches are leased (claimed_by + lease_until) so with several instances on one
PostgreSQL each batch advances in exactly one of them; sealing takes an advisory lock.
While the node is unreachable the pipeline keeps its queue and retries with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, or_, select, text, update

from registry.core.errors import ChainRejected, ChainUnavailable
from registry.db.models import Batch, Credential, Organisation, as_utc
from registry.services.orgs import signing_key
from verifier._internal.merkle import leaf_hash, tree_of_leaves
from verifier._internal.suites import sign_batch

log = logging.getLogger("certledger.pipeline")

LEASE = timedelta(seconds=30)
_SEAL_LOCK = 0x7365616C  # "seal"


class CrashPoints:
    """Fault injection for the crash test: SIGKILL ourselves the N-th time a point is passed."""

    def __init__(self, spec: str | None):
        self.point, self.left = None, 0
        if spec:
            point, _, n = spec.partition(":")
            self.point, self.left = point, int(n or 1)

    def passed(self, point: str) -> None:
        if point == self.point:
            self.left -= 1
            if self.left <= 0:
                import os
                import signal

                log.warning("crash point %s reached: SIGKILL", point)
                os.kill(os.getpid(), signal.SIGKILL)


def now() -> datetime:
    return datetime.now(timezone.utc)


class Pipeline:
    def __init__(self, ctx, *, instance_id: str | None = None):
        self.ctx = ctx
        self.settings = ctx.settings
        self.instance = instance_id or ctx.settings.instance_id
        self.chain_ok = True
        self.last_error: str | None = None
        self.anchored_batches = 0
        self.anchored_credentials = 0
        self.crash = getattr(ctx, "crash_points", None) or CrashPoints(ctx.settings.crash_after)
        self._pass = asyncio.Lock()

    # -- driver --------------------------------------------------------------------------------
    async def run_forever(self) -> None:
        backoff = self.settings.poll_interval_seconds
        while True:
            try:
                did = await self.step()
                self.chain_ok = True
                backoff = self.settings.poll_interval_seconds
                if not did:
                    await asyncio.sleep(self.settings.poll_interval_seconds)
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
                await self.seal_due(force=True)
                await self.advance_all()
            if not await self.pending():
                return
            if loop.time() > deadline:
                raise TimeoutError("issuance pipeline did not drain in time")
            await asyncio.sleep(0.02)

    async def pending(self) -> int:
        async with self.ctx.sessions() as s:
            unbatched = (await s.execute(select(func.count()).select_from(Credential)
                                         .where(Credential.batch_id.is_(None)))).scalar_one()
            open_batches = (await s.execute(select(func.count()).select_from(Batch)
                                            .where(Batch.state.in_(("sealed", "signed", "sending"))))).scalar_one()
        return unbatched + open_batches

    # -- seal ------------------------------------------------------------------------------------
    async def seal_due(self, *, force: bool = False) -> int:
        """Close batches by size, or by time window (or all, if `force`). Returns batches sealed."""
        size = self.settings.batch_size
        cutoff = now() - timedelta(seconds=self.settings.batch_window_seconds)
        made = 0
        async with self.ctx.sessions() as s:
            groups = (await s.execute(
                select(Credential.issuer_org_id, Credential.credential_type, func.count(), func.min(Credential.accepted_at))
                .where(Credential.batch_id.is_(None))
                .group_by(Credential.issuer_org_id, Credential.credential_type)
            )).all()
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
            if s.bind.dialect.name == "postgresql":
                await s.execute(text("SELECT pg_advisory_xact_lock(:k, :o)"), {"k": _SEAL_LOCK, "o": org_id})
            ids = (await s.execute(
                select(Credential.id).where(Credential.batch_id.is_(None), Credential.issuer_org_id == org_id,
                                            Credential.credential_type == ctype)
                .order_by(Credential.status_index).limit(size)
            )).scalars().all()
            if not ids:
                return 0
            batch = Batch(issuer_org_id=org_id, credential_type=ctype, state="sealed", count=len(ids),
                          created_at=now(), attempts=0, status=1, status_reason=0)
            s.add(batch)
            await s.flush()
            assigned = 0
            for chunk in _chunks(ids, 5000):
                # `batch_id IS NULL` again: a credential another sealer took meanwhile is not taken twice
                res = await s.execute(update(Credential).where(Credential.id.in_(chunk), Credential.batch_id.is_(None))
                                      .values(batch_id=batch.id))
                assigned += res.rowcount
            if assigned == 0:
                await s.delete(batch)
                return 0
            batch.count = assigned
        self.crash.passed("sealed")
        return assigned

    # -- advance ---------------------------------------------------------------------------------
    async def advance_all(self) -> int:
        async with self.ctx.sessions() as s:
            ids = (await s.execute(
                select(Batch.id).where(Batch.state.in_(("sealed", "signed", "sending")),
                                       or_(Batch.claimed_by.is_(None), Batch.claimed_by == self.instance,
                                           Batch.lease_until < now()))
                .order_by(Batch.id)
            )).scalars().all()
        moved = 0
        for batch_id in ids:
            if await self._lease(batch_id):
                moved += await self.advance(batch_id)
        return moved

    async def _lease(self, batch_id: int) -> bool:
        async with self.ctx.writing() as s:
            res = await s.execute(
                update(Batch).where(Batch.id == batch_id, Batch.state.in_(("sealed", "signed", "sending")),
                                    or_(Batch.claimed_by.is_(None), Batch.claimed_by == self.instance,
                                        Batch.lease_until < now()))
                .values(claimed_by=self.instance, lease_until=now() + LEASE)
            )
            return res.rowcount == 1

    async def advance(self, batch_id: int) -> int:
        """Move one leased batch as far as it goes now. Returns the number of transitions."""
        moved = 0
        for _ in range(4):
            async with self.ctx.sessions() as s:
                batch = await s.get(Batch, batch_id)
                if batch is None:  # an empty batch was dropped
                    return moved
                state = batch.state
            if state == "sealed":
                await self._sign(batch_id)
            elif state == "signed":
                if not await self._send(batch_id):
                    return moved
            elif state == "sending":
                if not await self._confirm(batch_id):
                    return moved
            else:
                return moved
            moved += 1
        return moved

    async def _sign(self, batch_id: int) -> None:
        """Build the sealed batch's Merkle tree, sign its root, store both (state `signed`).

        The tree (10,000 Keccak hashes: 30-90 ms on this machine) is built in a thread and outside
        any transaction: the event loop keeps serving requests meanwhile, and on SQLite the write
        gate is not held while it is built. A sealed batch's members no longer change (its leaves,
        or its credentials, were fixed by the transaction that sealed it)."""
        ctx = self.ctx
        async with ctx.sessions() as s:
            batch = await s.get(Batch, batch_id)
            if batch is None or batch.state != "sealed":
                return
            stored, count = batch.tree, batch.count
            pairs = None if stored else (await s.execute(
                select(Credential.target_hash, Credential.subject_hash).where(Credential.batch_id == batch_id)
            )).all()
        if stored:  # sealed by the upload that filled it, with its leaves (or, before, its whole tree)
            tree = await asyncio.to_thread(_tree_of_stored, stored, count)
        elif pairs:
            tree = await asyncio.to_thread(_tree_of_pairs, pairs)
        else:
            tree = None  # nothing was assigned to it after all
        async with ctx.writing() as s:
            batch = await s.get(Batch, batch_id)
            if batch is None or batch.state != "sealed":
                return
            if tree is None:  # drop the empty batch
                await s.delete(batch)
                return
            org = await s.get(Organisation, batch.issuer_org_id)
            root, count = tree[:32], (len(tree) // 32 + 1) // 2
            key, secp, sm2 = await signing_key(s, org.id, ctx.settings.passphrase())
            suite = org.suite or "secp256k1"
            private = bytes.fromhex((sm2 if suite == "sm2-sm3" else secp)[2:])
            signature = sign_batch(suite, private, root, batch.credential_type, count,
                                   chain_id=ctx.deployment.chain_id, anchor_registry=ctx.deployment.anchor_registry)
            batch.root = "0x" + root.hex()
            batch.tree = tree
            batch.count = count
            batch.suite = suite
            batch.key_version = key.version
            batch.signature = "0x" + signature.hex()
            batch.state = "signed"
        self.crash.passed("signed")

    async def _send(self, batch_id: int) -> bool:
        """Persist the signed anchor tx, then broadcast it. False if the chain refuses it for now."""
        ctx = self.ctx
        async with ctx.sessions() as s:
            batch = await s.get(Batch, batch_id)
            root, sent_before = batch.root, batch.attempts > 0
            _, secp, _ = await signing_key(s, batch.issuer_org_id, ctx.settings.passphrase())
            fn = ctx.chain.anchors.functions.anchor(bytes.fromhex(root[2:]), batch.credential_type, batch.count)
        # A batch never broadcast cannot be anchored (its root is known to no one else: random salts),
        # so only a resend asks the chain first; that also covers an issuer suspended since.
        existing = await ctx.chain.anchor_of(root) if sent_before else None
        if existing is None:
            try:  # dry run from the issuer's account: a refusal (e.g. issuer suspended) holds the batch
                await ctx.chain.call_from(fn, secp)
            except ChainRejected as exc:
                if (exc.details or {}).get("error") != "RootAlreadyAnchored":
                    await self._hold(batch_id, exc.message)
                    return False
                existing = True
        if existing is not None:  # anchored already (by an earlier attempt): just confirm it
            async with ctx.writing() as s:
                await s.execute(update(Batch).where(Batch.id == batch_id).values(state="sending"))
            return True
        # signed before the write transaction: its nonce and fee come from the chain, and on SQLite
        # the write gate is not held over those round trips
        tx = await ctx.chain.sign(secp, fn, gas=120_000)
        async with ctx.writing() as s:
            batch = await s.get(Batch, batch_id)
            batch.raw_tx, batch.tx_hash, batch.nonce, batch.sender = tx.raw, tx.tx_hash, tx.nonce, tx.sender
            batch.attempts += 1
            batch.state = "sending"
        self.crash.passed("sending")
        # committed: now the external effect
        await self._broadcast(batch_id, tx.raw)
        self.crash.passed("broadcast")
        return True

    async def _hold(self, batch_id: int, reason: str) -> None:
        """The chain refuses this batch for now: retry in 30 s (the reason shows in /v1/batches)."""
        log.warning("batch %s held: %s", batch_id, reason)
        self.last_error = reason
        async with self.ctx.writing() as s:
            await s.execute(update(Batch).where(Batch.id == batch_id)
                            .values(last_error=reason[:500], claimed_by="held", lease_until=now() + LEASE))

    async def _broadcast(self, batch_id: int, raw: bytes) -> None:
        try:
            await self.ctx.chain.send_raw(raw)
        except ChainUnavailable:
            raise
        except Exception as exc:  # nonce too low / replaced: re-sign on the next pass unless anchored
            text_ = str(exc).lower()
            log.warning("broadcast of batch %s failed: %s", batch_id, exc)
            if "nonce" in text_ or "underpriced" in text_:
                async with self.ctx.writing() as s:
                    await s.execute(update(Batch).where(Batch.id == batch_id)
                                    .values(state="signed", last_error=str(exc)[:500]))
            else:
                raise

    async def _confirm(self, batch_id: int) -> bool:
        """True when the batch reached a final state (anchored / back to signed for a resend)."""
        ctx = self.ctx
        async with ctx.sessions() as s:
            batch = await s.get(Batch, batch_id)
            root, tx_hash, raw, org_id = batch.root, batch.tx_hash, batch.raw_tx, batch.issuer_org_id
            org = await s.get(Organisation, org_id)
        anchor = await ctx.chain.anchor_of(root)
        if anchor is not None:
            if anchor["issuerId"] != org.issuer_id:
                await self._reject(batch_id, f"root {root} is anchored by issuer {anchor['issuerId']}, not ours")
                return True
            if ctx.settings.confirmations:  # (0: mined is final, as on QBFT; no need to ask the head)
                if await ctx.chain.block_number() - anchor["blockNumber"] < ctx.settings.confirmations:
                    return False
            receipt = await ctx.chain.receipt(tx_hash) if tx_hash else None
            async with ctx.writing() as s:
                values = dict(state="anchored", block_number=anchor["blockNumber"], claimed_by=None,
                              anchored_at=datetime.fromtimestamp(anchor["timestamp"], timezone.utc))
                if receipt is None or receipt.get("status") != 1:
                    values["tx_hash"] = await self._find_anchor_tx(root, anchor["blockNumber"]) or tx_hash
                await s.execute(update(Batch).where(Batch.id == batch_id).values(**values))
            self.crash.passed("anchored")
            self.anchored_batches += 1
            self.ctx.__dict__.pop("_verifier_cache", None)  # /v1/verify: the new anchor counts at once
            return True
        receipt = await ctx.chain.receipt(tx_hash)
        if receipt is not None:
            # mined but failed (e.g. rotated key: NotAnIssuer): sign again from the tree
            async with ctx.writing() as s:
                await s.execute(update(Batch).where(Batch.id == batch_id)
                                .values(state="sealed", last_error=f"anchor tx {tx_hash} failed; re-signing"))
            return True
        # not mined: make sure the node has it (it may have restarted without its mempool)
        await self._broadcast(batch_id, raw)
        return False

    async def _find_anchor_tx(self, root: str, block: int) -> str | None:
        ev = self.ctx.chain.anchors.events.BatchAnchored()
        logs = await ev.get_logs(from_block=block, to_block=block,
                                 argument_filters={"root": bytes.fromhex(root[2:])})
        return "0x" + bytes(logs[0]["transactionHash"]).hex() if logs else None

    async def _reject(self, batch_id: int, reason: str) -> None:
        async with self.ctx.writing() as s:
            await s.execute(update(Batch).where(Batch.id == batch_id)
                            .values(state="rejected", last_error=reason, claimed_by=None))


def _tree_of_stored(stored: bytes, count: int) -> bytes:
    """A batch's whole tree from its ``tree`` column: the `count` leaves an upload stored (one
    leaf is its own tree), or a whole tree as older versions stored it."""
    if len(stored) != 32 * count:
        return stored
    return b"".join(tree_of_leaves([stored[i:i + 32] for i in range(0, len(stored), 32)]))


def _tree_of_pairs(pairs) -> bytes:
    """A batch's whole tree from its credentials' (targetHash, subjectHash) hex pairs."""
    return b"".join(tree_of_leaves([leaf_hash(bytes.fromhex(t[2:]), bytes.fromhex(h[2:])) for t, h in pairs]))


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
