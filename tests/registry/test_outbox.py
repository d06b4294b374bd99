"""The outbox's settle pass (registry/services/outbox.py) on a real anvil, SQLite and PostgreSQL:
control state lives in columns — a transaction not mined yet backs off by ``next_attempt_at``, one
whose nonce another transaction took ends ``failed`` with a reason for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def _row(ctx, sender: str, nonce: int) -> int:
    from registry.db.models import OutboxTx
    from registry.services import lifecycle  # noqa: F401 - registers the status-change settler

    at = datetime.now(UTC) - timedelta(seconds=1)
    async with ctx.sessions() as s, s.begin():
        row = OutboxTx(
            kind="status_change",
            state="sent",
            target="credential:nowhere",
            payload={"action": "revoke", "reason": 1, "actor": "x", "request_id": "r"},
            raw_tx=b"\x01",
            tx_hash="0x" + "66" * 32,
            nonce=nonce,
            sender=sender,
            attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
        s.add(row)
        await s.flush()
        return row.id


async def test_a_transaction_whose_nonce_was_taken_fails_and_one_not_mined_backs_off(service):
    from registry.db.models import OutboxTx
    from registry.services import outbox
    from registry.services.chain import address_of

    ctx = service.ctx
    used = address_of(ctx.governance_key)  # has sent transactions: nonce 0 is taken
    assert await ctx.chain.mined_nonce(used) > 0
    dropped = await _row(ctx, used, 0)
    waiting = await _row(ctx, "0x" + "00" * 19 + "01", 0)  # nonce free, never mined: re-broadcast
    report = await outbox.settle(ctx)
    assert report.dropped == ["credential:nowhere"] and report.applied == [] and report.waiting == 1
    async with ctx.sessions() as s:
        rows = {r.id: r for r in (await s.execute(select(OutboxTx))).scalars()}
    assert rows[dropped].state == "failed" and "nonce" in rows[dropped].last_error
    assert rows[waiting].state == "sent" and rows[waiting].attempts == 1
    assert rows[waiting].next_attempt_at.replace(tzinfo=UTC) > datetime.now(UTC)
    # not due again until its next_attempt_at: the next pass leaves it alone
    assert await outbox.settle(ctx) == outbox.Report()
    async with ctx.sessions() as s:
        assert (await s.get(OutboxTx, waiting)).attempts == 1
