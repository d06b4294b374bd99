"""registry_secrets, with the key enterprise holders' subjectSalt is derived from (FORMAT.md §1):
made here, once per database, so every instance of a deployment shares it.

Revision ID: b0002
Revises: b0001
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op

revision = "b0002"
down_revision = "b0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "registry_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=130), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(table, [{"name": "subject_salt_key", "value": os.urandom(32).hex()}])


def downgrade() -> None:
    op.drop_table("registry_secrets")
