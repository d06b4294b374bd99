"""credentials: one salt seed instead of the salts; no unique index on target_hash

* A credential's salts are derived from a random 32-byte seed (docs/FORMAT.md §3.2), so a row
  stores 32 bytes instead of a JSON object of 0x-hex salts. Rows written before keep their salts
  (the column becomes nullable); nothing is rewritten or dropped.
* ``target_hash`` loses its unique index: nothing looks a credential up by it, two credentials
  cannot share it (every leaf is salted at random), and keeping a B-tree of random 66-character
  keys up to date was a third of the cost of writing a credential row.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# SQLite keeps 0001's unique constraint unnamed; batch mode names it by this convention to drop it.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name() -> str:
    """PostgreSQL's own name for 0001's constraint; on SQLite the convention's (a downgrade uses it too)."""
    return (
        "uq_credentials_target_hash"
        if op.get_bind().dialect.name == "sqlite"
        else "credentials_target_hash_key"
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("credentials", naming_convention=_SQLITE_NAMES if sqlite else None) as batch_op:
        batch_op.add_column(sa.Column("salt_seed", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("salts", existing_type=sa.Text(), nullable=True)
        batch_op.drop_constraint(_unique_name(), type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_unique_constraint(_unique_name(), ["target_hash"])
        batch_op.alter_column("salts", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("salt_seed")
