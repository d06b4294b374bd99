"""The Guangzhou scenario end to end: certificate → flows CN-GD → HK (approved), HK → SG onward
(approved), CN-GD → MO (rejected), an onward MO → PT declared while its parent was pending and the
parent then rejected, an onward of the rejected flow refused outright, the certificate revoked —
the trace reports exactly the expected violations, in JSON, CSV and SVG, and the trace rebuilt from
chain events alone equals the DB's."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from registry.flows import chain_trace as flow_chain
from registry.flows import trace as flow_trace
from tests.support.flows import ARTIFACTS, PT, run_scenario

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def test_guangzhou_scenario(world):
    w, s = world, world.service
    ids = await run_scenario(w)
    f1, f2, f3, f4 = ids["f1"], ids["f2"], ids["f3"], ids["f4"]

    # the chain refuses the onward transfer of the rejected flow too (signed with MO's own key)
    from registry.core.errors import ChainRejected
    from registry.services.orgs import signing_key

    async with s.ctx.sessions() as sess:
        _, mo_key, _ = await signing_key(sess, w.mo["id"], s.ctx.settings.passphrase())
    flow3 = await s.ctx.chain.call(s.ctx.chain.flows.functions.flow(f3))
    with pytest.raises(ChainRejected) as exc:
        await s.ctx.chain.transact(
            mo_key,
            s.ctx.chain.flows.functions.declareFlow(
                (
                    f3,
                    b"\1" * 32,
                    b"MO".ljust(8, b"\0"),
                    b"PT".ljust(8, b"\0"),
                    3,
                    False,
                    0,
                    1,
                    b"\2" * 32,
                    b"\3" * 32,
                    b"\4" * 32,
                ),
                (flow3[1], b"\0" * 32, b"\0" * 32, []),
            ),
        )
    assert exc.value.details["error"] in ("ParentFlowRejected", "AssetNotValid")

    r = await s.client.get("/v1/flows/trace", headers=w.h(w.regulator_key), params={"asset": w.credential_id})
    assert r.status_code == 200, r.text
    trace = r.json()
    edges = {e["flowId"]: e for e in trace["edges"]}
    assert sorted(edges) == [f1, f2, f3, f4]
    assert [edges[i]["status"] for i in (f1, f2, f3, f4)] == ["approved", "approved", "rejected", "pending"]
    assert (edges[f1]["fromJurisdiction"], edges[f1]["toJurisdiction"]) == ("CN-GD", "HK")
    assert edges[f2]["parentFlowId"] == f1 and edges[f4]["parentFlowId"] == f3
    got = sorted((v["flowId"], v["kind"]) for v in trace["violations"])
    assert got == sorted(
        [
            (f1, "certificate_revoked"),
            (f2, "certificate_revoked"),
            (f2, "payload_digest_mismatch"),
            (f4, "parent_rejected"),
        ]
    ), trace["violations"]
    revoked = [v for v in trace["violations"] if v["kind"] == "certificate_revoked"]
    assert all(v["details"]["afterApproval"] for v in revoked)
    assert {n["name"] for n in trace["nodes"]} == {
        w.gz["name"],
        w.hk["name"],
        w.sg["name"],
        w.mo["name"],
        PT["name"],
    }
    pairs = {(t["from"], t["to"]): t for t in trace["totals"]}
    assert set(pairs) == {("CN-GD", "HK"), ("HK", "SG"), ("CN-GD", "MO"), ("MO", "PT")}
    assert pairs[("CN-GD", "MO")]["rejected"] == 1 and pairs[("CN-GD", "HK")]["approved"] == 1

    # filters: an organisation, a jurisdiction, a time window
    r = await s.client.get(
        "/v1/flows/trace", headers=w.h(w.regulator_key), params={"organisation": w.hk["identifier"]}
    )
    assert sorted(e["flowId"] for e in r.json()["edges"]) == [f1, f2]
    r = await s.client.get(
        "/v1/flows/trace", headers=w.h(w.regulator_key), params={"organisation": str(w.mo["id"])}
    )
    assert sorted(e["flowId"] for e in r.json()["edges"]) == [f3, f4]
    r = await s.client.get("/v1/flows/trace", headers=w.h(w.regulator_key), params={"jurisdiction": "SG"})
    assert [e["flowId"] for e in r.json()["edges"]] == [f2]
    r = await s.client.get("/v1/flows/trace", headers=w.h(w.regulator_key), params={"jurisdiction": "CN"})
    assert sorted(e["flowId"] for e in r.json()["edges"]) == [f1, f3]
    r = await s.client.get(
        "/v1/flows/trace", headers=w.h(w.regulator_key), params={"from": "2000-01-01", "to": "2000-12-31"}
    )
    assert r.json()["edges"] == [] and r.json()["violations"] == []

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # JSON export
    r = await s.client.get(
        "/v1/flows/trace", headers=w.h(w.regulator_key), params={"asset": w.credential_id, "format": "json"}
    )
    (ARTIFACTS / "scenario-trace.json").write_text(r.text)
    assert sorted((v["flowId"], v["kind"]) for v in json.loads(r.text)["violations"]) == got
    # CSV export: flows and violations
    r = await s.client.get(
        "/v1/flows/trace", headers=w.h(w.regulator_key), params={"asset": w.credential_id, "format": "csv"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    (ARTIFACTS / "scenario-flows.csv").write_text(r.text)
    rows = {int(row["flowId"]): row for row in csv.DictReader(io.StringIO(r.text))}
    assert rows[f2]["violations"] == "certificate_revoked;payload_digest_mismatch"
    assert rows[f4]["violations"] == "parent_rejected" and rows[f3]["violations"] == ""
    assert rows[f3]["status"] == "rejected" and rows[f3]["decisionReason"].startswith(
        "no security assessment"
    )
    r = await s.client.get(
        "/v1/flows/trace",
        headers=w.h(w.regulator_key),
        params={"asset": w.credential_id, "format": "csv", "table": "violations"},
    )
    vrows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted((int(v["flowId"]), v["kind"]) for v in vrows) == got
    # SVG export: a well-formed graph, violations in red, each edge links to its transaction
    r = await s.client.get(
        "/v1/flows/trace", headers=w.h(w.regulator_key), params={"asset": w.credential_id, "format": "svg"}
    )
    assert r.headers["content-type"].startswith("image/svg+xml")
    (ARTIFACTS / "scenario-graph.svg").write_text(r.text)
    root = ET.fromstring(r.text)
    ns = {"s": "http://www.w3.org/2000/svg"}
    links = root.findall(".//s:a", ns)
    assert len(links) == 4
    by_flow = {int(a.get("data-flow-id")): a for a in links}
    assert {i for i, a in by_flow.items() if a.get("data-violation") == "1"} == {f1, f2, f4}
    assert by_flow[f1].get("href") == f"/trace/tx/{edges[f1]['declaredTx']}"
    assert by_flow[f3].get("data-status") == "rejected"
    assert len(root.findall(".//s:g[@class='node']", ns)) == 5

    # the trace from chain events alone equals the DB's (on what the chain knows)
    leaf = edges[f1]["assetLeaf"]
    db_trace = (
        await s.client.get("/v1/flows/trace", headers=w.h(w.regulator_key), params={"asset": leaf})
    ).json()
    q = flow_trace.make_query(asset=leaf, organisation=None, jurisdiction_code=None, since=None, until=None)
    chain_trace = await asyncio.to_thread(flow_chain.trace_from_chain, s.ctx.rpc_url, s.ctx.deployment, q)
    assert flow_trace.chain_view(chain_trace) == flow_trace.chain_view(db_trace)
    assert sorted((v["flowId"], v["kind"]) for v in chain_trace["violations"]) == sorted(
        [(f1, "certificate_revoked"), (f2, "certificate_revoked"), (f4, "parent_rejected")]
    )
    from registry.services.participants import participant_ids

    async with s.ctx.sessions() as session:
        ids = await participant_ids(session)
    for filters in ({"organisation": w.hk["identifier"]}, {"jurisdiction": "CN"}, {}):
        db = (await s.client.get("/v1/flows/trace", headers=w.h(w.regulator_key), params=filters)).json()
        q = flow_trace.make_query(
            asset=None,
            organisation=filters.get("organisation"),
            jurisdiction_code=filters.get("jurisdiction"),
            since=None,
            until=None,
            ids=ids,  # the regulator holds the key: an identifier finds its keyed participant id
        )
        ch = await asyncio.to_thread(flow_chain.trace_from_chain, s.ctx.rpc_url, s.ctx.deployment, q)
        assert flow_trace.chain_view(ch) == flow_trace.chain_view(db), filters

    # and through the CLI: `certledger flow trace --from-chain`, JSON to stdout, CSV and SVG to files
    from typer.testing import CliRunner

    from registry.cli.flow import flow_app

    common = [
        "trace",
        "--from-chain",
        "--rpc-url",
        s.ctx.rpc_url,
        "--deployment",
        str(s.ctx.settings.manifest_path),
    ]
    res = await asyncio.to_thread(CliRunner().invoke, flow_app, common + ["--asset", leaf])
    assert res.exit_code == 0, res.output
    assert flow_trace.chain_view(json.loads(res.stdout)) == flow_trace.chain_view(db_trace)
    # the regulator holds the key (the registry's database): the chain's participants get their names,
    # the DB trace's names; without the database they are bare ids, and the command says so
    named = await asyncio.to_thread(
        CliRunner().invoke,
        flow_app,
        common + ["--asset", leaf, "--organisation", w.hk["identifier"]],
        env={"CERTLEDGER_DATABASE_URL": s.ctx.settings.resolved_database_url},
    )
    assert named.exit_code == 0, named.output
    by_id = {n["id"]: n for n in json.loads(named.stdout)["nodes"]}
    db_named = (
        await s.client.get(
            "/v1/flows/trace",
            headers=w.h(w.regulator_key),
            params={"asset": leaf, "organisation": w.hk["identifier"]},
        )
    ).json()
    assert {n["id"]: (n["name"], n["identifier"]) for n in db_named["nodes"]} == {
        i: (n["name"], n["identifier"]) for i, n in by_id.items()
    }
    assert w.hk["identifier"] in {n["identifier"] for n in by_id.values()}
    assert "on-chain ids only" in res.stderr
    res = await asyncio.to_thread(
        CliRunner().invoke,
        flow_app,
        common
        + [
            "--asset",
            leaf,
            "--format",
            "csv",
            "--table",
            "violations",
            "--out",
            str(ARTIFACTS / "chain-violations.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    chain_rows = list(csv.DictReader(io.StringIO((ARTIFACTS / "chain-violations.csv").read_text())))
    assert sorted((int(v["flowId"]), v["kind"]) for v in chain_rows) == sorted(
        [(f1, "certificate_revoked"), (f2, "certificate_revoked"), (f4, "parent_rejected")]
    )
    res = await asyncio.to_thread(
        CliRunner().invoke,
        flow_app,
        common + ["--format", "svg", "--out", str(ARTIFACTS / "chain-graph.svg")],
    )
    assert res.exit_code == 0 and ET.parse(ARTIFACTS / "chain-graph.svg").getroot().tag.endswith("svg")
    res = await asyncio.to_thread(CliRunner().invoke, flow_app, common + ["--asset", w.credential_id])
    assert res.exit_code == 2 and "leaf" in res.output
    res = await asyncio.to_thread(CliRunner().invoke, flow_app, common + ["--jurisdiction", "XX"])
    assert res.exit_code == 2 and "not a known jurisdiction" in res.output

    # participants are private on-chain: a dictionary of every credit code finds none of them
    await _a_dictionary_of_credit_codes_reveals_no_participant(w)


async def _a_dictionary_of_credit_codes_reveals_no_participant(w) -> None:
    """Issue #21 point 5, on the scenario's flows: every id the chain shows (participant
    registrations, exporter and importer ids of each flow, the certificate subjectHash in each
    declaration's calldata) is the keyed commitment (FORMAT.md §1, §11). keccak256 of every
    identifier the registry knows (a dictionary of all of them, as an outsider could build from
    public credit codes) matches none of them, and nothing in the calldata; the regulator's key
    maps every one back."""
    from eth_utils import keccak
    from sqlalchemy import select

    from registry.db.models import FlowDeclaration, Organisation
    from registry.services.participants import participant_ids

    s = w.service
    async with s.ctx.sessions() as session:
        ids = await participant_ids(session)
        identifiers = set((await session.execute(select(Organisation.identifier))).scalars())
        for d in (await session.execute(select(FlowDeclaration.declaration))).scalars():
            identifiers |= {d["exporter"]["identifier"], d["importer"]["identifier"]}
    dictionary = {bytes(keccak(text=i)): i for i in identifiers}
    keyed = {ids.id(i): i for i in identifiers}

    ledger, chain = s.ctx.chain.flows, s.ctx.chain
    head = await chain.w3.eth.block_number
    start = s.ctx.deployment.deploy_block
    registered = await ledger.events.ParticipantRegistered().get_logs(from_block=start, to_block=head)
    declared = await ledger.events.FlowDeclared().get_logs(from_block=start, to_block=head)
    assert registered and declared
    on_chain = {bytes(e["args"]["participantId"]) for e in registered}
    for e in declared:
        on_chain |= {bytes(e["args"]["exporterId"]), bytes(e["args"]["declaration"]["importerId"])}
    assert not on_chain & dictionary.keys()
    assert on_chain <= keyed.keys(), "every on-chain id is a known participant's keyed id"
    assert {keyed[i] for i in on_chain} >= {w.gz["identifier"], w.hk["identifier"]}
    for e in declared:
        calldata = bytes((await chain.w3.eth.get_transaction(e["transactionHash"]))["input"])
        assert not any(h in calldata for h in dictionary), "a bare hash of a credit code in calldata"
        if e["args"]["parentFlowId"] == 0:  # an original flow: the certificate's subjectHash, keyed
            assert bytes(e["args"]["exporterId"]) in calldata
