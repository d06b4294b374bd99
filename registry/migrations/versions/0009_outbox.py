"""outbox: one table for every chain transaction the registry signs

Replaces ``pending_changes`` (status changes). Each row has an explicit state (queued → sent →
confirmed | failed), a ``kind``, its attempts and ``next_attempt_at`` as columns; ``last_error`` is
for people. Rows still pending in ``pending_changes`` are carried over as ``sent``.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("sender", sa.String(length=42), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_kind_target_state", "outbox", ["kind", "target", "state"])
    op.create_index("ix_outbox_state_next", "outbox", ["state", "next_attempt_at"])
    pending = sa.table(
        "pending_changes",
        *(
            sa.column(c)
            for c in (
                "kind",
                "target",
                "action",
                "reason",
                "org_id",
                "actor",
                "request_id",
                "raw_tx",
                "tx_hash",
                "nonce",
                "sender",
                "created_at",
            )
        ),
    )
    outbox = sa.table(
        "outbox",
        *(
            sa.column(c)
            for c in (
                "kind",
                "state",
                "target",
                "payload",
                "org_id",
                "raw_tx",
                "tx_hash",
                "nonce",
                "sender",
                "attempts",
                "next_attempt_at",
                "created_at",
            )
        ),
    )
    conn = op.get_bind()
    rows = [
        {
            "kind": "status_change",
            "state": "sent",
            "target": f"{r.kind}:{r.target}",
            "payload": {"action": r.action, "reason": r.reason, "actor": r.actor, "request_id": r.request_id},
            "org_id": r.org_id,
            "raw_tx": r.raw_tx,
            "tx_hash": r.tx_hash,
            "nonce": r.nonce,
            "sender": r.sender,
            "attempts": 0,
            "next_attempt_at": r.created_at,
            "created_at": r.created_at,
        }
        for r in conn.execute(sa.select(pending))
    ]
    if rows:
        op.bulk_insert(outbox, rows)
    op.drop_index("ix_pending_changes_target", table_name="pending_changes")
    op.drop_table("pending_changes")


def downgrade() -> None:
    op.create_table(
        "pending_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.SmallInteger(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pending_changes_target", "pending_changes", ["target"])
    op.drop_index("ix_outbox_state_next", table_name="outbox")
    op.drop_index("ix_outbox_kind_target_state", table_name="outbox")
    op.drop_table("outbox")
