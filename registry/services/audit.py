"""Append-only, hash-chained audit log of every write.

entry_hash = sha256(prev_hash_hex ‖ JCS({at, org_id, actor, action, target, request_id, details})).
Appends serialise on the chain's head: on PostgreSQL a transaction-scoped advisory lock, on
SQLite the database's single writer. `verify_chain` recomputes every link.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import rfc8785
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.models import AuditEntry

GENESIS = "0" * 64
_AUDIT_LOCK = 0x63657274  # "cert"


def _entry_hash(prev: str, fields: dict) -> str:
    return hashlib.sha256(prev.encode() + rfc8785.dumps(fields)).hexdigest()


def _fields(
    at: datetime, org_id: int | None, actor: str, action: str, target: str, request_id: str, details: dict
) -> dict:
    return {
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "org_id": org_id,
        "actor": actor,
        "action": action,
        "target": target,
        "request_id": request_id,
        "details": details,
    }


async def append(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str,
    request_id: str,
    org_id: int | None = None,
    details: dict | None = None,
) -> AuditEntry:
    """Add an entry in the caller's transaction (so the write and its audit commit together)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK})
    prev = (
        await session.execute(select(AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1))
    ).scalar()
    prev = prev or GENESIS
    at = datetime.now(UTC)
    details = details or {}
    entry = AuditEntry(
        at=at,
        org_id=org_id,
        actor=actor,
        action=action,
        target=target,
        request_id=request_id,
        details=details,
        prev_hash=prev,
        entry_hash=_entry_hash(prev, _fields(at, org_id, actor, action, target, request_id, details)),
    )
    session.add(entry)
    await session.flush()
    return entry


async def verify_chain(session: AsyncSession) -> tuple[bool, int, str]:
    """(ok, entries checked, message). Detects an edited, removed or inserted entry."""
    prev = GENESIS
    n = 0
    for e in (await session.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars():
        fields = _fields(
            e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC),
            e.org_id,
            e.actor,
            e.action,
            e.target,
            e.request_id,
            e.details,
        )
        if e.prev_hash != prev or _entry_hash(prev, fields) != e.entry_hash:
            return False, n, f"audit entry {e.seq} does not match the chain"
        prev = e.entry_hash
        n += 1
    return True, n, "audit chain intact"
