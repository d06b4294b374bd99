"""The 2024 rules end to end on a real registry (SQLite and PostgreSQL) and a real anvil: exempt
personal information approved, a 1.2-million-people split into four standard-contract flows, a
GBA contract never filed, an expired security assessment; core data, important data and a CIIO
refused; the exact set of violations in the JSON, CSV and SVG exports (FORMAT.md §11.2)."""

from __future__ import annotations

import csv
import io
import re

import pytest

from scripts.samples import make_uscc
from tests.support.flows import certificate_record, declaration

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def certificate(s, authority_key, uscc, level="general"):
    rec = certificate_record(uscc)
    rec["credentialSubject"]["classificationLevel"] = level
    r = await s.client.post(
        "/v1/credentials", headers=s.h(authority_key), json={"type": "DataAssetCertificate", "record": rec}
    )
    assert r.status_code == 202, r.text
    await s.drain()
    return r.json()["id"]


async def declare(s, key, body, status=201):
    r = await s.client.post("/v1/flows", headers=s.h(key), json=body)
    assert r.status_code == status, r.text
    return r.json() if status == 201 else r.json()["error"]


def pi(n, basis="standard-contract", **over):
    return {"personalInformation": True, "personalInformationSubjects": n, "legalBasis": basis, **over}


async def test_rules_scenario(world):
    w, s = world, world.service
    # A (the Guangzhou holder): personal information of 99,999 people under the art. 5(4) exemption
    f1 = await declare(
        s,
        w.gz_key,
        declaration(
            w.credential_id,
            importer=w.hk,
            to="HK",
            frm="440100",
            **pi(99_999, "exemption", exemptionGround="annual-under-100000"),
        ),
    )
    r = await s.client.post(
        f"/v1/flows/{f1['flowId']}/decision", headers=s.h(w.regulator_key), json={"decision": "approved"}
    )
    assert r.json()["status"] == "approved"
    # B (Foshan): 1.2 million people split into four standard-contract flows of 300,000
    b_uscc = make_uscc(prefix="914406")
    b, b_key = await s.create_org(name="佛山市示例零售有限公司", identifier=b_uscc, roles=["exporter"])
    b_cert = await certificate(s, w.authority_key, b_uscc)
    split = [
        await declare(s, b_key, declaration(b_cert, importer=w.hk, to="HK", frm="440600", **pi(300_000)))
        for _ in range(4)
    ]
    split_ids = [f["flowId"] for f in split]
    assert [f["declaration"]["rule"]["rule"] for f in split] == ["annual-100000"] * 3 + ["annual-1000000"]
    # A again: a GBA contract in effect since 2025-01-06, never filed (due 10 working days later)
    f6 = await declare(
        s,
        w.gz_key,
        declaration(
            w.credential_id,
            importer=w.hk,
            to="HK",
            frm="440100",
            legalBasis="gba-standard-contract",
            filing={"effectiveFrom": "2025-01-06"},
        ),
    )
    # A again: sensitive personal information of 20,000 people under an assessment that expired 2025-01-01
    f7 = await declare(
        s,
        w.gz_key,
        declaration(
            w.credential_id,
            importer=w.hk,
            to="HK",
            frm="440100",
            **pi(
                20_000,
                "security-assessment",
                sensitivePersonalInformation=True,
                sensitivePersonalInformationSubjects=20_000,
            ),
            filing={
                "reference": "CAC-SA-2022-0042",
                "effectiveFrom": "2022-01-01",
                "validUntil": "2025-01-01",
            },
        ),
    )
    assert f7["declaration"]["rule"]["rule"] == "sensitive-10000"

    # refused outright: core data, important data under a contract (and under the GBA contract),
    # a CIIO's personal information under a contract, a single flow of 1,000,000 under a contract
    core = await certificate(s, w.authority_key, w.gz["identifier"], "core")
    e = await declare(
        s,
        w.gz_key,
        declaration(core, importer=w.hk, to="HK", frm="440100", legalBasis="security-assessment"),
        422,
    )
    assert (e["code"], e["details"]["rule"]) == ("export_prohibited", "core-data")
    important = await certificate(s, w.authority_key, w.gz["identifier"], "important")
    e = await declare(s, w.gz_key, declaration(important, importer=w.hk, to="HK", frm="440100"), 422)
    assert (e["code"], e["details"]["rule"]) == ("legal_basis_required", "important-data")
    e = await declare(
        s,
        w.gz_key,
        declaration(important, importer=w.hk, to="HK", frm="440100", legalBasis="gba-standard-contract"),
        422,
    )
    assert e["code"] == "gba_scope" and "important" in e["message"]
    e = await declare(
        s,
        w.gz_key,
        declaration(w.credential_id, importer=w.hk, to="HK", frm="440100", exporterIsCiio=True, **pi(10)),
        422,
    )
    assert (e["code"], e["details"]["rule"]) == ("legal_basis_required", "ciio-personal-information")
    e = await declare(
        s, b_key, declaration(b_cert, importer=w.hk, to="HK", frm="440600", **pi(1_000_000)), 422
    )
    assert (e["code"], e["details"]["rule"], e["details"]["source"]["article"]) == (
        "legal_basis_required",
        "annual-1000000",
        "7(2)",
    )
    # important data under an assessment is fine
    await declare(
        s,
        w.gz_key,
        declaration(important, importer=w.hk, to="HK", frm="440100", legalBasis="security-assessment"),
    )

    expected = {
        (split_ids[3], "threshold_split"),
        (f6["flowId"], "filing_overdue"),
        (f7["flowId"], "assessment_expired"),
    }
    h = s.h(w.regulator_key)
    trace = (await s.client.get("/v1/flows/trace", headers=h)).json()
    assert {(v["flowId"], v["kind"]) for v in trace["violations"]} == expected
    (sv,) = [v for v in trace["violations"] if v["kind"] == "threshold_split"]
    assert sv["details"]["flows"] == split_ids and sv["details"]["requires"] == "assessment"
    totals = {t["exporterName"]: t for t in trace["exporterTotals"]}
    assert totals[b["name"]]["subjects"] == 1_200_000
    assert {x["id"] for x in totals[b["name"]]["thresholds"] if x["reached"]} == {
        "annual-100000",
        "annual-1000000",
    }
    assert (totals[w.gz["name"]]["subjects"], totals[w.gz["name"]]["sensitiveSubjects"]) == (119_999, 20_000)
    edges = {e["flowId"]: e for e in trace["edges"]}
    assert (
        edges[f1["flowId"]]["rule"]["rule"] == "exempt-under-100000"
        and edges[f1["flowId"]]["rule"]["covered"]
    )

    r = await s.client.get("/v1/flows/trace", headers=h, params={"format": "csv", "table": "violations"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {(int(x["flowId"]), x["kind"]) for x in rows} == expected
    assert [x["flows"] for x in rows if x["kind"] == "threshold_split"] == [";".join(map(str, split_ids))]
    r = await s.client.get("/v1/flows/trace", headers=h, params={"format": "csv", "table": "exporters"})
    rows = {x["exporterName"]: x for x in csv.DictReader(io.StringIO(r.text))}
    assert rows[b["name"]]["subjects"] == "1200000"
    assert rows[b["name"]]["thresholdsReached"] == "annual-100000;annual-1000000"
    r = await s.client.get("/v1/flows/trace", headers=h, params={"format": "csv"})
    rows = {int(x["flowId"]): x for x in csv.DictReader(io.StringIO(r.text))}
    assert (rows[split_ids[3]]["rule"], rows[split_ids[3]]["ruleCovered"]) == ("annual-1000000", "false")
    r = await s.client.get("/v1/flows/trace", headers=h, params={"format": "svg"})
    svg = r.text
    found = set(re.findall(r'<desc class="violation" data-flow-id="(\d+)" data-kind="([a-z_]+)"', svg))
    assert {(int(f), k) for f, k in found} == expected
    assert 'data-subjects="1200000" data-reached="annual-100000 annual-1000000"' in svg
