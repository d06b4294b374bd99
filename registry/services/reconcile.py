"""Reconciliation: the chain (replayed from its events, spot-checked with view calls) against the
registry's own records. Every difference is reported; none is repaired silently.

Compared: each anchored DB batch with the chain's anchor (exists, issuer, type, count, status);
each chain anchor of a registry issuer with a DB batch; each batch's credential count with the
chain's count; each credential's status override with the chain's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import func, select

from ledger_node.indexer import chain_snapshot
from registry.db.models import Batch, Credential, Organisation
from verifier._internal.merkle import leaf_hash

STATUS = {1: "Valid", 2: "Revoked", 3: "Suspended"}


@dataclass
class AuditReport:
    block: int = 0
    anchors_checked: int = 0
    credentials_checked: int = 0
    spot_checked: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    def to_json(self) -> dict:
        return {"clean": self.clean, "block": self.block, "anchorsChecked": self.anchors_checked,
                "credentialsChecked": self.credentials_checked, "spotChecked": self.spot_checked,
                "differences": self.differences}


async def audit(ctx, *, spot: int = 25, seed: int | None = None) -> AuditReport:
    head = await ctx.chain.block_number()
    snap = await chain_snapshot(ctx.rpc_url, ctx.deployment, to_block=head, include_events=False)
    report = AuditReport(block=head)
    diff = report.differences.append
    chain_anchors = {r["root"]: r for r in snap.get("anchors", [])}
    chain_status = {(r["root"], r["leaf"]): r for r in snap.get("credential_status", [])}

    async with ctx.sessions() as s:
        issuers = {org_id: issuer_id for org_id, issuer_id in (await s.execute(
            select(Organisation.id, Organisation.issuer_id).where(Organisation.issuer_id.is_not(None)))).all()}
        ours = set(issuers.values())
        batches = (await s.execute(select(Batch).where(Batch.state == "anchored"))).scalars().all()
        counts = dict((await s.execute(select(Credential.batch_id, func.count()).where(Credential.batch_id.is_not(None))
                                       .group_by(Credential.batch_id))).all())
        db_roots = set()
        for b in batches:
            db_roots.add(b.root)
            report.anchors_checked += 1
            a = chain_anchors.get(b.root)
            if a is None:
                diff(f"batch {b.id}: root {b.root} is anchored in the DB but not on the chain")
                continue
            if a["issuer_id"] != issuers.get(b.issuer_org_id):
                diff(f"batch {b.id}: the chain says issuer {a['issuer_id']}, the DB says {issuers.get(b.issuer_org_id)}")
            if a["count"] != b.count:
                diff(f"batch {b.id}: the chain anchored {a['count']} credentials, the DB batch says {b.count}")
            if counts.get(b.id, 0) != a["count"]:
                diff(f"batch {b.id}: the chain anchored {a['count']} credentials, the DB holds {counts.get(b.id, 0)}")
            if a["credential_type"] != b.credential_type:
                diff(f"batch {b.id}: credential type {a['credential_type']} on the chain, {b.credential_type} in the DB")
            if a["status"] != STATUS.get(b.status):
                diff(f"batch {b.id}: status {a['status']} on the chain, {STATUS.get(b.status)} in the DB")
        for root, a in chain_anchors.items():
            if a["issuer_id"] in ours and root not in db_roots:
                diff(f"chain anchor {root} (issuer {a['issuer_id']}, {a['count']} credentials, block "
                     f"{a['block_number']}) is missing from the DB")

        by_batch = {b.id: b for b in batches}
        rows = (await s.execute(select(Credential.id, Credential.batch_id, Credential.target_hash,
                                       Credential.subject_hash, Credential.status)
                                .where(Credential.batch_id.in_(list(by_batch))))).all() if by_batch else []
        seen_leaves = set()
        for cid, batch_id, target, subject, status in rows:
            report.credentials_checked += 1
            leaf = "0x" + leaf_hash(bytes.fromhex(target[2:]), bytes.fromhex(subject[2:])).hex()
            key = (by_batch[batch_id].root, leaf)
            seen_leaves.add(key)
            c = chain_status.get(key)
            chain_state = c["status"] if c and c["status"] != "None" else "Valid"
            if chain_state != STATUS.get(status):
                diff(f"credential {cid}: status {chain_state} on the chain, {STATUS.get(status)} in the DB")
        for (root, leaf), c in chain_status.items():
            if c["status"] not in ("None", "Valid") and root in db_roots and (root, leaf) not in seen_leaves:
                diff(f"credential leaf {leaf} ({c['status']} on the chain) is missing from the DB")

    # spot-check the event replay itself against the contract's views
    rng = random.Random(seed)
    for root in rng.sample(sorted(chain_anchors), min(spot, len(chain_anchors))):
        view = await ctx.chain.anchor_of(root)
        a = chain_anchors[root]
        report.spot_checked += 1
        if view is None or view["count"] != a["count"] or view["issuerId"] != a["issuer_id"] \
                or STATUS.get(view["status"]) != a["status"]:
            diff(f"anchor {root}: the contract's anchorOf disagrees with its events ({view} vs {a})")
    return report
