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

from registry.db.models import Batch, BatchTree, Credential
from registry.services.anchoring import record_anchor_txs, update_each
from registry.services.chain import ANCHOR_GAS, SentTx
from registry.services.orgs import IssuerKey, issuer_keys
from registry.services.remote_signer import RemoteSigner, SignedBatch, SignerRefused, SignerUnavailable
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

    async def _sign(self, batch_ids: list[int]) -> tuple[list[int], list[int]]:
        """Build each sealed batch's Merkle tree (unless an upload stored it whole), sign its root and
        its anchor transaction, store the tree, the root's signature and the transaction (state
        `sending`), then broadcast the transaction: an issuer's own signer signs both, a custodial
        issuer's key signs them here. Returns (the batches left `signed`: the chain refused the
        dry run of their anchor transaction for now, and the send step tries again; or dropped as
        empty — the batches sent).

        The trees (10,000 Keccak hashes each: 30-90 ms on this machine) are built in a thread and
        outside any transaction: the event loop keeps serving requests meanwhile, and on SQLite the
        write gate is not held while they are built; nor while the chain is asked for the anchor
        transactions' dry runs, nonces and fees. A sealed batch's members no longer change (its
        leaves, or its credentials, were fixed by the transaction that sealed it)."""
        if not batch_ids:
            return [], []
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
            return [], []
        # (a keystore's first decryption, scrypt ~0.5 s, is made here: in a thread, no session open)
        keys = await issuer_keys(ctx, {r.issuer_org_id for r in rows})
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
        remote = {org: key for org, key in keys.items() if isinstance(key.secp, RemoteSigner)}
        remotely = await self._sign_remote(
            [r for r in rows if r.issuer_org_id in remote and trees[r.id]], trees, remote
        )
        here = [r for r in rows if r.issuer_org_id not in remote and trees[r.id]]
        txs = await self._custodial_anchor_txs(here, trees, keys)
        dropped: list[int] = []
        async with ctx.writing() as s:
            batches = (
                await s.execute(
                    select(Batch.id, Batch.issuer_org_id, Batch.credential_type).where(
                        Batch.id.in_(list(trees)), Batch.state == "sealed"
                    )
                )
            ).all()
            signed: dict[int, dict] = {}
            for batch in batches:
                tree = trees[batch.id]
                if tree is None:  # nothing was assigned to it after all: drop the empty batch
                    await s.execute(delete(Batch).where(Batch.id == batch.id))
                    dropped.append(batch.id)
                    continue
                key = keys[batch.issuer_org_id]
                root, count = tree[:32], _count(tree)
                if batch.issuer_org_id in remote:
                    if batch.id not in remotely:  # (held: the signer did not sign it)
                        continue
                    sent = remotely[batch.id]
                    signature = sent.signature
                    txs[batch.id] = SentTx(sent.raw, sent.tx_hash, sent.nonce, sent.sender)
                else:
                    signature = sign_batch(
                        key.suite,
                        bytes.fromhex(key.private[2:]),
                        root,
                        batch.credential_type,
                        count,
                        chain_id=ctx.deployment.chain_id,
                        anchor_registry=ctx.deployment.anchor_registry,
                    )
                signed[batch.id] = {
                    "root": "0x" + root.hex(),
                    "count": count,
                    "suite": key.suite,
                    "key_version": key.version,
                    "signature": "0x" + signature.hex(),
                }
                await _store_tree(s, batch.id, tree, stored.get(batch.id))
            await update_each(s, signed, state="signed")
            # an issuer's transactions are kept only if every batch they were signed for is still
            # sealed here (else one's nonce would be missing): otherwise its batches stay `signed`
            # and the send step signs them again (the lease keeps other instances from these batches)
            found = {b.id for b in batches}
            orgs = {r.id: r.issuer_org_id for r in rows}
            missing = {orgs[i] for i in txs if i not in found}
            txs = {i: tx for i, tx in txs.items() if orgs[i] not in missing}
            await record_anchor_txs(s, txs, {i: orgs[i] for i in txs})
        for _ in [*signed, *dropped]:
            self.ctx.crash_point("signed")
        if txs:  # committed (sending): now the external effect
            for _ in txs:
                self.ctx.crash_point("sending")
            await self._broadcast(txs)
            for _ in txs:
                self.ctx.crash_point("broadcast")
        return [*dropped, *(i for i in signed if i not in txs)], sorted(txs)

    async def _custodial_anchor_txs(
        self, rows: list[Any], trees: dict[int, bytes | None], keys: dict[int, IssuerKey]
    ) -> dict[int, SentTx]:
        """The anchor transactions of custodial issuers' batches (``rows``, their trees built),
        signed with the issuers' keys after a dry run (by issuer: one batch request for the dry
        runs, nonce and fee): {batch id: SentTx}. A batch whose dry run the chain refuses has none
        (the send step tries again, and holds it if it is refused again)."""
        out: dict[int, SentTx] = {}
        by_org: dict[int, list] = {}
        for r in rows:
            by_org.setdefault(r.issuer_org_id, []).append(r)
        for org_id, mine in by_org.items():
            datas = []
            for r in mine:
                tree = trees[r.id]
                assert tree is not None  # (the caller passes only batches whose tree was built)
                datas.append(
                    self.ctx.chain.anchor_data("0x" + tree[:32].hex(), r.credential_type, _count(tree))
                )
            answers = await self.ctx.chain.anchor_txs(keys[org_id].secp, datas, gas=ANCHOR_GAS)
            out |= {r.id: tx for r, tx in zip(mine, answers) if isinstance(tx, SentTx)}
        return out

    async def _sign_remote(
        self, rows: Any, trees: dict[int, bytes | None], remote: dict[int, IssuerKey]
    ) -> dict[int, SignedBatch]:
        """Ask each issuer's own signer to sign its batches: one call per batch, with the batch's leaves,
        credential type and count, and the anchor transaction's nonce, gas and fee; the signer answers
        with the root's signature and the signed transaction. Returns {batch id: SignedBatch}. A
        batch the signer refuses, or that it does not answer for, is held (stays sealed, the reason
        in last_error) and the issuer's later batches wait for the next pass (their nonces would
        follow the held one's)."""
        out: dict[int, SignedBatch] = {}
        by_org: dict[int, list] = {}
        for r in rows:
            by_org.setdefault(r.issuer_org_id, []).append(r)
        for org_id, mine in by_org.items():
            signer = cast(RemoteSigner, remote[org_id].secp)
            nonce, fee = await self.ctx.chain.next_nonce_and_fee(signer.address)

            async def one(i: int, r: Any, signer: Any = signer, nonce: int = nonce, fee: Any = fee) -> Any:
                tree = trees[r.id]
                assert tree is not None  # (the caller passes only batches whose tree was built)
                count = _count(tree)
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
                out[r.id] = signed
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


def _count(tree: bytes) -> int:
    """The number of leaves of a whole tree (2n - 1 nodes of 32 bytes)."""
    return (len(tree) // 32 + 1) // 2


def _is_whole_tree(stored: bytes, count: int) -> bool:
    """Whether a ``batch_trees`` row of a batch of ``count`` holds its whole tree, not its leaves."""
    return len(stored) != 32 * count


def _tree_of_pairs(pairs: Any) -> bytes:
    """A batch's whole tree from its credentials' (targetHash, subjectHash) hex pairs."""
    return tree_bytes(b"".join(leaf_hash(bytes.fromhex(t[2:]), bytes.fromhex(h[2:])) for t, h in pairs))


def chunks(seq: Any, n: int) -> Iterator[Any]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
