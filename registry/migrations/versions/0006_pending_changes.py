"""pending_changes: status changes whose transaction was sent but whose outcome the DB lacks

A revocation, suspension or reinstatement goes on-chain first and into the DB after it is mined.
A request that timed out waiting for the receipt, or a process killed in between, left the chain
ahead of the DB, and the trust bundle and /v1/verify with it. The signed transaction is now
recorded here before it is sent, and the service applies the outcome once the transaction is mined
(or forgets it once it cannot be).

Batches also get ``status_changed_at``, so a trust bundle tells a bank when a batch was suspended
or revoked (it said "on an unrecorded date").

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("status_changed_at")
    op.drop_index("ix_pending_changes_target", table_name="pending_changes")
    op.drop_table("pending_changes")
