"""The chain projection: tables rebuilt from the three contracts' events, and the fold that fills them.

Every table here is derived from `chain_events` (the raw, decoded logs) by one pure fold,
`ProjectionState.apply`, in (block, log index) order. The indexer runs the fold incrementally
(page by page, loading only the rows a page touches), a rollback after a reorg runs it again for
the entities whose events were dropped, and `replay_from_events` / `chain_snapshot` run it from
scratch — so "the projection equals a fresh re-index" is a comparison of two `snapshot()`s.

Types are portable (SQLite and PostgreSQL): bytes32 and addresses are 0x-hex strings
(bytes32 lowercase, addresses EIP-55), integers BigInteger, event arguments JSON. Enum values
are stored by their Solidity names (`Valid`, `Revoked`, `Suspended`, `None`; `Pending`,
`Approved`, `Rejected`; `Active`, `Suspended`; `Secp256k1`, `Sm2Sm3`; `StandardContract`, ...).

The registry's Alembic migration includes `ChainBase.metadata`; tests and the CLI call
`create_chain_tables(engine)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    String,
    UniqueConstraint,
    delete,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ChainBase",
    "ChainEvent",
    "ProjectionState",
    "create_chain_tables",
    "projection_snapshot",
    "replay_from_events",
    "rebuild_projection",
]

# Solidity enums, by value.
ISSUER_STATUS = ("None", "Active", "Suspended")
SUITE = ("Secp256k1", "Sm2Sm3")
ANCHOR_STATUS = ("None", "Valid", "Revoked", "Suspended")
DECISION = ("None", "Pending", "Approved", "Rejected")
LEGAL_BASIS = ("SecurityAssessment", "StandardContract", "Certification", "GbaStandardContract", "Exemption")

Hex32 = String(66)
Addr = String(42)


class ChainBase(DeclarativeBase):
    """Declarative base of the chain projection (kept apart from the registry's own tables)."""


class ChainIssuer(ChainBase):
    __tablename__ = "chain_issuers"
    issuer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(Addr)  # current key's account
    name: Mapped[str] = mapped_column(String)
    uscc: Mapped[str] = mapped_column(String(64))
    suite: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    suspension_reason: Mapped[int] = mapped_column(Integer)
    active_from: Mapped[int] = mapped_column(BigInteger)
    active_until: Mapped[int] = mapped_column(BigInteger)
    key_version: Mapped[int] = mapped_column(Integer)
    registered_block: Mapped[int] = mapped_column(BigInteger)
    registered_at: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(Hex32)
    updated_block: Mapped[int] = mapped_column(BigInteger)


class ChainIssuerKey(ChainBase):
    __tablename__ = "chain_issuer_keys"
    issuer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    key_version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(Addr, index=True)
    sm2_public_key: Mapped[str] = mapped_column(String)  # 0x-hex, "0x" when none
    valid_from: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[int] = mapped_column(BigInteger)  # 0 = current
    block_number: Mapped[int] = mapped_column(BigInteger)


class ChainIssuerType(ChainBase):
    __tablename__ = "chain_issuer_types"
    issuer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    credential_type: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    allowed: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)


class ChainParticipant(ChainBase):
    __tablename__ = "chain_participants"
    account: Mapped[str] = mapped_column(Addr, primary_key=True)
    participant_id: Mapped[str] = mapped_column(Hex32, index=True)
    block_number: Mapped[int] = mapped_column(BigInteger)


class ChainAnchor(ChainBase):
    __tablename__ = "chain_anchors"
    root: Mapped[str] = mapped_column(Hex32, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(BigInteger, index=True)
    key_version: Mapped[int] = mapped_column(Integer)
    credential_type: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(Hex32)
    log_index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[int] = mapped_column(Integer)
    status_block: Mapped[int] = mapped_column(BigInteger)


class ChainCredentialStatus(ChainBase):
    __tablename__ = "chain_credential_status"
    id: Mapped[str] = mapped_column(String(133), primary_key=True)  # "<root>:<leaf>"
    leaf: Mapped[str] = mapped_column(Hex32, index=True)
    root: Mapped[str] = mapped_column(Hex32, index=True)
    issuer_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # "None" after a reinstatement: follows its batch
    reason: Mapped[int] = mapped_column(Integer)
    block: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ChainFlow(ChainBase):
    __tablename__ = "chain_flows"
    flow_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_leaf: Mapped[str] = mapped_column(Hex32, index=True)
    asset_root: Mapped[str] = mapped_column(Hex32)
    parent_flow_id: Mapped[int] = mapped_column(BigInteger, index=True)  # 0 = original flow
    exporter: Mapped[str] = mapped_column(Addr)
    exporter_id: Mapped[str] = mapped_column(Hex32, index=True)
    importer_id: Mapped[str] = mapped_column(Hex32, index=True)
    from_jurisdiction: Mapped[str] = mapped_column(String(8))
    to_jurisdiction: Mapped[str] = mapped_column(String(8))
    legal_basis: Mapped[str] = mapped_column(String(32))
    personal_information: Mapped[bool] = mapped_column(Boolean)
    subjects: Mapped[int] = mapped_column(BigInteger)
    volume: Mapped[int] = mapped_column(BigInteger)
    purpose_hash: Mapped[str] = mapped_column(Hex32)
    payload_digest: Mapped[str] = mapped_column(Hex32)
    declaration_hash: Mapped[str] = mapped_column(Hex32)
    declared_block: Mapped[int] = mapped_column(BigInteger)
    declared_at: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(Hex32)
    decision: Mapped[str] = mapped_column(String(16))
    decision_reason: Mapped[str | None] = mapped_column(String, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(Addr, nullable=True)
    decided_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decided_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ChainEventRow(ChainBase):
    """One raw, decoded log: the replay source of every other table."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("block_hash", "log_index", name="uq_chain_events_block_log"),
        Index("ix_chain_events_order", "block_number", "log_index"),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hex32)
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(Hex32)
    contract: Mapped[str] = mapped_column(String(32))  # issuerRegistry | anchorRegistry | dataFlowLedger
    event: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str | None] = mapped_column(String(160), index=True, nullable=True)
    args: Mapped[dict] = mapped_column(JSON)


class IndexerCheckpoint(ChainBase):
    __tablename__ = "indexer_checkpoint"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(Hex32, nullable=True)


class IndexerBlock(ChainBase):
    """Hashes of recently indexed blocks (page ends and blocks with events), for reorg detection."""

    __tablename__ = "indexer_blocks"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(Hex32)


async def create_chain_tables(engine: AsyncEngine) -> None:
    """Create the chain_* and indexer_* tables if missing (tests, CLI; the service uses Alembic)."""
    async with engine.begin() as conn:
        await conn.run_sync(ChainBase.metadata.create_all)


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChainEvent:
    """A decoded log. `args` holds JSON-ready values: bytes as 0x-hex, addresses EIP-55, ints."""

    block_number: int
    block_hash: str
    block_timestamp: int
    log_index: int
    tx_hash: str
    contract: str
    event: str
    args: dict[str, Any]

    @property
    def entity(self) -> str | None:
        return entity_of(self.event, self.args)

    def row(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "block_timestamp": self.block_timestamp,
            "log_index": self.log_index,
            "tx_hash": self.tx_hash,
            "contract": self.contract,
            "event": self.event,
            "entity": self.entity,
            "args": self.args,
        }

    @classmethod
    def from_row(cls, r: Any) -> ChainEvent:
        return cls(
            r.block_number,
            r.block_hash,
            r.block_timestamp,
            r.log_index,
            r.tx_hash,
            r.contract,
            r.event,
            r.args,
        )


_ISSUER_EVENTS = {
    "IssuerRegistered",
    "CredentialTypeSet",
    "IssuerSuspended",
    "IssuerReinstated",
    "IssuerKeyRotated",
}
# Events that create their entity: a page whose first event for an entity is one of these need not
# load (or delete) any stored row for it.
CREATING_EVENTS = {"IssuerRegistered", "BatchAnchored", "FlowDeclared"}


def entity_of(event: str, args: dict[str, Any]) -> str | None:
    """The projection entity an event changes: `kind:key`; None for events kept only raw."""
    if event in _ISSUER_EVENTS:
        return f"issuer:{args['issuerId']}"
    if event in ("BatchAnchored", "BatchStatusChanged"):
        return f"anchor:{args['root']}"
    if event == "CredentialStatusChanged":
        return f"credential:{args['root']}:{args['leaf']}"
    if event in ("FlowDeclared", "FlowDecided"):
        return f"flow:{args['flowId']}"
    if event == "ParticipantRegistered":
        return f"participant:{args['account']}"
    return None


def jurisdiction(hex8: str) -> str:
    """bytes8 ISO 3166 code (ASCII, right-padded with zero bytes) → "HK"."""
    return bytes.fromhex(hex8[2:]).rstrip(b"\x00").decode("ascii", "replace")


# -- the fold ----------------------------------------------------------------------------------
_TABLES: dict[str, type[ChainBase]] = {
    "issuers": ChainIssuer,
    "issuer_keys": ChainIssuerKey,
    "issuer_types": ChainIssuerType,
    "participants": ChainParticipant,
    "anchors": ChainAnchor,
    "credential_status": ChainCredentialStatus,
    "flows": ChainFlow,
}


@dataclass
class ProjectionState:
    """The projection in memory: table name → primary key → row dict."""

    issuers: dict[int, dict] = field(default_factory=dict)
    issuer_keys: dict[tuple[int, int], dict] = field(default_factory=dict)
    issuer_types: dict[tuple[int, int], dict] = field(default_factory=dict)
    participants: dict[str, dict] = field(default_factory=dict)
    anchors: dict[str, dict] = field(default_factory=dict)
    credential_status: dict[str, dict] = field(default_factory=dict)
    flows: dict[int, dict] = field(default_factory=dict)

    def apply(self, ev: ChainEvent) -> None:
        """Apply one event (in chain order). Unknown / raw-only events are ignored."""
        handler = getattr(self, "_on_" + ev.event, None)
        if handler is not None:
            handler(ev, ev.args)

    def apply_all(self, events: Iterable[ChainEvent]) -> ProjectionState:
        for ev in events:
            self.apply(ev)
        return self

    # issuer registry
    def _on_IssuerRegistered(self, ev: ChainEvent, a: dict) -> None:
        iid = a["issuerId"]
        self.issuers[iid] = {
            "issuer_id": iid,
            "account": a["account"],
            "name": a["name"],
            "uscc": a["uscc"],
            "suite": SUITE[a["suite"]],
            "status": "Active",
            "suspension_reason": 0,
            "active_from": a["activeFrom"],
            "active_until": a["activeUntil"],
            "key_version": 1,
            "registered_block": ev.block_number,
            "registered_at": ev.block_timestamp,
            "tx_hash": ev.tx_hash,
            "updated_block": ev.block_number,
        }
        self.issuer_keys[(iid, 1)] = {
            "issuer_id": iid,
            "key_version": 1,
            "account": a["account"],
            "sm2_public_key": a["sm2PublicKey"],
            "valid_from": ev.block_timestamp,
            "valid_until": 0,
            "block_number": ev.block_number,
        }

    def _on_CredentialTypeSet(self, ev: ChainEvent, a: dict) -> None:
        iid, ct = a["issuerId"], a["credentialType"]
        self.issuer_types[(iid, ct)] = {
            "issuer_id": iid,
            "credential_type": ct,
            "allowed": a["allowed"],
            "block_number": ev.block_number,
        }

    def _on_IssuerSuspended(self, ev: ChainEvent, a: dict) -> None:
        row = self.issuers[a["issuerId"]]
        row.update(status="Suspended", suspension_reason=a["reason"], updated_block=ev.block_number)

    def _on_IssuerReinstated(self, ev: ChainEvent, a: dict) -> None:
        row = self.issuers[a["issuerId"]]
        row.update(status="Active", suspension_reason=0, updated_block=ev.block_number)

    def _on_IssuerKeyRotated(self, ev: ChainEvent, a: dict) -> None:
        iid, version = a["issuerId"], a["keyVersion"]
        row = self.issuers[iid]
        old = self.issuer_keys.get((iid, version - 1))
        if old is not None:
            old["valid_until"] = ev.block_timestamp
        self.issuer_keys[(iid, version)] = {
            "issuer_id": iid,
            "key_version": version,
            "account": a["account"],
            "sm2_public_key": a["sm2PublicKey"],
            "valid_from": ev.block_timestamp,
            "valid_until": 0,
            "block_number": ev.block_number,
        }
        row.update(account=a["account"], key_version=version, updated_block=ev.block_number)

    # anchor registry
    def _on_BatchAnchored(self, ev: ChainEvent, a: dict) -> None:
        self.anchors[a["root"]] = {
            "root": a["root"],
            "issuer_id": a["issuerId"],
            "key_version": a["keyVersion"],
            "credential_type": a["credentialType"],
            "count": a["count"],
            "block_number": ev.block_number,
            "block_timestamp": ev.block_timestamp,
            "tx_hash": ev.tx_hash,
            "log_index": ev.log_index,
            "status": "Valid",
            "reason": 0,
            "status_block": ev.block_number,
        }

    def _on_BatchStatusChanged(self, ev: ChainEvent, a: dict) -> None:
        self.anchors[a["root"]].update(
            status=ANCHOR_STATUS[a["status"]], reason=a["reason"], status_block=ev.block_number
        )

    def _on_CredentialStatusChanged(self, ev: ChainEvent, a: dict) -> None:
        self.credential_status[f"{a['root']}:{a['leaf']}"] = {
            "id": f"{a['root']}:{a['leaf']}",
            "leaf": a["leaf"],
            "root": a["root"],
            "issuer_id": a["issuerId"],
            "status": ANCHOR_STATUS[a["status"]],
            "reason": a["reason"],
            "block": ev.block_number,
            "timestamp": ev.block_timestamp,
        }

    # data-flow ledger
    def _on_ParticipantRegistered(self, ev: ChainEvent, a: dict) -> None:
        self.participants[a["account"]] = {
            "account": a["account"],
            "participant_id": a["participantId"],
            "block_number": ev.block_number,
        }

    def _on_FlowDeclared(self, ev: ChainEvent, a: dict) -> None:
        d = a["declaration"]
        self.flows[a["flowId"]] = {
            "flow_id": a["flowId"],
            "asset_leaf": a["assetLeaf"],
            "asset_root": a["assetRoot"],
            "parent_flow_id": a["parentFlowId"],
            "exporter": a["exporter"],
            "exporter_id": a["exporterId"],
            "importer_id": d["importerId"],
            "from_jurisdiction": jurisdiction(d["fromJurisdiction"]),
            "to_jurisdiction": jurisdiction(d["toJurisdiction"]),
            "legal_basis": LEGAL_BASIS[d["legalBasis"]],
            "personal_information": d["personalInformation"],
            "subjects": d["personalInformationSubjects"],
            "volume": d["volume"],
            "purpose_hash": d["purposeHash"],
            "payload_digest": d["payloadDigest"],
            "declaration_hash": d["declarationHash"],
            "declared_block": ev.block_number,
            "declared_at": ev.block_timestamp,
            "tx_hash": ev.tx_hash,
            "decision": "Pending",
            "decision_reason": None,
            "decided_by": None,
            "decided_at": None,
            "decided_block": None,
        }

    def _on_FlowDecided(self, ev: ChainEvent, a: dict) -> None:
        self.flows[a["flowId"]].update(
            decision=DECISION[a["decision"]],
            decision_reason=a["reason"],
            decided_by=a["regulator"],
            decided_at=ev.block_timestamp,
            decided_block=ev.block_number,
        )

    # views
    def rows_of(self, entity: str) -> dict[str, list[dict]]:
        """The rows (per table) that belong to one entity."""
        kind, key = entity.split(":", 1)
        if kind == "issuer":
            iid = int(key)
            out = {
                "issuers": [self.issuers[iid]] if iid in self.issuers else [],
                "issuer_keys": [r for (i, _), r in self.issuer_keys.items() if i == iid],
                "issuer_types": [r for (i, _), r in self.issuer_types.items() if i == iid],
            }
            return out
        table, k = {
            "anchor": ("anchors", key),
            "credential": ("credential_status", key),
            "flow": ("flows", int(key) if kind == "flow" else key),
            "participant": ("participants", key),
        }[kind]
        row = getattr(self, table).get(k)
        return {table: [row] if row is not None else []}

    def snapshot(self) -> dict[str, list[dict]]:
        """Canonical form: each table's rows sorted by primary key."""
        return {name: [dict(v) for _, v in sorted(getattr(self, name).items())] for name in _TABLES}


# -- persistence -------------------------------------------------------------------------------
_CHUNK = 500


def _chunks(seq: Sequence, n: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _entity_keys(entities: Iterable[str]) -> dict[str, list]:
    by_kind: dict[str, list] = {"issuer": [], "anchor": [], "credential": [], "flow": [], "participant": []}
    for e in entities:
        kind, key = e.split(":", 1)
        by_kind[kind].append(int(key) if kind in ("issuer", "flow") else key)
    return by_kind


# (kind, table name, model, key column)
_KIND_TABLES = (
    ("issuer", "issuers", ChainIssuer, "issuer_id"),
    ("issuer", "issuer_keys", ChainIssuerKey, "issuer_id"),
    ("issuer", "issuer_types", ChainIssuerType, "issuer_id"),
    ("anchor", "anchors", ChainAnchor, "root"),
    ("credential", "credential_status", ChainCredentialStatus, "id"),
    ("flow", "flows", ChainFlow, "flow_id"),
    ("participant", "participants", ChainParticipant, "account"),
)


def _pk(table: str, row: dict) -> Any:
    if table in ("issuer_keys",):
        return (row["issuer_id"], row["key_version"])
    if table == "issuer_types":
        return (row["issuer_id"], row["credential_type"])
    col = {
        "issuers": "issuer_id",
        "participants": "account",
        "anchors": "root",
        "credential_status": "id",
        "flows": "flow_id",
    }[table]
    return row[col]


def _columns(model: type[ChainBase]) -> list[str]:
    return [c.name for c in model.__table__.columns]


async def load_state(
    session: AsyncSession, entities: Iterable[str], state: ProjectionState | None = None
) -> ProjectionState:
    """Load the stored rows of `entities` into a ProjectionState."""
    state = state or ProjectionState()
    keys = _entity_keys(entities)
    for kind, table, model, col in _KIND_TABLES:
        if not keys[kind]:
            continue
        cols = _columns(model)
        target = getattr(state, table)
        for chunk in _chunks(keys[kind]):
            res = await session.execute(select(model.__table__).where(model.__table__.c[col].in_(chunk)))
            for r in res:
                row = {c: getattr(r, c) for c in cols}
                target[_pk(table, row)] = row
    return state


async def delete_entities(session: AsyncSession, entities: Iterable[str]) -> None:
    keys = _entity_keys(entities)
    for kind, _table, model, col in _KIND_TABLES:
        for chunk in _chunks(keys[kind]):
            await session.execute(delete(model.__table__).where(model.__table__.c[col].in_(chunk)))


async def write_entities(session: AsyncSession, state: ProjectionState, entities: Iterable[str]) -> None:
    """Insert the rows of `entities` from `state` (their stored rows must have been deleted)."""
    rows: dict[str, list[dict]] = {name: [] for name in _TABLES}
    for e in entities:
        for table, rs in state.rows_of(e).items():
            rows[table].extend(rs)
    for table, rs in rows.items():
        if rs:
            await session.execute(insert(_TABLES[table].__table__), rs)


async def projection_snapshot(session: AsyncSession, *, include_events: bool = True) -> dict[str, list[dict]]:
    """The stored projection in the canonical form of `ProjectionState.snapshot()`.

    With `include_events`, also the raw events (as `events`, in chain order), so a snapshot
    comparison catches a duplicated or missing log, not only a wrong fold.
    """
    out: dict[str, list[dict]] = {}
    for name, model in _TABLES.items():
        cols = _columns(model)
        res = await session.execute(select(model.__table__))
        rows = [{c: getattr(r, c) for c in cols} for r in res]
        rows.sort(key=lambda r: _pk(name, r))
        out[name] = rows
    if include_events:
        out["events"] = [ev.row() for ev in await load_events(session)]
    return out


async def load_events(session: AsyncSession, *, entities: Sequence[str] | None = None) -> list[ChainEvent]:
    """Stored raw events in chain order, all or only those of `entities`."""
    t = ChainEventRow.__table__
    if entities is None:
        res = await session.execute(select(t).order_by(t.c.block_number, t.c.log_index))
        return [ChainEvent.from_row(r) for r in res]
    out: list[ChainEvent] = []
    for chunk in _chunks(list(entities)):
        res = await session.execute(select(t).where(t.c.entity.in_(chunk)))
        out.extend(ChainEvent.from_row(r) for r in res)
    out.sort(key=lambda e: (e.block_number, e.log_index))
    return out


async def replay_from_events(session: AsyncSession, *, include_events: bool = True) -> dict[str, list[dict]]:
    """The projection rebuilt in memory from `chain_events` alone (the stored tables untouched).

    `await replay_from_events(s) == await projection_snapshot(s)` holds for a consistent store;
    the registry's audit compares its own tables against this.
    """
    events = await load_events(session)
    snap = ProjectionState().apply_all(events).snapshot()
    if include_events:
        snap["events"] = [ev.row() for ev in events]
    return snap


async def rebuild_projection(session: AsyncSession) -> int:
    """Rewrite every projection table from `chain_events` (in the caller's transaction)."""
    events = await load_events(session)
    state = ProjectionState().apply_all(events)
    for model in _TABLES.values():
        await session.execute(delete(model.__table__))
    for name, model in _TABLES.items():
        rows = list(getattr(state, name).values())
        for chunk in _chunks(rows, 5000):
            await session.execute(insert(model.__table__), list(chunk))
    return len(events)
