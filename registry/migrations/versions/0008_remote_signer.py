"""remote signers: an issuer organisation whose key the registry never holds

``organisations.signer_url`` names the issuer's own signer (``certledger signer``, or any service
with Web3Signer's eth1 API and certledger's batch path); its signing key row keeps the public
address and SM2 key only, so ``signing_keys.keystore`` may be empty.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("signer_url", sa.String(length=300), nullable=True))
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("keystore", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("keystore", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("signer_url")
