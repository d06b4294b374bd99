"""Compact credential rows (issue #23: DB bytes per credential).

* ``credentials.document`` (the stored members as JSON text) becomes ``packed_document``: the same
  JSON deflated with a preset dictionary behind a version byte (registry/services/docpack.py).
* ``credentials.licence_identifier`` (an e-licence's 88-character national identifier, indexed)
  becomes ``licence_key``: an 8-byte hash of it, indexed (docpack.licence_key); the identifier is
  in the document.

Every row is converted here, and back by the downgrade.

Revision ID: b0004
Revises: b0003
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from registry.services.docpack import licence_key, pack, stored_licence_identifier, unpack

revision = "b0004"
down_revision = "b0003"
branch_labels = None
depends_on = None

_CHUNK = 5000


def _convert(sources: str, fill: Callable[[Any], dict[str, Any]]) -> None:
    """Set, on every credential, the columns ``fill`` makes of its ``sources`` (SQL column list),
    ``_CHUNK`` rows at a time."""
    bind = op.get_bind()
    last = ""
    while True:
        rows = bind.execute(
            sa.text(f"SELECT id, {sources} FROM credentials WHERE id > :last ORDER BY id LIMIT {_CHUNK}"),
            {"last": last},
        ).all()
        if not rows:
            return
        values = [{"id": row[0], **fill(row)} for row in rows]
        names = [k for k in values[0] if k != "id"]
        bind.execute(
            sa.text(f"UPDATE credentials SET {', '.join(f'{n} = :{n}' for n in names)} WHERE id = :id"),
            values,
        )
        last = rows[-1][0]


def upgrade() -> None:
    op.add_column("credentials", sa.Column("packed_document", sa.LargeBinary(), nullable=True))
    op.add_column("credentials", sa.Column("licence_key", sa.BigInteger(), nullable=True))
    _convert(
        "document, licence_identifier",
        lambda row: {
            "packed_document": pack(row[1].encode()),
            "licence_key": licence_key(row[2]) if row[2] is not None else None,
        },
    )
    op.drop_index("ix_credentials_licence_identifier", table_name="credentials")
    # (SQLite: the table is rebuilt, as it cannot make a column NOT NULL in place)
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column("packed_document", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("document")
        batch.drop_column("licence_identifier")
        batch.create_index("ix_credentials_licence_key", ["licence_key"], unique=False)


def downgrade() -> None:
    op.add_column("credentials", sa.Column("document", sa.Text(), nullable=True))
    op.add_column("credentials", sa.Column("licence_identifier", sa.String(length=160), nullable=True))
    _convert(
        "packed_document, licence_key",
        lambda row: {
            "document": unpack(bytes(row[1])).decode(),
            "licence_identifier": stored_licence_identifier(bytes(row[1])) if row[2] is not None else None,
        },
    )
    op.drop_index("ix_credentials_licence_key", table_name="credentials")
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column("document", existing_type=sa.Text(), nullable=False)
        batch.drop_column("packed_document")
        batch.drop_column("licence_key")
        batch.create_index("ix_credentials_licence_identifier", ["licence_identifier"], unique=False)
