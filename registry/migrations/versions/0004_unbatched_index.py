"""credentials: the sealer's index holds only the credentials still waiting for a batch

``ix_credentials_pending`` (issuer, type, batch_id) indexed every credential ever issued, though
the sealer only asks for those with ``batch_id IS NULL``. It becomes a partial index over exactly
those, ordered as the sealer takes them (status index): a credential an upload seals as it writes
it never enters the index, and the index shrinks back as batches are sealed instead of growing
with the table.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UNBATCHED = sa.text("batch_id IS NULL")


def upgrade() -> None:
    op.drop_index("ix_credentials_pending", table_name="credentials")
    op.create_index(
        "ix_credentials_unbatched",
        "credentials",
        ["issuer_org_id", "credential_type", "status_index"],
        sqlite_where=_UNBATCHED,
        postgresql_where=_UNBATCHED,
    )


def downgrade() -> None:
    op.drop_index("ix_credentials_unbatched", table_name="credentials")
    op.create_index("ix_credentials_pending", "credentials", ["issuer_org_id", "credential_type", "batch_id"])
