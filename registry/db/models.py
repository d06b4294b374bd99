"""The registry's own tables. The chain projection (chain_* tables, written by the indexer)
lives in ledger_node.projection; Alembic migrates both.

Credentials keep their document as deflated JSON (registry/services/docpack.py) and the 32-byte
seed their salts are derived from (docs/FORMAT.md §3.2; written once, read rarely); a batch keeps
its whole Merkle tree as one blob in its own row of ``batch_trees``, so a credential's proof is
read from the tree by its leaf's position and batching writes one row per batch plus one batch_id
per credential. (The tree is not a column of ``batches``: SQLite rewrites a whole row on every
update, so each of a batch's state changes rewrote its 640 KB tree until b0005.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple, overload

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


HASH = String(66)  # 0x + 64 hex
ADDRESS = String(42)

#: Foreign keys (table, column) that PostgreSQL checks with statement-level triggers instead of a
#: declared constraint (registry/migrations/reference_triggers.py: a declared key costs one query
#: per inserted row); SQLite keeps them declared. The migrations check skips exactly these on PostgreSQL.
TRIGGER_CHECKED_KEYS = frozenset({("credentials", "issuer_org_id"), ("credentials", "batch_id")})


@overload
def as_utc(dt: datetime) -> datetime: ...
@overload
def as_utc(dt: None) -> None: ...
def as_utc(dt: datetime | None) -> datetime | None:
    """A ``DateTime(timezone=True)`` value as read back, in UTC (SQLite returns it naive)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@overload
def unix_time(dt: datetime) -> int: ...
@overload
def unix_time(dt: None) -> None: ...
def unix_time(dt: datetime | None) -> int | None:
    """Unix seconds of such a value (``datetime.timestamp`` would read a naive one as local time)."""
    dt = as_utc(dt)
    return int(dt.timestamp()) if dt else None


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    identifier: Mapped[str] = mapped_column(String(64), unique=True)  # USCC, or a foreign registry id
    jurisdiction: Mapped[str] = mapped_column(String(8))
    roles: Mapped[list[str]] = mapped_column(JSON)
    chain_account: Mapped[str | None] = mapped_column(ADDRESS, nullable=True)
    issuer_id: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)  # on-chain issuer id
    suite: Mapped[str | None] = mapped_column(String(16), nullable=True)
    credential_types: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the issuer's own signer: its key is never in the registry
    signer_url: Mapped[str | None] = mapped_column(String(300), nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # public part, "cl_<key_id>_<secret>"
    secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the secret
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SigningKey(Base):
    """An organisation's chain account (and SM2 key), in encrypted keystores only."""

    __tablename__ = "signing_keys"
    __table_args__ = (UniqueConstraint("org_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    version: Mapped[int] = mapped_column(Integer)
    suite: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(ADDRESS)
    sm2_public_key: Mapped[str | None] = mapped_column(String(130), nullable=True)
    # Web3 Secret Storage JSON (scrypt + AES-128-CTR); None for a key held by the issuer's own signer
    keystore: Mapped[str | None] = mapped_column(Text, nullable=True)
    sm2_keystore: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEntry(Base):
    """Append-only, hash-chained: entry_hash = sha256(prev_hash ‖ JCS(entry fields))."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class RegistrySecret(Base):
    """A secret the registry makes once and every instance shares (one row per name): today only
    ``subject_salt_key``, from which every enterprise holder's ``subjectSalt`` is derived
    (registry.services.participants). Kept in the database, not a data directory, so that every
    instance of a deployment derives the same participant ids."""

    __tablename__ = "registry_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(130))


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (
        # Only the credentials waiting for a batch (the sealer's queue, in status-index order): a row
        # an upload seals as it writes it never enters this index (the index shrinks as batches seal).
        Index(
            "ix_credentials_unbatched",
            "issuer_org_id",
            "credential_type",
            "status_index",
            sqlite_where=text("batch_id IS NULL"),
            postgresql_where=text("batch_id IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # urn:uuid:...
    status_index: Mapped[int] = mapped_column(BigInteger, unique=True)  # bitstring status list index
    issuer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    credential_type: Mapped[int] = mapped_column(SmallInteger)
    subject_identifier: Mapped[str] = mapped_column(String(64), index=True)
    # no unique index: salted, so never shared; a B-tree of it cost a third of a row's write
    target_hash: Mapped[str] = mapped_column(HASH)
    subject_hash: Mapped[str] = mapped_column(HASH)
    #: the document's packed members (prepare.PACKED_MEMBERS: its id is the id column) as JSON,
    #: compressed with a preset dictionary behind a version byte (registry/services/docpack.py)
    packed_document: Mapped[bytes] = mapped_column(LargeBinary)
    salt_seed: Mapped[bytes] = mapped_column(LargeBinary)  # the salts derive from it (FORMAT.md §3.2)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True, index=True)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[int] = mapped_column(SmallInteger, default=1)  # 1 valid, 2 revoked, 3 suspended
    status_reason: Mapped[int] = mapped_column(SmallInteger, default=0)
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status_tx: Mapped[str | None] = mapped_column(HASH, nullable=True)
    # an e-licence's 证照标识 (FORMAT.md §2.3), for looking a licence up by it
    #: an e-licence's identifier (in its document) as docpack.licence_key: what the list filters by
    licence_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)


class AnchoredBatch(NamedTuple):
    """What an anchored batch always has (:meth:`Batch.anchored`), typed without ``None``."""

    root: str
    suite: str
    key_version: int
    signature: str
    block_number: int
    anchored_at: datetime | None  # None only in a row written by hand (the registry always sets it)
    tx_hash: str | None  # None for a batch found anchored on-chain whose transaction was not found


class Batch(Base):
    """One anchor. States: sealed → signed → sending → anchored (or rejected, with last_error)."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    credential_type: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)
    count: Mapped[int] = mapped_column(Integer)
    root: Mapped[str | None] = mapped_column(HASH, nullable=True, unique=True)
    suite: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signature: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the anchor transaction: the one in flight while ``sending`` (its signed bytes, nonce and
    #: sender are its outbox row, kind ``anchor``), the one that anchored the root once ``anchored``
    tx_hash: Mapped[str | None] = mapped_column(HASH, nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    anchored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[int] = mapped_column(SmallInteger, default=1)
    status_reason: Mapped[int] = mapped_column(SmallInteger, default=0)
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def anchored(self) -> AnchoredBatch:
        """This batch's anchoring, once it is ``anchored`` (RuntimeError naming the batch and the
        field if one an anchored batch always has is missing: the row was changed by hand)."""
        parts = {
            "root": self.root,
            "suite": self.suite,
            "key_version": self.key_version,
            "signature": self.signature,
            "block_number": self.block_number,
        }
        missing = [name for name, value in parts.items() if value is None]
        if self.state != "anchored":
            raise RuntimeError(f"batch {self.id} is {self.state}, not anchored")
        if missing:
            raise RuntimeError(
                f"batch {self.id} is anchored without its {', '.join(missing)}: changed by hand"
            )
        return AnchoredBatch(**parts, anchored_at=self.anchored_at, tx_hash=self.tx_hash)  # type: ignore[arg-type]


class BatchTree(Base):
    """A batch's Merkle tree: all its nodes, 32 bytes each, as ``verifier.issuance.tree_bytes`` lays
    them out (root first). A batch an upload sealed has its row, its whole tree, from the start
    (rows written before stop 39 hold the batch's ``count`` leaves until the pipeline signs it); a
    batch ``seal_due`` made gets its row when it is signed. Deleted with its batch."""

    __tablename__ = "batch_trees"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    nodes: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxTx(Base):
    """One chain transaction the registry signed (the outbox, registry/services/outbox.py): written
    before the transaction leaves, in an explicit ``state`` (queued → sent → confirmed | failed).
    ``payload`` holds what the DB writes once it is mined (per ``kind``); ``next_attempt_at`` is when
    the settler looks at it next; ``last_error`` is for people only, never read back as control state."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_kind_target_state", "kind", "target", "state"),
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # outbox.Kind
    state: Mapped[str] = mapped_column(String(16))  # outbox.State
    target: Mapped[str] = mapped_column(String(80))  # "credential:ID", "batch:ID", ...
    payload: Mapped[dict] = mapped_column(JSON)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(HASH, nullable=True)
    nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sender: Mapped[str | None] = mapped_column(ADDRESS, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: resends of this transaction the node refused for its nonce or fee while it was not mined (an
    #: anchor's first such refusal waits a pass, the second re-signs: registry/services/anchoring.py)
    refused_resends: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FlowDeclaration(Base):
    """The off-chain part of a cross-border flow declaration (the chain keeps its hash)."""

    __tablename__ = "flow_declarations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)  # on-chain id
    declaration_hash: Mapped[str] = mapped_column(HASH, unique=True)
    exporter_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"))
    parent_flow_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    declaration: Mapped[dict] = mapped_column(JSON)
    # the declareFlow transaction, once mined (until then it is in the outbox, kind flow_declaration,
    # target "declaration:<id>")
    tx_hash: Mapped[str | None] = mapped_column(HASH, nullable=True)
    received_digest: Mapped[str | None] = mapped_column(HASH, nullable=True)  # reported by the importer
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # on-chain facts, copied from the FlowDeclared / FlowDecided receipts (times are block times)
    asset_leaf: Mapped[str | None] = mapped_column(HASH, nullable=True, index=True)
    declared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision: Mapped[int] = mapped_column(SmallInteger, default=1)  # 1 pending, 2 approved, 3 rejected
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_tx: Mapped[str | None] = mapped_column(HASH, nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
