"""credentials.licence_identifier: an e-licence's 证照标识, indexed, for looking a licence up by it

E-licences carry the national identifier (docs/FORMAT.md §2.4, issue #22 point 4). Rows written
before this revision have none (their documents predate the identifier).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("licence_identifier", sa.String(160), nullable=True))
    op.create_index("ix_credentials_licence_identifier", "credentials", ["licence_identifier"])


def downgrade() -> None:
    op.drop_index("ix_credentials_licence_identifier", "credentials")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("licence_identifier")
