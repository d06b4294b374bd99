"""The trace from the chain's events alone — FlowDeclared, FlowDecided and status changes — so a
regulator can check the registry's trace against the ledger (``certledger flow trace
--from-chain``); built by :func:`registry.flows.trace.build_trace` like the DB's."""

from __future__ import annotations

from typing import Any

from registry.flows.schemas import PENDING, hexs
from registry.flows.trace import CertState, FlowRecord, TraceQuery, build_trace
from registry.services import jurisdictions as J


def trace_from_chain(
    rpc_url: str,
    deployment,
    query: TraceQuery,
    *,
    step: int = 5000,
    names: dict[str, tuple[str, str]] | None = None,
) -> dict:
    """The trace from the chain's events alone (FlowDeclared, FlowDecided, status changes). Sync.
    ``names``: participant id → (name, identifier), for a regulator who holds the key the ids are
    keyed with (registry.services.participants.participant_names); without it nodes are bare ids."""
    names = names or {}
    from web3 import HTTPProvider, Web3

    from ledger_node.artifacts import load_artifact

    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    ledger = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.data_flow_ledger), abi=load_artifact("DataFlowLedger").abi
    )
    anchors = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.anchor_registry), abi=load_artifact("AnchorRegistry").abi
    )
    head = w3.eth.block_number
    times: dict[int, int] = {}

    def when(n: int) -> int:
        if n not in times:
            times[n] = int(w3.eth.get_block(n)["timestamp"])
        return times[n]

    def logs(event) -> list:
        out = []
        start = deployment.deploy_block
        while start <= head:
            end = min(head, start + step - 1)
            out += event.get_logs(from_block=start, to_block=end)
            start = end + 1
        return sorted(out, key=lambda e: (e["blockNumber"], e["logIndex"]))

    flows: dict[int, FlowRecord] = {}
    for e in logs(ledger.events.FlowDeclared()):
        a, d = e["args"], e["args"]["declaration"]

        def get(k: str, i: int, d: Any = d) -> Any:
            return d[i] if isinstance(d, (tuple, list)) else d[k]

        fid = int(a["flowId"])
        flows[fid] = FlowRecord(
            flow_id=fid,
            parent_flow_id=int(a["parentFlowId"]),
            asset_leaf=hexs(a["assetLeaf"]),
            asset_root=hexs(a["assetRoot"]),
            exporter_id=hexs(a["exporterId"]),
            importer_id=hexs(get("importerId", 1)),
            from_j=J.from_bytes8(get("fromJurisdiction", 2)),
            to_j=J.from_bytes8(get("toJurisdiction", 3)),
            decision=PENDING,
            declared_at=when(e["blockNumber"]),
            decided_at=None,
            reason=None,
            legal_basis=int(get("legalBasis", 4)),
            personal_information=bool(get("personalInformation", 5)),
            subjects=int(get("personalInformationSubjects", 6)),
            volume=int(get("volume", 7)),
            payload_digest=hexs(get("payloadDigest", 9)),
            declaration_hash=hexs(get("declarationHash", 10)),
            declared_tx=hexs(e["transactionHash"]),
            decided_tx=None,
        )
        record = flows[fid]
        for side, pid in (("exporter", record.exporter_id), ("importer", record.importer_id)):
            if pid in names:
                setattr(record, f"{side}_name", names[pid][0])
                setattr(record, f"{side}_identifier", names[pid][1])
    for e in logs(ledger.events.FlowDecided()):
        f = flows.get(int(e["args"]["flowId"]))
        if f is None:
            continue
        f.decision = int(e["args"]["decision"])
        f.decided_at = when(e["blockNumber"])
        f.reason = e["args"]["reason"]
        f.decided_tx = hexs(e["transactionHash"])
    wanted_leaves = {f.asset_leaf for f in flows.values()}
    wanted_roots = {f.asset_root for f in flows.values()}
    cred_status: dict[str, tuple[int, int]] = {}
    batch_status: dict[str, tuple[int, int]] = {}
    if flows:
        for e in logs(anchors.events.CredentialStatusChanged()):
            leaf = hexs(e["args"]["leaf"])
            if leaf in wanted_leaves:
                cred_status[leaf] = (int(e["args"]["status"]), when(e["blockNumber"]))
        for e in logs(anchors.events.BatchStatusChanged()):
            root = hexs(e["args"]["root"])
            if root in wanted_roots:
                batch_status[root] = (int(e["args"]["status"]), when(e["blockNumber"]))
    certs = {}
    for f in flows.values():
        c, b = cred_status.get(f.asset_leaf, (0, None)), batch_status.get(f.asset_root, (1, None))
        codes = {c[0], b[0]}
        status = "revoked" if 2 in codes else "suspended" if 3 in codes else "valid"
        changed = max((x[1] for x in (c, b) if x[1] is not None and x[0] in (2, 3)), default=None)
        certs[f.asset_leaf] = CertState(status, changed if status != "valid" else None)
    return build_trace(list(flows.values()), certs, query, "chain")
