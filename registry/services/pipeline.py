"""The issuance pipeline: accepted credentials → batch → Merkle tree → signature → anchor tx
→ confirmation. Each step's state is committed *before* its external effect (an outbox):

    accepted (credential.batch_id NULL)
      └─ seal ──────► batch `sealed`   credentials get batch_id (one statement)
      └─ sign ──────► batch `signed`   root, whole tree, issuer signature stored
      └─ prepare tx ► batch `sending`  raw signed tx + hash + nonce stored, THEN broadcast
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
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text, update
from web3.exceptions import Web3RPCError

from registry.core.config import Settings
from registry.core.errors import ChainRejected, ChainUnavailable
from registry.db.models import Batch, Credential, Organisation, as_utc
from registry.services.chain import ANCHOR_GAS, SentTx
from registry.services.node_errors import Refusal, classify
from registry.services.orgs import keystores_of, signing_key, unlock
from registry.services.remote_signer import RemoteSigner, SignerRefused, SignerUnavailable
from verifier.issuance import leaf_hash, sign_batch, tree_of_leaves

log = logging.getLogger("certledger.pipeline")

LEASE = timedelta(seconds=30)
#: batches taken into one round of a pass (a backlog after an outage moves in rounds of this many:
#: their trees in memory at once, and well within the lease)
ROUND = 50
_SEAL_LOCK = 0x7365616C  # "seal"


def now() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    def __init__(self, ctx, *, instance_id: str | None = None):
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
            unbatched = (
                await s.execute(
                    select(func.count()).select_from(Credential).where(Credential.batch_id.is_(None))
                )
            ).scalar_one()
            open_batches = (
                await s.execute(
                    select(func.count())
                    .select_from(Batch)
                    .where(Batch.state.in_(("sealed", "signed", "sending")))
                )
            ).scalar_one()
        return unbatched + open_batches

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
            if s.bind.dialect.name == "postgresql":
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
            for chunk in _chunks(ids, 5000):
                # `batch_id IS NULL` again: a credential another sealer took meanwhile is not taken twice
                res = await s.execute(
                    update(Credential)
                    .where(Credential.id.in_(chunk), Credential.batch_id.is_(None))
                    .values(batch_id=batch.id)
                )
                assigned += res.rowcount
            if assigned == 0:
                await s.delete(batch)
                return 0
            batch.count = assigned
        self.ctx.crash_point("sealed")
        return assigned

    # -- advance ---------------------------------------------------------------------------------
    # Every batch this instance can lease moves together, step by step: one write transaction
    # signs all sealed batches, the chain is asked about all of them in one JSON-RPC batch request
    # per step, one write transaction records all their transactions. At batches of 1,000 a batch
    # at a time spent ~47 ms per batch on round trips and transactions.
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
            active = await self._lease(stalled)
            if not active:
                break
            async with self.ctx.sessions() as s:
                states = dict(
                    (await s.execute(select(Batch.id, Batch.state).where(Batch.id.in_(active)))).all()
                )
            # each step also takes the batches the step before moved into its state
            signed = await self._sign([i for i in active if states.get(i) == "sealed"])
            sent = await self._send(sorted({*signed, *(i for i in active if states.get(i) == "signed")}))
            # (a batch an issuer's own signer signed went from sealed to sending at once)
            done = await self._confirm(
                sorted({*sent, *signed, *(i for i in active if states.get(i) == "sending")})
            )
            moved += len(signed) + len(sent) + len(done)
            # next round: batches sealed meanwhile, and any whose tx failed (back to `sealed`)
            stalled.update(set(active) - set(done))
        return moved

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def _claimable(self, stalled: set[int]):
        return and_(
            Batch.state.in_(("sealed", "signed", "sending")),
            or_(Batch.claimed_by.is_(None), Batch.claimed_by == self.instance, Batch.lease_until < now()),
            Batch.id.not_in(stalled),
        )

    async def _lease(self, stalled: set[int]) -> list[int]:
        """Claim for this instance up to ROUND batches no other live instance holds (the oldest
        first, not those in `stalled`): their ids. They are chosen inside the write transaction, so
        on SQLite a pass that waited for the write gate also takes the batches sealed meanwhile."""
        async with self.ctx.writing() as s:
            pick = select(Batch.id).where(self._claimable(stalled)).order_by(Batch.id).limit(ROUND)
            got = (
                (
                    await s.execute(
                        update(Batch)
                        .where(Batch.id.in_(pick), self._claimable(stalled))
                        .values(claimed_by=self.instance, lease_until=now() + LEASE)
                        .returning(Batch.id)
                    )
                )
                .scalars()
                .all()
            )
        return sorted(got)

    async def _sign(self, batch_ids: list[int]) -> list[int]:
        """Build each sealed batch's Merkle tree, sign its root, store both (state `signed`).
        Returns the batches signed (and those dropped as empty).

        The trees (10,000 Keccak hashes each: 30-90 ms on this machine) are built in a thread and
        outside any transaction: the event loop keeps serving requests meanwhile, and on SQLite the
        write gate is not held while they are built. A sealed batch's members no longer change (its
        leaves, or its credentials, were fixed by the transaction that sealed it)."""
        if not batch_ids:
            return []
        ctx = self.ctx
        async with ctx.sessions() as s:
            rows = (
                await s.execute(
                    select(
                        Batch.id, Batch.tree, Batch.count, Batch.issuer_org_id, Batch.credential_type
                    ).where(Batch.id.in_(batch_ids), Batch.state == "sealed")
                )
            ).all()
            keystores = await keystores_of(s, {r.issuer_org_id for r in rows})
            remote = await self._remote_signers(s, {r.issuer_org_id for r in rows})
            pairs: dict[int, list] = {r.id: [] for r in rows if not r.tree}
            if pairs:  # sealed by seal_due: the leaves come from the credentials
                for chunk in _chunks(list(pairs), 500):
                    for bid, t, h in (
                        await s.execute(
                            select(
                                Credential.batch_id, Credential.target_hash, Credential.subject_hash
                            ).where(Credential.batch_id.in_(chunk))
                        )
                    ).all():
                        pairs[bid].append((t, h))
        if not rows:
            return []
        # a keystore's first decryption (scrypt, ~0.5 s) is made here, not in the write transaction
        await unlock(keystores, ctx.settings.passphrase())
        trees = await asyncio.to_thread(_trees, [(r.id, r.tree, r.count, pairs.get(r.id)) for r in rows])
        remotely = await self._sign_remote(
            [r for r in rows if r.issuer_org_id in remote and trees[r.id]], trees, remote
        )
        done: list[int] = []
        async with ctx.writing() as s:
            batches = (
                await s.execute(
                    select(Batch.id, Batch.issuer_org_id, Batch.credential_type).where(
                        Batch.id.in_(list(trees)), Batch.state == "sealed"
                    )
                )
            ).all()
            keys: dict[int, tuple] = {}
            for batch in batches:
                tree = trees[batch.id]
                done.append(batch.id)
                if tree is None:  # nothing was assigned to it after all: drop the empty batch
                    await s.execute(delete(Batch).where(Batch.id == batch.id))
                    continue
                if batch.issuer_org_id in remote:
                    if batch.id not in remotely:  # (held: the signer did not sign it)
                        done.pop()
                        continue
                    signed_batch, suite, version = remotely[batch.id]
                    count = (len(tree) // 32 + 1) // 2
                    await s.execute(
                        update(Batch)
                        .where(Batch.id == batch.id)
                        .values(
                            root=signed_batch.root,
                            tree=tree,
                            count=count,
                            suite=suite,
                            key_version=version,
                            signature="0x" + signed_batch.signature.hex(),
                            raw_tx=signed_batch.raw,
                            tx_hash=signed_batch.tx_hash,
                            nonce=signed_batch.nonce,
                            sender=signed_batch.sender,
                            attempts=Batch.attempts + 1,
                            refused_resends=0,
                            state="sending",
                        )
                    )
                    continue
                if batch.issuer_org_id not in keys:
                    org = await s.get(Organisation, batch.issuer_org_id)
                    key, secp, sm2 = await signing_key(s, org.id, ctx.settings.passphrase())
                    suite = org.suite or "secp256k1"
                    keys[org.id] = (key, suite, bytes.fromhex((sm2 if suite == "sm2-sm3" else secp)[2:]))
                key, suite, private = keys[batch.issuer_org_id]
                root, count = tree[:32], (len(tree) // 32 + 1) // 2
                signature = sign_batch(
                    suite,
                    private,
                    root,
                    batch.credential_type,
                    count,
                    chain_id=ctx.deployment.chain_id,
                    anchor_registry=ctx.deployment.anchor_registry,
                )
                await s.execute(
                    update(Batch)
                    .where(Batch.id == batch.id)
                    .values(
                        root="0x" + root.hex(),
                        tree=tree,
                        count=count,
                        suite=suite,
                        key_version=key.version,
                        signature="0x" + signature.hex(),
                        state="signed",
                    )
                )
        for _ in done:
            self.ctx.crash_point("signed")
        if remotely:  # committed (sending): now the external effect
            txs = {i: SentTx(b.raw, b.tx_hash, b.nonce, b.sender) for i, (b, _, _) in remotely.items()}
            for _ in txs:
                self.ctx.crash_point("sending")
            await self._broadcast(txs)
            for _ in txs:
                self.ctx.crash_point("broadcast")
        return done

    async def _remote_signers(self, s, org_ids: set[int]) -> dict[int, tuple[RemoteSigner, str, int]]:
        """The organisations among ``org_ids`` with their own signer: {org id: (signer, suite, key version)}."""
        out = {}
        for org_id in sorted(org_ids):
            org = await s.get(Organisation, org_id)
            if org is not None and org.signer_url:
                key, signer, _ = await signing_key(
                    s, org_id, "", signer_timeout=self.settings.signer_timeout_seconds
                )
                out[org_id] = (signer, org.suite or "secp256k1", key.version)
        return out

    async def _sign_remote(self, rows, trees: dict[int, bytes | None], remote) -> dict[int, tuple]:
        """Ask each issuer's own signer to sign its batches: one call per batch, with the batch's leaves,
        credential type and count, and the anchor transaction's nonce, gas and fee; the signer answers
        with the root's signature and the signed transaction. Returns {batch id: (SignedBatch, suite,
        key version)}. A batch the signer refuses, or that it does not answer for, is held (stays
        sealed, the reason in last_error) and the issuer's later batches wait for the next pass (their
        nonces would follow the held one's)."""
        out: dict[int, tuple] = {}
        by_org: dict[int, list] = {}
        for r in rows:
            by_org.setdefault(r.issuer_org_id, []).append(r)
        for org_id, mine in by_org.items():
            signer, suite, version = remote[org_id]
            nonce, fee = await self.ctx.chain.next_nonce_and_fee(signer.address)

            async def one(i: int, r, signer=signer, nonce=nonce, fee=fee):
                tree = trees[r.id]
                count = (len(tree) // 32 + 1) // 2
                leaves = [tree[j : j + 32] for j in range((count - 1) * 32, len(tree), 32)]
                signed = await signer.sign_batch(
                    leaves, r.credential_type, count, {"nonce": nonce + i, "gas": ANCHOR_GAS, **fee}
                )
                if signed.root != "0x" + tree[:32].hex():
                    raise SignerRefused(
                        f"the issuer's signer signed root {signed.root}, not the batch's "
                        f"root 0x{tree[:32].hex()}"
                    )
                return signed

            # the calls go out together (each batch has its nonce already); only the batches before
            # the first failure are kept, so no kept transaction waits behind a missing nonce
            answers = await asyncio.gather(*(one(i, r) for i, r in enumerate(mine)), return_exceptions=True)
            for r, signed in zip(mine, answers):
                if isinstance(signed, (SignerUnavailable, SignerRefused)):
                    await self._hold(
                        r.id, signed.message, timedelta(seconds=self.settings.signer_retry_seconds)
                    )
                    break
                if isinstance(signed, BaseException):
                    raise signed
                out[r.id] = (signed, suite, version)
        return out

    async def _send(self, batch_ids: list[int]) -> list[int]:
        """Persist the signed anchor txs, then broadcast them. Returns the batches now `sending`
        (not those the chain refuses for now, which are held)."""
        if not batch_ids:
            return []
        ctx = self.ctx
        async with ctx.sessions() as s:
            batches = (
                await s.execute(
                    select(
                        Batch.id,
                        Batch.root,
                        Batch.credential_type,
                        Batch.count,
                        Batch.attempts,
                        Batch.issuer_org_id,
                    )
                    .where(Batch.id.in_(batch_ids), Batch.state == "signed")
                    .order_by(Batch.id)
                )
            ).all()
            keys = {
                org: (
                    await signing_key(
                        s, org, ctx.settings.passphrase(), signer_timeout=ctx.settings.signer_timeout_seconds
                    )
                )[1]
                for org in {b.issuer_org_id for b in batches}
            }
        # A batch never broadcast cannot be anchored (its root is known to no one else: random salts),
        # so only a resend asks the chain first; that also covers an issuer suspended since.
        resent = [b for b in batches if b.attempts > 0]
        anchored = {b.id for b, a in zip(resent, await ctx.chain.anchors_of([b.root for b in resent])) if a}
        data = {b.id: ctx.chain.anchor_data(b.root, b.credential_type, b.count) for b in batches}
        to_send: dict[int, list] = {}  # by issuer
        for (
            org,
            secp,
        ) in (
            keys.items()
        ):  # dry runs from each issuer's account: a refusal (e.g. issuer suspended) holds the batch
            mine = [b for b in batches if b.issuer_org_id == org and b.id not in anchored]
            for b, refusal in zip(mine, await ctx.chain.dry_runs(secp, [data[b.id] for b in mine])):
                if refusal is None:
                    to_send.setdefault(org, []).append(b)
                elif (refusal.details or {}).get("error") == "RootAlreadyAnchored":
                    anchored.add(b.id)
                else:
                    await self._hold(b.id, refusal.message)
        if anchored:  # anchored already (by an earlier attempt): just confirm them
            async with ctx.writing() as s:
                await s.execute(update(Batch).where(Batch.id.in_(anchored)).values(state="sending"))
        # signed before the write transaction: nonces and fee come from the chain, and on SQLite
        # the write gate is not held over those round trips
        txs = {}
        for org, mine in to_send.items():
            try:
                signed = await ctx.chain.sign_many(keys[org], [data[b.id] for b in mine], gas=ANCHOR_GAS)
            except (SignerUnavailable, SignerRefused) as exc:  # an issuer's own signer: the batches wait
                for b in mine:
                    await self._hold(b.id, exc.message, timedelta(seconds=self.settings.signer_retry_seconds))
                continue
            txs.update(zip((b.id for b in mine), signed))
        if not txs:
            return sorted(anchored)
        async with ctx.writing() as s:
            for batch_id, tx in txs.items():
                await s.execute(
                    update(Batch)
                    .where(Batch.id == batch_id)
                    .values(
                        raw_tx=tx.raw,
                        tx_hash=tx.tx_hash,
                        nonce=tx.nonce,
                        sender=tx.sender,
                        attempts=Batch.attempts + 1,
                        refused_resends=0,
                        state="sending",
                    )
                )
        for _ in txs:
            self.ctx.crash_point("sending")
        # committed: now the external effect
        await self._broadcast(txs)
        for _ in txs:
            self.ctx.crash_point("broadcast")
        return sorted(anchored | set(txs))

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

    async def _broadcast(self, txs: dict, resends: dict[int, int] | None = None) -> None:
        """Broadcast the batches' signed txs ({batch id: SentTx}) in nonce order. One the node refuses
        for its nonce or fee goes back to `signed` (re-signed on the next pass unless anchored).

        ``resends``: these are resends of txs already sent (the confirm step found them unmined),
        with each batch's ``refused_resends``. A resend refused for its nonce with no receipt yet is
        given one more pass before it is signed again: a node can refuse a transaction for its
        nonce just as it mines it, before its receipt is served (seen on anvil under load), and a
        new transaction then would be wasted. The refusal's meaning is its classified kind
        (registry/services/node_errors.py); its text goes to ``last_error`` for people."""
        order = sorted(txs, key=lambda i: (txs[i].sender, txs[i].nonce))
        failures = [
            (i, refusal)
            for i, refusal in zip(order, await self.ctx.chain.send_raws([txs[i].raw for i in order]))
            if refusal is not None
        ]
        if not failures:
            return
        for batch_id, refusal in failures:
            log.warning("broadcast of batch %s failed (%s): %s", batch_id, refusal.kind, refusal.message)
        resign = [(i, r) for i, r in failures if r.kind in _RESIGN]
        if resign:  # (not one mined meanwhile: its nonce is used by itself, and the next pass confirms it)
            mined = await self.ctx.chain.receipts([txs[i].tx_hash for i, _ in resign])
            resign = [(i, r) for (i, r), receipt in zip(resign, mined) if receipt is None]
        wait = []
        if resends is not None:
            wait = [(i, r) for i, r in resign if not resends.get(i)]
            resign = [(i, r) for i, r in resign if resends.get(i)]
        if resign or wait:
            async with self.ctx.writing() as s:
                for batch_id, refusal in resign:
                    await s.execute(
                        update(Batch)
                        .where(Batch.id == batch_id)
                        .values(state="signed", refused_resends=0, last_error=refusal.message[:500])
                    )
                for batch_id, refusal in wait:
                    await s.execute(
                        update(Batch)
                        .where(Batch.id == batch_id, Batch.state == "sending")
                        .values(
                            refused_resends=Batch.refused_resends + 1,
                            last_error=f"the resent anchor tx was refused ({refusal.message[:400]}) and not "
                            "mined yet; signed again if still so on the next pass",
                        )
                    )
        other = [(i, r) for i, r in failures if r.kind not in _RESIGN]
        if other:
            raise ChainRejected(
                f"the node refused the anchor tx of batch {other[0][0]}: {other[0][1].message}"
            )

    async def _confirm(self, batch_ids: list[int]) -> list[int]:
        """Returns the batches that reached a final state (anchored / rejected) or went back to
        `sealed` for a resend; the others stay `sending` (not mined yet, or not deep enough)."""
        if not batch_ids:
            return []
        ctx = self.ctx
        async with ctx.sessions() as s:
            batches = (
                await s.execute(
                    select(
                        Batch.id,
                        Batch.root,
                        Batch.tx_hash,
                        Batch.raw_tx,
                        Batch.nonce,
                        Batch.sender,
                        Batch.refused_resends,
                        Organisation.issuer_id,
                    )
                    .join(Organisation, Organisation.id == Batch.issuer_org_id)
                    .where(Batch.id.in_(batch_ids), Batch.state == "sending")
                    .order_by(Batch.id)
                )
            ).all()
        if not batches:
            return []
        anchors = await ctx.chain.anchors_of([b.root for b in batches])
        found = [(b, a) for b, a in zip(batches, anchors) if a is not None]
        missing = [b for b, a in zip(batches, anchors) if a is None]
        head = await ctx.chain.block_number() if found and ctx.settings.confirmations else None
        final: dict[int, dict] = {}
        rejected: list[tuple[int, str]] = []
        if found:
            mine = [(b, a) for b, a in found if a["issuerId"] == b.issuer_id]
            rejected = [
                (b.id, f"root {b.root} is anchored by issuer {a['issuerId']}, not ours")
                for b, a in found
                if a["issuerId"] != b.issuer_id
            ]
            if head is not None:  # (confirmations 0: mined is final, as on QBFT; no need to ask the head)
                mine = [(b, a) for b, a in mine if head - a["blockNumber"] >= ctx.settings.confirmations]
            with_tx = [b for b, _ in mine if b.tx_hash]
            receipts = dict(
                zip((b.id for b in with_tx), await ctx.chain.receipts([b.tx_hash for b in with_tx]))
            )
            for b, a in mine:
                values = dict(
                    state="anchored",
                    block_number=a["blockNumber"],
                    claimed_by=None,
                    anchored_at=datetime.fromtimestamp(a["timestamp"], UTC),
                )
                receipt = receipts.get(b.id)
                if receipt is None or receipt["status"] != 1:  # anchored by another tx of ours (a resend)
                    tx_hash = await self._find_anchor_tx(b.root, a["blockNumber"])
                    if tx_hash is None and receipt is None:
                        continue  # the anchor's block is not served yet (anvil shows state first): next look
                    values["tx_hash"] = tx_hash or b.tx_hash
                final[b.id] = values
        # not anchored: mined but failed (e.g. rotated key: NotAnIssuer), or not mined yet; a receipt
        # that succeeded was mined after the anchor lookup above: the next look confirms it
        receipts = await ctx.chain.receipts([b.tx_hash for b in missing]) if missing else []
        failed = [b for b, r in zip(missing, receipts) if r is not None and r["status"] != 1]
        unmined = [b for b, r in zip(missing, receipts) if r is None]
        if final or rejected or failed:
            async with ctx.writing() as s:
                for batch_id, values in final.items():
                    await s.execute(update(Batch).where(Batch.id == batch_id).values(**values))
                for batch_id, reason in rejected:
                    await s.execute(
                        update(Batch)
                        .where(Batch.id == batch_id)
                        .values(state="rejected", last_error=reason, claimed_by=None)
                    )
                for b in failed:  # sign again from the tree
                    await s.execute(
                        update(Batch)
                        .where(Batch.id == b.id)
                        .values(state="sealed", last_error=f"anchor tx {b.tx_hash} failed; re-signing")
                    )
        for _ in final:
            self.ctx.crash_point("anchored")
        if final:
            self.anchored_batches += len(final)
            self.ctx.anchors_changed()  # /v1/verify: the new anchors count at once
        if unmined:  # make sure the node has them (it may have restarted without its mempool)
            await self._broadcast(
                {b.id: SentTx(b.raw_tx, b.tx_hash, b.nonce, b.sender) for b in unmined},
                resends={b.id: b.refused_resends for b in unmined},
            )
        return sorted([*final, *(i for i, _ in rejected), *(b.id for b in failed)])

    async def _find_anchor_tx(self, root: str, block: int) -> str | None:
        """The transaction that anchored ``root`` in ``block``; None if the node does not serve that
        block's logs yet (anvil under load answers calls on the new state before it serves the block:
        "BlockOutOfRangeError")."""
        ev = self.ctx.chain.anchors.events.BatchAnchored()
        try:
            logs = await ev.get_logs(
                from_block=block, to_block=block, argument_filters={"root": bytes.fromhex(root[2:])}
            )
        except Web3RPCError as exc:
            if classify(exc).kind is not Refusal.BLOCK_NOT_SERVED:
                raise
            return None
        return "0x" + bytes(logs[0]["transactionHash"]).hex() if logs else None


#: a broadcast refused for one of these goes back to `signed` (a new nonce and fee on the next pass)
_RESIGN = frozenset({Refusal.NONCE_USED, Refusal.NONCE_GAP, Refusal.UNDERPRICED})


def _trees(batches: list[tuple[int, bytes | None, int, list | None]]) -> dict[int, bytes | None]:
    """Each batch's whole tree, from (id, stored tree column, count, credential pairs); None for a
    batch with neither (nothing was assigned to it)."""
    return {
        bid: (_tree_of_stored(stored, count) if stored else _tree_of_pairs(pairs) if pairs else None)
        for bid, stored, count, pairs in batches
    }


def _tree_of_stored(stored: bytes, count: int) -> bytes:
    """A batch's whole tree from its ``tree`` column: the `count` leaves an upload stored (one
    leaf is its own tree), or the whole tree of a batch signed before, whose anchor transaction
    failed (it went back to `sealed` to be signed again)."""
    if len(stored) != 32 * count:
        return stored
    return b"".join(tree_of_leaves([stored[i : i + 32] for i in range(0, len(stored), 32)]))


def _tree_of_pairs(pairs) -> bytes:
    """A batch's whole tree from its credentials' (targetHash, subjectHash) hex pairs."""
    return b"".join(tree_of_leaves([leaf_hash(bytes.fromhex(t[2:]), bytes.fromhex(h[2:])) for t, h in pairs]))


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
