"""batches.refused_resends: the resend wait as a column, not a prefix of last_error

A resend the node refused for its nonce or fee while the transaction was not mined waits one pass
before the batch is signed again. That was read back from the text of ``last_error``; it is now
counted in ``refused_resends`` and ``last_error`` is for people only (issue #20, point 2).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("refused_resends", sa.SmallInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("refused_resends")
