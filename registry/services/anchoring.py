"""The pipeline's anchoring steps (registry/services/pipeline.py): a signed batch's anchor
transaction is built and recorded in the outbox (kind ``anchor``, target ``batch:ID``; the batch
`sending`) before it is broadcast, a refused broadcast is sorted by the node's refusal kind, and a
sent batch is confirmed from the chain (`anchored`, its row ``confirmed``), re-broadcast from its row
while it is not mined, or signed again when its transaction failed (its row ``failed``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, select, update
from web3.exceptions import Web3RPCError

from registry.core.errors import ChainRejected
from registry.db.models import Batch, Organisation, OutboxTx
from registry.services import outbox
from registry.services.chain import ANCHOR_GAS, SentTx
from registry.services.node_errors import Refusal, classify
from registry.services.orgs import issuer_keys
from registry.services.remote_signer import SignerRefused, SignerUnavailable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.core.config import Settings
    from registry.services.context import ServiceContext

log = logging.getLogger("certledger.pipeline")


#: a broadcast refused for one of these goes back to `signed` (a new nonce and fee on the next pass)
_RESIGN = frozenset({Refusal.NONCE_USED, Refusal.NONCE_GAP, Refusal.UNDERPRICED})


def anchor_target(batch_id: int) -> str:
    """The outbox target of a batch's anchor transaction."""
    return f"batch:{batch_id}"


async def record_anchor_txs(s: AsyncSession, txs: dict[int, SentTx], orgs: dict[int, int]) -> None:
    """In ``s``'s transaction, before they leave: each batch's signed anchor transaction ({batch id:
    SentTx}; ``orgs``: {batch id: issuer organisation}) in the outbox, and the batch `sending` with
    its transaction's hash."""
    if not txs:
        return
    await outbox.record_all_sent(
        s, outbox.Kind.ANCHOR, [(anchor_target(i), tx, orgs[i]) for i, tx in txs.items()]
    )
    await update_each(
        s,
        {i: {"tx_hash": tx.tx_hash} for i, tx in txs.items()},
        attempts=Batch.attempts + 1,
        state="sending",
    )


async def update_each(s: AsyncSession, values: dict[int, dict[str, Any]], **common: Any) -> None:
    """Set each batch's own ``values`` ({batch id: {column: value}}, the same columns for each) and
    the ``common`` ones (values or expressions) in one statement run for all of them (executemany)."""
    if not values:
        return
    table = cast(Table, Batch.__table__)
    columns = next(iter(values.values())).keys()
    statement = (
        update(table)
        .where(table.c.id == bindparam("batch_id_"))
        .values({c: bindparam(f"{c}_") for c in columns} | common)
    )
    await s.execute(
        statement, [{"batch_id_": i, **{f"{c}_": v[c] for c in columns}} for i, v in values.items()]
    )


class Anchoring:
    """The anchoring steps of :class:`registry.services.pipeline.Pipeline` (a mixin: it uses the
    pipeline's ``ctx``, ``settings`` and ``_hold``)."""

    if TYPE_CHECKING:  # what the pipeline provides
        ctx: ServiceContext
        anchored_batches: int

        @property
        def settings(self) -> Settings: ...

        async def _hold(self, batch_id: int, reason: str, retry: timedelta = ...) -> None: ...

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
        keys = await issuer_keys(ctx, {b.issuer_org_id for b in batches})
        # A batch never broadcast cannot be anchored (its root is known to no one else: random salts),
        # so only a resend asks the chain first; that also covers an issuer suspended since.
        resent = [b for b in batches if b.attempts > 0]
        anchored = {b.id for b, a in zip(resent, await ctx.chain.anchors_of([b.root for b in resent])) if a}
        # signed before the write transaction, after a dry run from each issuer's account (a refusal,
        # e.g. the issuer suspended, holds the batch): nonces and fee come from the chain, and on
        # SQLite the write gate is not held over those round trips
        txs: dict[int, SentTx] = {}
        orgs: dict[int, int] = {}
        for org, key in keys.items():
            # (a Row's count column, read through _mapping: to a type checker ``.count`` is tuple.count)
            mine = [b for b in batches if b.issuer_org_id == org and b.id not in anchored]
            if not mine:
                continue
            datas = [ctx.chain.anchor_data(b.root, b.credential_type, b._mapping["count"]) for b in mine]
            try:
                answers = await ctx.chain.anchor_txs(key.secp, datas, gas=ANCHOR_GAS)
            except (SignerUnavailable, SignerRefused) as exc:  # an issuer's own signer: the batches wait
                for b in mine:
                    await self._hold(b.id, exc.message, timedelta(seconds=self.settings.signer_retry_seconds))
                continue
            for b, answer in zip(mine, answers):
                if isinstance(answer, SentTx):
                    txs[b.id], orgs[b.id] = answer, org
                elif (answer.details or {}).get("error") == "RootAlreadyAnchored":
                    anchored.add(b.id)
                else:
                    await self._hold(b.id, answer.message)
        if anchored:  # anchored already (by an earlier attempt): just confirm them
            async with ctx.writing() as s:
                await s.execute(update(Batch).where(Batch.id.in_(anchored)).values(state="sending"))
        if not txs:
            return sorted(anchored)
        async with ctx.writing() as s:
            await record_anchor_txs(s, txs, orgs)
        for _ in txs:
            self.ctx.crash_point("sending")
        # committed: now the external effect
        await self._broadcast(txs)
        for _ in txs:
            self.ctx.crash_point("broadcast")
        return sorted(anchored | set(txs))

    async def _broadcast(self, txs: dict, resends: dict[int, int] | None = None) -> None:
        """Broadcast the batches' signed txs ({batch id: SentTx}) in nonce order. One the node refuses
        for its nonce or fee goes back to `signed` (re-signed on the next pass unless anchored).

        ``resends``: these are resends of txs already sent (the confirm step found them unmined),
        with each one's ``refused_resends`` (a column of its outbox row). A resend refused for its
        nonce with no receipt yet is given one more pass before it is signed again: a node can
        refuse a transaction for its nonce just as it mines it, before its receipt is served (seen
        on anvil under load), and a new transaction then would be wasted. The refusal's meaning is
        its classified kind (registry/services/node_errors.py); its text goes to ``last_error`` for
        people."""
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
                        .values(state="signed", last_error=refusal.message[:500])
                    )
                    await outbox.finish_targets(
                        s, outbox.Kind.ANCHOR, [anchor_target(batch_id)], outbox.State.FAILED, refusal.message
                    )
                for batch_id, refusal in wait:
                    note = (
                        f"the resent anchor tx was refused ({refusal.message[:400]}) and not "
                        "mined yet; signed again if still so on the next pass"
                    )
                    await s.execute(
                        update(Batch)
                        .where(Batch.id == batch_id, Batch.state == "sending")
                        .values(last_error=note)
                    )
                    await outbox.count_refused_resend(s, outbox.Kind.ANCHOR, anchor_target(batch_id), note)
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
                    select(Batch.id, Batch.root, Batch.tx_hash, Organisation.issuer_id)
                    .join(Organisation, Organisation.id == Batch.issuer_org_id)
                    .where(Batch.id.in_(batch_ids), Batch.state == "sending")
                    .order_by(Batch.id)
                )
            ).all()
        if not batches:
            return []
        # (each batch's receipt asked with the anchors: most are mined and confirmed in this look)
        with_tx = [b for b in batches if b.tx_hash]
        anchors, answers = await ctx.chain.anchors_and_receipts(
            [b.root for b in batches], [b.tx_hash for b in with_tx]
        )
        receipts = dict(zip((b.id for b in with_tx), answers))
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
            for b, a in mine:
                values = dict(
                    block_number=a["blockNumber"],
                    anchored_at=datetime.fromtimestamp(a["timestamp"], UTC),
                    tx_hash=b.tx_hash,
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
        failed = [b for b in missing if (r := receipts.get(b.id)) is not None and r["status"] != 1]
        unmined = [b for b in missing if receipts.get(b.id) is None]
        if final or rejected or failed:
            anchor, confirmed, failed_ = outbox.Kind.ANCHOR, outbox.State.CONFIRMED, outbox.State.FAILED
            async with ctx.writing() as s:
                await update_each(s, final, state="anchored", claimed_by=None)
                await outbox.finish_targets(s, anchor, [anchor_target(i) for i in final], confirmed)
                for batch_id, reason in rejected:
                    await s.execute(
                        update(Batch)
                        .where(Batch.id == batch_id)
                        .values(state="rejected", last_error=reason, claimed_by=None)
                    )
                    await outbox.finish_targets(s, anchor, [anchor_target(batch_id)], failed_, reason)
                for b in failed:  # sign again from the tree
                    reason = f"anchor tx {b.tx_hash} failed; re-signing"
                    await s.execute(
                        update(Batch).where(Batch.id == b.id).values(state="sealed", last_error=reason)
                    )
                await outbox.finish_targets(
                    s, anchor, [anchor_target(b.id) for b in failed], failed_, "reverted"
                )
        for _ in final:
            self.ctx.crash_point("anchored")
        if final:
            self.anchored_batches += len(final)
            self.ctx.anchors_changed()  # /v1/verify: the new anchors count at once
        rows = {}
        if unmined:  # (their open outbox rows: read only now, as most passes find none unmined)
            async with ctx.sessions() as s:
                in_flight = await outbox.open_rows(
                    s, outbox.Kind.ANCHOR, [anchor_target(b.id) for b in unmined]
                )
            rows = {b.id: in_flight[anchor_target(b.id)] for b in unmined if anchor_target(b.id) in in_flight}
        if rows:  # make sure the node has them (it may have restarted without its mempool)
            await self._broadcast(
                {i: _sent_tx(r) for i, r in rows.items()},
                resends={i: r.refused_resends for i, r in rows.items()},
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


def _sent_tx(row: OutboxTx) -> SentTx:
    """The signed transaction an open outbox row holds."""
    if row.raw_tx is None or row.tx_hash is None or row.nonce is None or row.sender is None:
        raise RuntimeError(f"outbox row {row.id} ({row.target}) is sent without its signed transaction")
    return SentTx(row.raw_tx, row.tx_hash, row.nonce, row.sender)
