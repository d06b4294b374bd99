"""flow declarations on the outbox: their transactions leave flow_declarations

A declaration's signed transaction is recorded in the outbox (kind ``flow_declaration``, target
``declaration:<row id>``), queued in the same transaction as its row and sent from there; the row
keeps only the mined transaction's hash. Declarations still unmined are carried over: with a signed
transaction as ``sent``, without one (never sent) as ``queued`` and due, which the settle pass
undoes.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OUTBOX = sa.table(
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


def upgrade() -> None:
    flows = sa.table(
        "flow_declarations",
        *(
            sa.column(c)
            for c in (
                "id",
                "flow_id",
                "exporter_org_id",
                "raw_tx",
                "tx_hash",
                "nonce",
                "sender",
                "created_at",
            )
        ),
    )
    orgs = sa.table("organisations", sa.column("id"), sa.column("name"))
    conn = op.get_bind()
    names = dict(conn.execute(sa.select(orgs.c.id, orgs.c.name)).all())
    rows = [
        {
            "kind": "flow_declaration",
            "state": "sent" if r.raw_tx is not None else "queued",
            "target": f"declaration:{r.id}",
            "payload": {"actor": names.get(r.exporter_org_id, "?"), "request_id": "migration-0011"},
            "org_id": r.exporter_org_id,
            "raw_tx": r.raw_tx,
            "tx_hash": r.tx_hash if r.raw_tx is not None else None,
            "nonce": r.nonce,
            "sender": r.sender,
            "attempts": 0,
            "next_attempt_at": r.created_at,
            "created_at": r.created_at,
        }
        for r in conn.execute(sa.select(flows).where(flows.c.flow_id.is_(None)))
    ]
    if rows:
        op.bulk_insert(_OUTBOX, rows)
        conn.execute(sa.update(flows).where(flows.c.flow_id.is_(None)).values(tx_hash=None))
    with op.batch_alter_table("flow_declarations") as batch:
        batch.drop_column("raw_tx")
        batch.drop_column("nonce")
        batch.drop_column("sender")


def downgrade() -> None:
    with op.batch_alter_table("flow_declarations") as batch:
        batch.add_column(sa.Column("raw_tx", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("nonce", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("sender", sa.String(length=42), nullable=True))
    conn = op.get_bind()
    flows = sa.table(
        "flow_declarations",
        sa.column("id"),
        sa.column("raw_tx"),
        sa.column("tx_hash"),
        sa.column("nonce"),
        sa.column("sender"),
    )
    open_rows = conn.execute(
        sa.select(
            _OUTBOX.c.target, _OUTBOX.c.raw_tx, _OUTBOX.c.tx_hash, _OUTBOX.c.nonce, _OUTBOX.c.sender
        ).where(_OUTBOX.c.kind == "flow_declaration", _OUTBOX.c.state == "sent")
    ).all()
    for target, raw, tx_hash, nonce, sender in open_rows:
        conn.execute(
            sa.update(flows)
            .where(flows.c.id == int(target.split(":", 1)[1]))
            .values(raw_tx=raw, tx_hash=tx_hash, nonce=nonce, sender=sender)
        )
    conn.execute(sa.delete(_OUTBOX).where(_OUTBOX.c.kind == "flow_declaration"))
