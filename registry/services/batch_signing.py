"""The pipeline's signing step (registry/services/pipeline.py): each sealed batch's Merkle tree is
read (an upload stored it whole) or built (in a thread, no transaction open), its root signed with
the issuer's key — or, for an issuer with its own signer, the leaves sent to it, which answers with
the root's signature and the signed anchor transaction — and root, tree and signature stored
(`signed`, or `sending` for a signer's)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, insert, select, update

from registry.db.models import Batch, BatchTree, Credential, Organisation
from registry.db.session import get_one
from registry.services.anchoring import record_anchor_txs
from registry.services.chain import ANCHOR_GAS, SentTx
from registry.services.orgs import keystores_of, signing_key, unlock
from registry.services.remote_signer import RemoteSigner, SignerRefused, SignerUnavailable
from verifier.issuance import leaf_hash, sign_batch, tree_bytes

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.core.config import Settings
    from registry.services.context import ServiceContext

log = logging.getLogger("certledger.pipeline")


class BatchSigning:
    """The signing step of :class:`registry.services.pipeline.Pipeline` (a mixin: it uses the
    pipeline's ``ctx``, ``settings`` and ``_hold``)."""

    if TYPE_CHECKING:  # what the pipeline provides
        ctx: ServiceContext
        anchored_batches: int

        @property
        def settings(self) -> Settings: ...

        async def _hold(self, batch_id: int, reason: str, retry: timedelta = ...) -> None: ...

        async def _broadcast(self, txs: dict[int, SentTx], resends: dict[int, int] | None = None) -> None: ...

    async def _sign(self, batch_ids: list[int]) -> list[int]:
        """Build each sealed batch's Merkle tree (unless an upload stored it whole), sign its root,
        store both (state `signed`). Returns the batches signed (and those dropped as empty).

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
                        Batch.id,
                        BatchTree.nodes.label("stored"),
                        Batch.count,
                        Batch.issuer_org_id,
                        Batch.credential_type,
                    )
                    .outerjoin(BatchTree, BatchTree.batch_id == Batch.id)
                    .where(Batch.id.in_(batch_ids), Batch.state == "sealed")
                )
            ).all()
            keystores = await keystores_of(s, {r.issuer_org_id for r in rows})
            remote = await self._remote_signers(s, {r.issuer_org_id for r in rows})
            pairs: dict[int, list] = {r.id: [] for r in rows if not r.stored}
            if pairs:  # sealed by seal_due: the leaves come from the credentials
                for chunk in chunks(list(pairs), 500):
                    for bid, t, h in (
                        await s.execute(
                            select(
                                Credential.batch_id, Credential.target_hash, Credential.subject_hash
                            ).where(Credential.batch_id.in_(chunk))
                        )
                    ).all():
                        if bid is not None:  # (the query asks for these batches' credentials only)
                            pairs[bid].append((t, h))
        if not rows:
            return []
        # a keystore's first decryption (scrypt, ~0.5 s) is made here, not in the write transaction
        await unlock(keystores, ctx.settings.passphrase())
        # two threads, each building every other batch's tree: verifier's C tree builder runs without the
        # GIL, so two batches of 10,000 (~6 ms each) are built at once on two cores
        # (a tree an upload stored whole is taken as it is, here)
        jobs = [(r.id, r.stored, r._mapping["count"], pairs.get(r.id)) for r in rows]
        trees = {bid: stored for bid, stored, count, _ in jobs if stored and _is_whole_tree(stored, count)}
        jobs = [j for j in jobs if j[0] not in trees]
        halves = await asyncio.gather(
            *(asyncio.to_thread(_trees, jobs[k::2]) for k in range(min(2, len(jobs))))
        )
        trees |= {bid: tree for half in halves for bid, tree in half.items()}
        # their batch_trees row is updated (leaves only, as uploads before stop 39 stored them) or left
        # as it is (the whole tree: an upload's, or of a batch signed before); the others' made
        stored = {r.id: r.stored for r in rows if r.stored}
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
                            count=count,
                            suite=suite,
                            key_version=version,
                            signature="0x" + signed_batch.signature.hex(),
                        )
                    )
                    await _store_tree(s, batch.id, tree, stored.get(batch.id))
                    b = signed_batch
                    sent = SentTx(b.raw, b.tx_hash, b.nonce, b.sender)
                    await record_anchor_txs(s, {batch.id: sent}, {batch.id: batch.issuer_org_id})
                    continue
                if batch.issuer_org_id not in keys:
                    org = await get_one(s, Organisation, batch.issuer_org_id)
                    key, secp, sm2 = await signing_key(s, org.id, ctx.settings.passphrase())
                    suite = org.suite or "secp256k1"
                    private = sm2 if suite == "sm2-sm3" else secp
                    if not isinstance(private, str):  # (its own signer's batches are signed remotely)
                        raise RuntimeError(f"organisation {org.id} has no {suite} key in the registry")
                    keys[org.id] = (key, suite, bytes.fromhex(private[2:]))
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
                        count=count,
                        suite=suite,
                        key_version=key.version,
                        signature="0x" + signature.hex(),
                        state="signed",
                    )
                )
                await _store_tree(s, batch.id, tree, stored.get(batch.id))
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

    async def _remote_signers(
        self, s: AsyncSession, org_ids: set[int]
    ) -> dict[int, tuple[RemoteSigner, str, int]]:
        """The organisations among ``org_ids`` with their own signer: {org id: (signer, suite, key version)}."""
        out = {}
        for org_id in sorted(org_ids):
            org = await s.get(Organisation, org_id)
            if org is not None and org.signer_url:
                key, signer, _ = await signing_key(
                    s, org_id, "", signer_timeout=self.settings.signer_timeout_seconds
                )
                # an organisation with a signer_url signs through its RemoteSigner
                out[org_id] = (cast(RemoteSigner, signer), org.suite or "secp256k1", key.version)
        return out

    async def _sign_remote(self, rows: Any, trees: dict[int, bytes | None], remote: Any) -> dict[int, tuple]:
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

            async def one(i: int, r: Any, signer: Any = signer, nonce: int = nonce, fee: Any = fee) -> Any:
                tree = trees[r.id]
                assert tree is not None  # (the caller passes only batches whose tree was built)
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


async def _store_tree(s: AsyncSession, batch_id: int, tree: bytes, stored: bytes | None) -> None:
    """Store a batch's whole tree: over the leaves an upload stored, or as its first tree (a tree
    stored already, as ``stored``, is not written again)."""
    if stored == tree:
        return
    if stored is not None:
        await s.execute(update(BatchTree).where(BatchTree.batch_id == batch_id).values(nodes=tree))
    else:
        await s.execute(insert(BatchTree).values(batch_id=batch_id, nodes=tree))


def _trees(batches: list[tuple[int, bytes | None, int, list | None]]) -> dict[int, bytes | None]:
    """Each batch's whole tree, from (id, stored ``batch_trees`` nodes, count, credential pairs); None for a
    batch with neither (nothing was assigned to it)."""
    return {
        bid: (_tree_of_stored(stored, count) if stored else _tree_of_pairs(pairs) if pairs else None)
        for bid, stored, count, pairs in batches
    }


def _tree_of_stored(stored: bytes, count: int) -> bytes:
    """A batch's whole tree from its ``batch_trees`` row: the whole tree an upload stored (or of a
    batch signed before, whose anchor transaction failed and which went back to `sealed`), or the
    `count` leaves uploads stored before stop 39 (one leaf is its own tree)."""
    return stored if _is_whole_tree(stored, count) else tree_bytes(stored)


def _is_whole_tree(stored: bytes, count: int) -> bool:
    """Whether a ``batch_trees`` row of a batch of ``count`` holds its whole tree, not its leaves."""
    return len(stored) != 32 * count


def _tree_of_pairs(pairs: Any) -> bytes:
    """A batch's whole tree from its credentials' (targetHash, subjectHash) hex pairs."""
    return tree_bytes(b"".join(leaf_hash(bytes.fromhex(t[2:]), bytes.fromhex(h[2:])) for t, h in pairs))


def chunks(seq: Any, n: int) -> Iterator[Any]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
