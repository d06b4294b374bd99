"""Reconciliation: the chain (replayed from its events, spot-checked with view calls) against the
registry's own records. Every difference is reported; none is repaired silently.

Compared: each anchored DB batch with the chain's anchor (exists, issuer, type, count, status);
each chain anchor of a registry issuer with a DB batch; each batch's credential count with the
chain's count; each credential's status override with the chain's.

A status the chain holds and the DB does not (a change made on the chain outside the registry, or a
DB restored from an older backup) is repaired only when the operator asks:
:func:`adopt_chain_status` (``certledger audit --adopt-chain-status``) writes the chain's status,
reason and date into the DB, each with an audit entry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ledger_node.indexer import chain_snapshot
from registry.db.models import Batch, Credential, Organisation
from verifier.issuance import leaf_hash

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

STATUS = {1: "Valid", 2: "Revoked", 3: "Suspended"}
CODES = {name: code for code, name in STATUS.items()}


@dataclass(frozen=True)
class StatusDifference:
    """A credential or batch whose status on the chain is not the DB's."""

    kind: str  # credential | batch
    target: str  # credential id / batch id
    db_status: int
    chain_status: int
    reason: int
    block: int  # of the chain's latest status change (0: none: the chain never changed it)
    timestamp: int  # that block's time (0: not known yet)


@dataclass
class AuditReport:
    block: int = 0
    anchors_checked: int = 0
    credentials_checked: int = 0
    spot_checked: int = 0
    differences: list[str] = field(default_factory=list)
    status_differences: list[StatusDifference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    def to_json(self) -> dict:
        return {
            "clean": self.clean,
            "block": self.block,
            "anchorsChecked": self.anchors_checked,
            "credentialsChecked": self.credentials_checked,
            "spotChecked": self.spot_checked,
            "differences": self.differences,
        }


async def audit(ctx: ServiceContext, *, spot: int = 25, seed: int | None = None) -> AuditReport:
    head = await ctx.chain.block_number()
    snap = await chain_snapshot(ctx.rpc_url, ctx.deployment, to_block=head, include_events=False)
    report = AuditReport(block=head)
    diff = report.differences.append
    chain_anchors = {r["root"]: r for r in snap.get("anchors", [])}
    chain_status = {(r["root"], r["leaf"]): r for r in snap.get("credential_status", [])}

    async with ctx.sessions() as s:
        issuers = {
            org_id: issuer_id
            for org_id, issuer_id in (
                await s.execute(
                    select(Organisation.id, Organisation.issuer_id).where(Organisation.issuer_id.is_not(None))
                )
            ).all()
        }
        ours = set(issuers.values())
        batches = (await s.execute(select(Batch).where(Batch.state == "anchored"))).scalars().all()
        counts = dict(
            (
                await s.execute(
                    select(Credential.batch_id, func.count())
                    .where(Credential.batch_id.is_not(None))
                    .group_by(Credential.batch_id)
                )
            ).all()
        )
        db_roots = set()
        for b in batches:
            db_roots.add(b.root)
            report.anchors_checked += 1
            a = chain_anchors.get(b.root)
            if a is None:
                diff(f"batch {b.id}: root {b.root} is anchored in the DB but not on the chain")
                continue
            if a["issuer_id"] != issuers.get(b.issuer_org_id):
                diff(
                    f"batch {b.id}: the chain says issuer {a['issuer_id']}, the DB says {issuers.get(b.issuer_org_id)}"
                )
            if a["count"] != b.count:
                diff(
                    f"batch {b.id}: the chain anchored {a['count']} credentials, the DB batch says {b.count}"
                )
            if counts.get(b.id, 0) != a["count"]:
                diff(
                    f"batch {b.id}: the chain anchored {a['count']} credentials, the DB holds {counts.get(b.id, 0)}"
                )
            if a["credential_type"] != b.credential_type:
                diff(
                    f"batch {b.id}: credential type {a['credential_type']} on the chain, {b.credential_type} in the DB"
                )
            if a["status"] != STATUS.get(b.status):
                diff(f"batch {b.id}: status {a['status']} on the chain, {STATUS.get(b.status)} in the DB")
                if a["status"] in CODES:
                    report.status_differences.append(
                        StatusDifference(
                            "batch",
                            str(b.id),
                            b.status,
                            CODES[a["status"]],
                            a["reason"],
                            a["status_block"],
                            0,
                        )
                    )
        for root, a in chain_anchors.items():
            if a["issuer_id"] in ours and root not in db_roots:
                diff(
                    f"chain anchor {root} (issuer {a['issuer_id']}, {a['count']} credentials, block "
                    f"{a['block_number']}) is missing from the DB"
                )

        by_batch = {b.id: b for b in batches}
        rows = (
            (
                await s.execute(
                    select(
                        Credential.id,
                        Credential.batch_id,
                        Credential.target_hash,
                        Credential.subject_hash,
                        Credential.status,
                    ).where(Credential.batch_id.in_(list(by_batch)))
                )
            ).all()
            if by_batch
            else []
        )
        seen_leaves = set()
        for cid, batch_id, target, subject, status in rows:
            assert batch_id is not None  # (credentials of the batches above only)
            report.credentials_checked += 1
            leaf = "0x" + leaf_hash(bytes.fromhex(target[2:]), bytes.fromhex(subject[2:])).hex()
            key = (by_batch[batch_id].root, leaf)
            seen_leaves.add(key)
            c = chain_status.get(key)
            chain_state = c["status"] if c and c["status"] != "None" else "Valid"
            if chain_state != STATUS.get(status):
                diff(f"credential {cid}: status {chain_state} on the chain, {STATUS.get(status)} in the DB")
                report.status_differences.append(
                    StatusDifference(
                        "credential",
                        cid,
                        status,
                        CODES[chain_state],
                        c["reason"] if c else 0,
                        c["block"] if c else 0,
                        c["timestamp"] if c else 0,
                    )
                )
        for (root, leaf), c in chain_status.items():
            if c["status"] not in ("None", "Valid") and root in db_roots and (root, leaf) not in seen_leaves:
                diff(f"credential leaf {leaf} ({c['status']} on the chain) is missing from the DB")

    # spot-check the event replay itself against the contract's views
    rng = random.Random(seed)
    for root in rng.sample(sorted(chain_anchors), min(spot, len(chain_anchors))):
        view = await ctx.chain.anchor_of(root)
        a = chain_anchors[root]
        report.spot_checked += 1
        if (
            view is None
            or view["count"] != a["count"]
            or view["issuerId"] != a["issuer_id"]
            or STATUS.get(view["status"]) != a["status"]
        ):
            diff(f"anchor {root}: the contract's anchorOf disagrees with its events ({view} vs {a})")
    return report


async def adopt_chain_status(
    ctx: ServiceContext, report: AuditReport, *, request_id: str = "audit"
) -> tuple[list[str], list[str]]:
    """Write the chain's status into the DB for each of ``report``'s status differences: the
    chain's status, reason and date, with an audit entry (actor ``certledger audit``, marked
    ``settledFromChain``). Skipped: a difference a pending change of the registry explains (the
    settler records it once mined), and a row that changed since the audit read it.

    Returns (adopted, skipped), each as "credential ID: …" / "batch ID: …" lines."""
    from registry.services.lifecycle import adopt_status, forget_verifier, pending_tx

    adopted: list[str] = []
    skipped: list[str] = []
    for d in report.status_differences:
        label = f"{d.kind} {d.target}"
        when = d.timestamp
        if not when and d.block:
            when = await ctx.chain.block_timestamp(d.block)
        async with ctx.sessions() as s, s.begin():
            pending = await pending_tx(s, d.kind, d.target)
            if pending is not None:
                skipped.append(
                    f"{label}: a change sent by the registry (transaction {pending}) is not mined yet; "
                    "the registry records it once it is"
                )
                continue
            model = Credential if d.kind == "credential" else Batch
            key = d.target if d.kind == "credential" else int(d.target)
            row = (
                await s.execute(
                    select(model.status, model.issuer_org_id).where(model.id == key).with_for_update()
                )
            ).first()
            if row is None or row.status != d.db_status:
                skipped.append(f"{label}: it changed in the DB since the audit read it; audit again")
                continue
            await adopt_status(
                s,
                d.kind,
                d.target,
                d.chain_status,
                d.reason,
                datetime.fromtimestamp(when, UTC) if when else None,
                org_id=row.issuer_org_id,
                request_id=request_id,
            )
        adopted.append(
            f"{label}: {STATUS[d.db_status]} → {STATUS[d.chain_status]} (reason {d.reason}, "
            f"block {d.block or 'none'})"
        )
    if adopted:
        forget_verifier(ctx)
    return adopted, skipped
