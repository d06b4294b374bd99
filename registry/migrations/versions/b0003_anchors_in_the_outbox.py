"""Anchor transactions in the outbox (issue #20, point 2): a batch's in-flight anchor transaction
(raw_tx, nonce, sender, refused resends) moves from columns of ``batches`` to an ``outbox`` row of
kind ``anchor`` (target ``batch:ID``), like every other chain transaction the registry signs.
``batches.tx_hash`` stays: it names the transaction that anchored the batch. ``outbox`` gains
``refused_resends``.

A batch in flight (``sending``, with its signed transaction) gets its ``sent`` row here; the
downgrade puts the open row's transaction back on its batch.

Revision ID: b0003
Revises: b0002
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "b0003"
down_revision = "b0002"
branch_labels = None
depends_on = None

_MOVED = ("raw_tx", "nonce", "sender", "refused_resends")


def upgrade() -> None:
    # (plain ALTER TABLE … ADD/DROP COLUMN on both databases: SQLite ≥ 3.35 drops an unindexed
    # column in place, and rebuilding `batches` would have to drop the table credentials refer to)
    op.add_column(
        "outbox", sa.Column("refused_resends", sa.SmallInteger(), server_default="0", nullable=False)
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    in_flight = bind.execute(
        sa.text(
            "SELECT id, issuer_org_id, raw_tx, tx_hash, nonce, sender, refused_resends FROM batches "
            "WHERE state = 'sending' AND raw_tx IS NOT NULL"
        )
    ).all()
    outbox = sa.table(
        "outbox",
        sa.column("kind", sa.String),
        sa.column("state", sa.String),
        sa.column("target", sa.String),
        sa.column("payload", sa.JSON),
        sa.column("org_id", sa.Integer),
        sa.column("raw_tx", sa.LargeBinary),
        sa.column("tx_hash", sa.String),
        sa.column("nonce", sa.BigInteger),
        sa.column("sender", sa.String),
        sa.column("attempts", sa.Integer),
        sa.column("refused_resends", sa.SmallInteger),
        sa.column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    if in_flight:
        op.bulk_insert(
            outbox,
            [
                {
                    "kind": "anchor",
                    "state": "sent",
                    "target": f"batch:{b.id}",
                    "payload": {},
                    "org_id": b.issuer_org_id,
                    "raw_tx": b.raw_tx,
                    "tx_hash": b.tx_hash,
                    "nonce": b.nonce,
                    "sender": b.sender,
                    "attempts": 0,
                    "refused_resends": b.refused_resends or 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for b in in_flight
            ],
        )
    for column in _MOVED:
        op.drop_column("batches", column)


def downgrade() -> None:
    op.add_column("batches", sa.Column("sender", sa.String(length=42), nullable=True))
    op.add_column("batches", sa.Column("nonce", sa.BigInteger(), nullable=True))
    op.add_column("batches", sa.Column("raw_tx", sa.LargeBinary(), nullable=True))
    op.add_column(
        "batches", sa.Column("refused_resends", sa.SmallInteger(), server_default="0", nullable=False)
    )
    bind = op.get_bind()
    for row in bind.execute(
        sa.text(
            "SELECT target, raw_tx, nonce, sender, refused_resends FROM outbox "
            "WHERE kind = 'anchor' AND state = 'sent'"
        )
    ).all():
        bind.execute(
            sa.text(
                "UPDATE batches SET raw_tx = :raw, nonce = :nonce, sender = :sender, "
                "refused_resends = :refused WHERE id = :id"
            ),
            {
                "raw": row.raw_tx,
                "nonce": row.nonce,
                "sender": row.sender,
                "refused": row.refused_resends,
                "id": int(row.target.split(":", 1)[1]),
            },
        )
    bind.execute(sa.text("DELETE FROM outbox WHERE kind = 'anchor'"))
    op.drop_column("outbox", "refused_resends")
