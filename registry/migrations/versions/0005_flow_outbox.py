"""flow_declarations: the signed declareFlow transaction is recorded before it is sent

A declaration whose receipt did not come back in time (node unreachable, block production
stalled) kept a row with no flow id and nothing to find its transaction by. The signed
transaction, its nonce and sender are now stored before it leaves, as the batch pipeline does for
anchors, so the service settles the declaration later: recorded once mined, re-broadcast while
its nonce is free, removed once another transaction took the nonce.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_declarations") as batch:
        batch.add_column(sa.Column("raw_tx", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("nonce", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("sender", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_declarations") as batch:
        batch.drop_column("sender")
        batch.drop_column("nonce")
        batch.drop_column("raw_tx")
