"""The baseline: the whole schema of the registry and the chain projection, in one revision.

Migrations 0001-0012 of the development versions were squashed into this one before the first
release (issue #20, point 6), and the read paths for rows they had carried over (salts stored on a
credential row, documents stored whole) went with them. A database created by a development
version before the squash has no upgrade path: ``certledger db upgrade`` says so, and it is
recreated (``make demo`` recreates its own).

What it creates beyond the tables the models describe:

* the ``status_index`` counter, seeded at 0;
* on PostgreSQL, the statement-level triggers that check a credential's references to its issuer
  and batch instead of two per-row foreign keys (``registry/migrations/reference_triggers.py``).
  Kept because they still pay: ``scripts/bench_fk_triggers.py``, COPY of 10,000 credential rows,
  15.4-19.4 µs per row with the triggers against 22.6-23.3 µs with the foreign keys (1.20-1.47x,
  two quiet runs, docs/BENCHMARKS.md).

Revision ID: b0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from registry.migrations import reference_triggers

revision = "b0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("entry_hash"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("chain_account", sa.String(length=42), nullable=True),
        sa.Column("issuer_id", sa.Integer(), nullable=True),
        sa.Column("suite", sa.String(length=16), nullable=True),
        sa.Column("credential_types", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signer_url", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identifier"),
        sa.UniqueConstraint("issuer_id"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_org_id", sa.Integer(), nullable=False),
        sa.Column("credential_type", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=True),
        sa.Column("tree", sa.LargeBinary(), nullable=True),
        sa.Column("suite", sa.String(length=16), nullable=True),
        sa.Column("key_version", sa.Integer(), nullable=True),
        sa.Column("signature", sa.String(length=200), nullable=True),
        sa.Column("sender", sa.String(length=42), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("refused_resends", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("status_reason", sa.SmallInteger(), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_org_id"],
            ["organisations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("root"),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_state"), ["state"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("sender", sa.String(length=42), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_kind_target_state", ["kind", "target", "state"], unique=False)
        batch_op.create_index("ix_outbox_state_next", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("suite", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("sm2_public_key", sa.String(length=130), nullable=True),
        sa.Column("keystore", sa.Text(), nullable=True),
        sa.Column("sm2_keystore", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "version"),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("status_index", sa.BigInteger(), nullable=False),
        sa.Column("issuer_org_id", sa.Integer(), nullable=False),
        sa.Column("credential_type", sa.SmallInteger(), nullable=False),
        sa.Column("subject_identifier", sa.String(length=64), nullable=False),
        sa.Column("target_hash", sa.String(length=66), nullable=False),
        sa.Column("subject_hash", sa.String(length=66), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("salt_seed", sa.LargeBinary(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("status_reason", sa.SmallInteger(), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_tx", sa.String(length=66), nullable=True),
        sa.Column("licence_identifier", sa.String(length=160), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
        ),
        sa.ForeignKeyConstraint(
            ["issuer_org_id"],
            ["organisations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("status_index"),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_credentials_licence_identifier"), ["licence_identifier"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_credentials_subject_identifier"), ["subject_identifier"], unique=False
        )
        batch_op.create_index(
            "ix_credentials_unbatched",
            ["issuer_org_id", "credential_type", "status_index"],
            unique=False,
            sqlite_where=sa.text("batch_id IS NULL"),
            postgresql_where=sa.text("batch_id IS NULL"),
        )

    op.create_table(
        "flow_declarations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.BigInteger(), nullable=True),
        sa.Column("declaration_hash", sa.String(length=66), nullable=False),
        sa.Column("exporter_org_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=64), nullable=False),
        sa.Column("parent_flow_id", sa.BigInteger(), nullable=True),
        sa.Column("declaration", sa.JSON(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("received_digest", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asset_leaf", sa.String(length=66), nullable=True),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.SmallInteger(), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_tx", sa.String(length=66), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
        ),
        sa.ForeignKeyConstraint(
            ["exporter_org_id"],
            ["organisations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("declaration_hash"),
        sa.UniqueConstraint("flow_id"),
    )
    with op.batch_alter_table("flow_declarations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_declarations_asset_leaf"), ["asset_leaf"], unique=False)

    op.create_table(
        "chain_anchors",
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("issuer_id", sa.BigInteger(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("credential_type", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("status_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("root"),
    )
    with op.batch_alter_table("chain_anchors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_anchors_block_number"), ["block_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_anchors_issuer_id"), ["issuer_id"], unique=False)

    op.create_table(
        "chain_credential_status",
        sa.Column("id", sa.String(length=133), nullable=False),
        sa.Column("leaf", sa.String(length=66), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("issuer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chain_credential_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_credential_status_leaf"), ["leaf"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_credential_status_root"), ["root"], unique=False)

    op.create_table(
        "chain_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("contract", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=160), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_hash", "log_index", name="uq_chain_events_block_log"),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_events_entity"), ["entity"], unique=False)
        batch_op.create_index("ix_chain_events_order", ["block_number", "log_index"], unique=False)

    op.create_table(
        "chain_flows",
        sa.Column("flow_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_leaf", sa.String(length=66), nullable=False),
        sa.Column("asset_root", sa.String(length=66), nullable=False),
        sa.Column("parent_flow_id", sa.BigInteger(), nullable=False),
        sa.Column("exporter", sa.String(length=42), nullable=False),
        sa.Column("exporter_id", sa.String(length=66), nullable=False),
        sa.Column("importer_id", sa.String(length=66), nullable=False),
        sa.Column("from_jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("to_jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("legal_basis", sa.String(length=32), nullable=False),
        sa.Column("personal_information", sa.Boolean(), nullable=False),
        sa.Column("subjects", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("purpose_hash", sa.String(length=66), nullable=False),
        sa.Column("payload_digest", sa.String(length=66), nullable=False),
        sa.Column("declaration_hash", sa.String(length=66), nullable=False),
        sa.Column("declared_block", sa.BigInteger(), nullable=False),
        sa.Column("declared_at", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decision_reason", sa.String(), nullable=True),
        sa.Column("decided_by", sa.String(length=42), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("decided_block", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("flow_id"),
    )
    with op.batch_alter_table("chain_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_flows_asset_leaf"), ["asset_leaf"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_flows_exporter_id"), ["exporter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_flows_importer_id"), ["importer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_flows_parent_flow_id"), ["parent_flow_id"], unique=False)

    op.create_table(
        "chain_issuer_keys",
        sa.Column("issuer_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("sm2_public_key", sa.String(), nullable=False),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "key_version"),
    )
    with op.batch_alter_table("chain_issuer_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_issuer_keys_account"), ["account"], unique=False)

    op.create_table(
        "chain_issuer_types",
        sa.Column("issuer_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("credential_type", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "credential_type"),
    )
    op.create_table(
        "chain_issuers",
        sa.Column("issuer_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("uscc", sa.String(length=64), nullable=False),
        sa.Column("suite", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("suspension_reason", sa.Integer(), nullable=False),
        sa.Column("active_from", sa.BigInteger(), nullable=False),
        sa.Column("active_until", sa.BigInteger(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("registered_block", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id"),
    )
    op.create_table(
        "chain_participants",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("participant_id", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    with op.batch_alter_table("chain_participants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chain_participants_participant_id"), ["participant_id"], unique=False
        )

    op.create_table(
        "indexer_blocks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("name", "block_number"),
    )
    op.create_table(
        "indexer_checkpoint",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    # seeded, so concurrent instances only ever UPDATE the row, never race to INSERT it
    op.bulk_insert(counters, [{"name": "status_index", "value": 0}])
    reference_triggers.install()  # PostgreSQL: the credentials' two references checked per statement


def downgrade() -> None:
    reference_triggers.remove()
    op.drop_table("indexer_checkpoint")
    op.drop_table("indexer_blocks")
    with op.batch_alter_table("chain_participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_participants_participant_id"))

    op.drop_table("chain_participants")
    op.drop_table("chain_issuers")
    op.drop_table("chain_issuer_types")
    with op.batch_alter_table("chain_issuer_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_issuer_keys_account"))

    op.drop_table("chain_issuer_keys")
    with op.batch_alter_table("chain_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_flows_parent_flow_id"))
        batch_op.drop_index(batch_op.f("ix_chain_flows_importer_id"))
        batch_op.drop_index(batch_op.f("ix_chain_flows_exporter_id"))
        batch_op.drop_index(batch_op.f("ix_chain_flows_asset_leaf"))

    op.drop_table("chain_flows")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_events_order")
        batch_op.drop_index(batch_op.f("ix_chain_events_entity"))

    op.drop_table("chain_events")
    with op.batch_alter_table("chain_credential_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_credential_status_root"))
        batch_op.drop_index(batch_op.f("ix_chain_credential_status_leaf"))

    op.drop_table("chain_credential_status")
    with op.batch_alter_table("chain_anchors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_anchors_issuer_id"))
        batch_op.drop_index(batch_op.f("ix_chain_anchors_block_number"))

    op.drop_table("chain_anchors")
    with op.batch_alter_table("flow_declarations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flow_declarations_asset_leaf"))

    op.drop_table("flow_declarations")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_credentials_unbatched",
            sqlite_where=sa.text("batch_id IS NULL"),
            postgresql_where=sa.text("batch_id IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_credentials_subject_identifier"))
        batch_op.drop_index(batch_op.f("ix_credentials_licence_identifier"))
        batch_op.drop_index(batch_op.f("ix_credentials_batch_id"))

    op.drop_table("credentials")
    op.drop_table("signing_keys")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state_next")
        batch_op.drop_index("ix_outbox_kind_target_state")

    op.drop_table("outbox")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_state"))

    op.drop_table("batches")
    op.drop_table("api_keys")
    op.drop_table("organisations")
    op.drop_table("counters")
    op.drop_table("audit_log")
