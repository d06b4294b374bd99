"""The trace: flows (edges) between participants, totals per jurisdiction pair, violations — built
from the registry's DB (:func:`trace_from_db`) or from chain events alone
(:func:`registry.flows.chain_trace.trace_from_chain`), as pure functions over :class:`FlowRecord`
and :class:`CertState` (:func:`build_trace`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from registry.core.errors import (
    BadRequest,
    NotFound,
)
from registry.db.models import Batch, Credential, FlowDeclaration, Organisation, unix_time
from registry.flows import assess, rules
from registry.flows.ledger import status_name, validity_window
from registry.flows.schemas import (
    APPROVED,
    DECISION_NAMES,
    LEGAL_BASES,
    LEGAL_BASIS_NAMES,
    PENDING,
    REJECTED,
    authorised,
    hexs,
    iso,
    jurisdiction,
    parse_time,
)
from registry.services import jurisdictions as J
from registry.services.issuance import document_of
from registry.services.participants import ParticipantIds, participant_ids


# -- trace -------------------------------------------------------------------------------------
@dataclass
class FlowRecord:
    flow_id: int
    parent_flow_id: int
    asset_leaf: str
    asset_root: str
    exporter_id: str
    importer_id: str
    from_j: str
    to_j: str
    decision: int
    declared_at: int
    decided_at: int | None
    reason: str | None
    legal_basis: int
    personal_information: bool
    subjects: int
    volume: int
    payload_digest: str
    declaration_hash: str
    declared_tx: str
    decided_tx: str | None
    # registry-only enrichment (None from the chain)
    credential_id: str | None = None
    exporter_name: str | None = None
    exporter_identifier: str | None = None
    importer_name: str | None = None
    importer_identifier: str | None = None
    purpose: str | None = None
    categories: list[str] | None = None
    received_digest: str | None = None
    authorised: bool | None = None
    within_validity: bool | None = None


@dataclass
class CertState:
    status: str  # valid | revoked | suspended
    changed_at: int | None = None


@dataclass
class TraceQuery:
    asset: str | None = None  # asset leaf (0x…)
    organisation: str | None = None  # participant id (0x…)
    jurisdiction: str | None = None
    since: int | None = None
    until: int | None = None
    labels: dict = field(default_factory=dict)  # as the caller gave them, for the report

    def matches(self, f: FlowRecord) -> bool:
        if self.asset and f.asset_leaf != self.asset:
            return False
        if self.organisation and self.organisation not in (f.exporter_id, f.importer_id):
            return False
        if self.jurisdiction and not (
            J.covers(self.jurisdiction, f.from_j) or J.covers(self.jurisdiction, f.to_j)
        ):
            return False
        if self.since is not None and f.declared_at < self.since:
            return False
        if self.until is not None and f.declared_at > self.until:
            return False
        return True


def make_query(
    *,
    asset: str | None,
    organisation: str | None,
    jurisdiction_code: str | None,
    since: str | None,
    until: str | None,
    ids: ParticipantIds | None = None,
) -> TraceQuery:
    """Validate the filters. `asset` must be a leaf here; `organisation` a participant id, or an
    identifier given with the deployment's keyed ids (``ids``; FORMAT.md §11: an id is not a bare
    hash of the identifier)."""
    q = TraceQuery(
        labels={
            "asset": asset,
            "organisation": organisation,
            "jurisdiction": jurisdiction_code,
            "from": since,
            "to": until,
        }
    )
    if asset:
        if not is_hash(asset):
            raise BadRequest(f"asset must be a certificate id or its leaf (0x + 64 hex), not {asset!r}")
        q.asset = asset.lower()
    if organisation:
        if is_hash(organisation):
            q.organisation = organisation.lower()
        elif ids is not None:
            q.organisation = ids.hex(organisation)
        else:
            raise BadRequest(
                "an organisation given by its identifier needs the registry's subject-salt key "
                "(participant ids are keyed): give its participant id (0x + 64 hex) instead"
            )
    if jurisdiction_code:
        q.jurisdiction = jurisdiction(jurisdiction_code, "jurisdiction")
    q.since = parse_time(since, "from")
    q.until = parse_time(until, "to", end=True)
    if q.since is not None and q.until is not None and q.since > q.until:
        raise BadRequest("the time window is empty: from is after to")
    return q


def is_hash(v: str) -> bool:
    return len(v) == 66 and v[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in v[2:])


def build_trace(
    flows: list[FlowRecord],
    certs: dict[str, CertState],
    query: TraceQuery,
    source: str,
    rule_flows: list[assess.RuleFlow] | None = None,
) -> dict:
    by_id = {f.flow_id: f for f in flows}
    violations: list[dict] = []
    # the rule tables (registry only: the chain holds no sensitivity, CIIO or classification facts)
    table = rules.load()
    findings, problems, exporter_totals = assess.rule_violations(table, rule_flows or [], assess.now_unix())
    for fid, kind, message, details in problems:
        if fid in by_id:
            violations.append(_violation(by_id[fid], kind, "registry", message, details))
    for f in flows:
        if f.decision == APPROVED:
            cs = certs.get(f.asset_leaf)
            if cs and cs.status in ("revoked", "suspended"):
                after = (
                    cs.changed_at is not None and f.decided_at is not None and cs.changed_at >= f.decided_at
                )
                violations.append(
                    _violation(
                        f,
                        f"certificate_{cs.status}",
                        "chain",
                        f"flow {f.flow_id} was approved, but its asset certificate is {cs.status}"
                        + (" (since after the approval)" if after else ""),
                        {
                            "certificateStatus": cs.status,
                            "changedAt": iso(cs.changed_at),
                            "afterApproval": after,
                        },
                    )
                )
        if f.parent_flow_id and f.decision != REJECTED:
            p = by_id.get(f.parent_flow_id)
            if p is not None and p.decision == REJECTED:
                violations.append(
                    _violation(
                        f,
                        "parent_rejected",
                        "chain",
                        f"onward transfer {f.flow_id} is {DECISION_NAMES[f.decision]}, but its parent flow "
                        f"{p.flow_id} was rejected after it was declared",
                        {"parentFlowId": p.flow_id, "parentDecidedAt": iso(p.decided_at), "reason": p.reason},
                    )
                )
        if f.authorised is False and f.decision != REJECTED:
            violations.append(
                _violation(
                    f,
                    "destination_not_authorised",
                    "registry",
                    f"flow {f.flow_id} to {f.to_j} for {f.purpose!r} is outside the certificate's authorised uses",
                    {"toJurisdiction": f.to_j, "purpose": f.purpose},
                )
            )
        if f.within_validity is False and f.decision != REJECTED:
            violations.append(
                _violation(
                    f,
                    "certificate_expired",
                    "registry",
                    f"flow {f.flow_id} was declared outside its certificate's validity",
                    {},
                )
            )
        if f.received_digest is not None and f.received_digest != f.payload_digest:
            violations.append(
                _violation(
                    f,
                    "payload_digest_mismatch",
                    "registry",
                    f"the importer of flow {f.flow_id} received a payload whose digest is not the declared one",
                    {"declared": f.payload_digest, "received": f.received_digest},
                )
            )
    selected = sorted((f for f in flows if query.matches(f)), key=lambda f: f.flow_id)
    ids = {f.flow_id for f in selected}
    violations = [v for v in violations if v["flowId"] in ids]
    per_flow: dict[int, list[str]] = {}
    for v in violations:
        per_flow.setdefault(v["flowId"], []).append(v["kind"])

    nodes: dict[str, dict] = {}

    def node(pid: str, name: str | None, identifier: str | None, j: str) -> None:
        n = nodes.setdefault(pid, {"id": pid, "name": name, "identifier": identifier, "jurisdictions": []})
        if n["name"] is None and name:
            n["name"], n["identifier"] = name, identifier
        if j not in n["jurisdictions"]:
            n["jurisdictions"].append(j)

    edges = []
    totals: dict[tuple[str, str], dict] = {}
    for f in selected:
        node(f.exporter_id, f.exporter_name, f.exporter_identifier, f.from_j)
        node(f.importer_id, f.importer_name, f.importer_identifier, f.to_j)
        edges.append(
            {
                "flowId": f.flow_id,
                "parentFlowId": f.parent_flow_id or None,
                "from": f.exporter_id,
                "to": f.importer_id,
                "fromJurisdiction": f.from_j,
                "toJurisdiction": f.to_j,
                "status": DECISION_NAMES[f.decision],
                "declaredAt": iso(f.declared_at),
                "decidedAt": iso(f.decided_at),
                "decisionReason": f.reason,
                "legalBasis": LEGAL_BASIS_NAMES.get(f.legal_basis, str(f.legal_basis)),
                "personalInformation": f.personal_information,
                "personalInformationSubjects": f.subjects,
                "volume": f.volume,
                "payloadDigest": f.payload_digest,
                "declarationHash": f.declaration_hash,
                "assetLeaf": f.asset_leaf,
                "assetRoot": f.asset_root,
                "declaredTx": f.declared_tx,
                "decidedTx": f.decided_tx,
                "violations": per_flow.get(f.flow_id, []),
                "credentialId": f.credential_id,
                "exporterName": f.exporter_name,
                "importerName": f.importer_name,
                "purpose": f.purpose,
                "dataCategories": f.categories,
                "receivedDigest": f.received_digest,
                "rule": findings.get(f.flow_id),
            }
        )
        t = totals.setdefault(
            (f.from_j, f.to_j),
            {
                "from": f.from_j,
                "to": f.to_j,
                "flows": 0,
                "approved": 0,
                "pending": 0,
                "rejected": 0,
                "volume": 0,
            },
        )
        t["flows"] += 1
        t[DECISION_NAMES[f.decision]] += 1
        t["volume"] += f.volume
    for n in nodes.values():
        n["jurisdictions"].sort()
    return {
        "source": source,
        "query": {k: v for k, v in query.labels.items() if v},
        "generatedAt": iso(int(datetime.now(UTC).timestamp())),
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "edges": edges,
        "totals": sorted(totals.values(), key=lambda t: (t["from"], t["to"])),
        "violations": violations,
        "rules": {"table": table.id, "version": table.version},
        "exporterTotals": [t for t in exporter_totals if t["exporter"] in nodes],
    }


def _violation(f: FlowRecord, kind: str, source: str, message: str, details: dict) -> dict:
    return {"flowId": f.flow_id, "kind": kind, "source": source, "message": message, "details": details}


CHAIN_EDGE_FIELDS = (
    "flowId",
    "parentFlowId",
    "from",
    "to",
    "fromJurisdiction",
    "toJurisdiction",
    "status",
    "declaredAt",
    "decidedAt",
    "decisionReason",
    "legalBasis",
    "personalInformation",
    "personalInformationSubjects",
    "volume",
    "payloadDigest",
    "declarationHash",
    "assetLeaf",
    "assetRoot",
    "declaredTx",
    "decidedTx",
)


def chain_view(trace: dict) -> dict:
    """What the chain alone knows of a trace: the DB's trace and the chain's must agree on it."""
    return {
        "nodes": sorted(
            ({"id": n["id"], "jurisdictions": n["jurisdictions"]} for n in trace["nodes"]),
            key=lambda n: n["id"],
        ),
        "edges": [{k: e[k] for k in CHAIN_EDGE_FIELDS} for e in trace["edges"]],
        "totals": trace["totals"],
        "violations": sorted((v["flowId"], v["kind"]) for v in trace["violations"] if v["source"] == "chain"),
    }


async def resolve_asset(ctx, asset: str | None) -> str | None:
    """A certificate id → its leaf (a leaf passes through)."""
    if not asset or is_hash(asset):
        return asset
    from verifier.issuance import leaf_hash

    async with ctx.sessions() as s:
        cred = await s.get(Credential, asset)
    if cred is None:
        raise NotFound(f"no asset certificate {asset}", details={"asset": asset})
    return hexs(leaf_hash(bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])))


async def resolve_organisation(ctx, organisation: str | None) -> str | None:
    """An organisation id (digits) or identifier → its participant id (0x-hex, keyed: FORMAT.md
    §11); a participant id passes through."""
    if not organisation or is_hash(organisation):
        return organisation
    async with ctx.sessions() as s:
        if organisation.isdigit() and len(organisation) < 10:
            org = await s.get(Organisation, int(organisation))
            if org is None:
                raise NotFound(f"organisation {organisation} does not exist")
            organisation = org.identifier
        return (await participant_ids(s)).hex(organisation)


async def trace_from_db(ctx, query: TraceQuery) -> dict:
    async with ctx.sessions() as s:
        rows = (
            await s.execute(
                select(FlowDeclaration, Credential, Batch)
                .join(Credential, Credential.id == FlowDeclaration.credential_id)
                .join(Batch, Batch.id == Credential.batch_id)
                .where(FlowDeclaration.flow_id.is_not(None))
                .order_by(FlowDeclaration.flow_id)
            )
        ).all()
        ids = await participant_ids(s)
    flows, certs = [], {}
    rule_flows: list[assess.RuleFlow] = []
    docs: dict[str, dict] = {}
    for r, cred, batch in rows:
        d = r.declaration
        doc = docs.get(cred.id) or docs.setdefault(cred.id, document_of(cred, ctx.deployment))
        declared = unix_time(r.declared_at)
        vf, vu = validity_window(doc)
        flows.append(
            FlowRecord(
                flow_id=r.flow_id,
                parent_flow_id=r.parent_flow_id or 0,
                asset_leaf=r.asset_leaf,
                asset_root=batch.root,
                exporter_id=ids.hex(d["exporter"]["identifier"]),
                importer_id=ids.hex(d["importer"]["identifier"]),
                from_j=d["fromJurisdiction"],
                to_j=d["toJurisdiction"],
                decision=r.decision,
                declared_at=declared,
                decided_at=unix_time(r.decided_at),
                reason=r.decision_reason,
                legal_basis=LEGAL_BASES[d["legalBasis"]],
                personal_information=d["personalInformation"],
                subjects=d["personalInformationSubjects"],
                volume=d["volume"],
                payload_digest=d["payloadDigest"],
                declaration_hash=r.declaration_hash,
                declared_tx=r.tx_hash,
                decided_tx=r.decision_tx,
                credential_id=cred.id,
                exporter_name=d["exporter"]["name"],
                exporter_identifier=d["exporter"]["identifier"],
                importer_name=d["importer"]["name"],
                importer_identifier=d["importer"]["identifier"],
                purpose=d["purpose"],
                categories=d["dataCategories"],
                received_digest=r.received_digest,
                authorised=authorised(
                    doc["credentialSubject"],
                    d["toJurisdiction"],
                    d["purpose"],
                    d["importer"]["identifier"],
                    declared,
                ),
                within_validity=not (
                    (vf is not None and declared < vf) or (vu is not None and declared >= vu)
                ),
            )
        )
        certs[r.asset_leaf] = CertState(
            status_name(cred, batch), unix_time(cred.status_changed_at) if cred.status != 1 else None
        )
        rule_flows.append(
            assess.from_declaration(
                r.flow_id,
                flows[-1].exporter_id,
                d,
                declared,
                r.decision == REJECTED,
                r.decision == PENDING,
                d.get("classificationLevel", doc["credentialSubject"].get("classificationLevel")),
                J.customs_area(d["fromJurisdiction"]) == "CN",
            )
        )
    return build_trace(flows, certs, query, "registry", rule_flows)
