"""Bad input gets a clear 4xx in the one error shape: unknown jurisdictions, an asset the exporter
does not hold, loops in onward transfers, huge declarations, rule breaches, bad trace filters."""

from __future__ import annotations

import json

import pytest

from registry.flows import render, schemas
from registry.flows import trace as flow_trace
from scripts.samples import make_uscc
from tests.support.flows import declaration, issue_certificate

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


def err(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


async def test_bad_declarations(world):
    w, s = world, world.service
    post = lambda key, body: s.client.post("/v1/flows", headers=w.h(key), json=body)  # noqa: E731
    ok = declaration(w.credential_id, importer=w.hk, to="HK")

    # unknown jurisdiction codes, wherever they appear
    for over in (
        {"toJurisdiction": "XX"},
        {"toJurisdiction": "CN-ZZ"},
        {"fromJurisdiction": "cn-gd"},
        {"importer": {**ok["importer"], "jurisdiction": "ZZ"}},
        {"toJurisdiction": "UK"},
        {"fromJurisdiction": "339900"},  # no such prefecture-level division in Zhejiang
    ):
        e = err(await post(w.gz_key, {**ok, **over}), 400, "unknown_jurisdiction")
        assert e["details"]["value"] in json.dumps(over)
    err(
        await post(
            w.gz_key,
            {**ok, "toJurisdiction": "CN-BJ", "importer": {**ok["importer"], "jurisdiction": "CN-BJ"}},
        ),
        400,
        "not_cross_border",
    )
    err(
        await post(w.gz_key, {**ok, "importer": {**ok["importer"], "jurisdiction": "SG"}}),
        400,
        "jurisdiction_mismatch",
    )

    # an asset the exporter does not hold / does not exist
    other, other_key = await s.create_org(
        name="广州另一企业有限公司", identifier=make_uscc(prefix="914401"), roles=["exporter"]
    )
    err(await post(other_key, ok), 403, "not_asset_holder")
    err(
        await post(w.gz_key, {**ok, "credentialId": "urn:uuid:00000000-0000-4000-8000-000000000000"}),
        404,
        "not_found",
    )
    err(await post(w.gz_key, {k: v for k, v in ok.items() if k != "credentialId"}), 400, "bad_request")

    # rules: destination outside the authorised uses, personal information under an exemption
    us = {"name": "Example Inc", "identifier": "US-EIN-12-3456789", "jurisdiction": "US"}
    e = err(
        await post(w.gz_key, declaration(w.credential_id, importer=us, to="US")),
        422,
        "destination_not_authorised",
    )
    assert e["details"]["toJurisdiction"] == "US"
    err(
        await post(
            w.gz_key,
            {
                **ok,
                "toJurisdiction": "SG",
                "importer": {**ok["importer"], "jurisdiction": "SG"},
                "purpose": "marketing",
            },
        ),
        422,
        "destination_not_authorised",
    )
    # personal information under an exemption needs its ground; sensitive personal information is never
    # exempt by volume (CAC 2024 art. 8); exemptionGround belongs to the basis exemption only
    pi = {"personalInformation": True, "personalInformationSubjects": 1200, "legalBasis": "exemption"}
    err(await post(w.gz_key, {**ok, **pi}), 400, "bad_request")
    e = err(
        await post(
            w.gz_key,
            {
                **ok,
                **pi,
                "exemptionGround": "annual-under-100000",
                "sensitivePersonalInformation": True,
                "sensitivePersonalInformationSubjects": 3,
            },
        ),
        422,
        "legal_basis_required",
    )
    assert e["details"]["rule"] == "sensitive-under-10000" and e["details"]["source"]["article"] == "8"
    err(await post(w.gz_key, {**ok, "exemptionGround": "emergency"}), 400, "bad_request")
    for bad in (
        {"sensitivePersonalInformation": True, "sensitivePersonalInformationSubjects": 0},
        {"sensitivePersonalInformation": False, "sensitivePersonalInformationSubjects": 5},
        {
            "personalInformation": True,
            "personalInformationSubjects": 5,
            "sensitivePersonalInformation": True,
            "sensitivePersonalInformationSubjects": 6,
        },
        {"filing": {"effectiveFrom": "2026-02-30"}},
        {"filing": {"effectiveFrom": "2026-03-01", "validUntil": "2026-02-01"}},
        {"filing": {"effectiveFrom": "2026-03-01", "filedAt": "2026-02-01"}},
        {"filing": {"effectiveFrom": "2026-03-01", "surprise": 1}},
        {"exemptionGround": "because"},
    ):
        err(await post(w.gz_key, {**ok, **bad}), 400, "bad_request")
    # the GBA standard contract: only the nine mainland GBA cities ↔ HK / MO
    e = err(await post(w.gz_key, {**ok, "legalBasis": "gba-standard-contract"}), 422, "gba_scope")
    assert "CN-GD" in e["message"]
    err(
        await post(w.gz_key, {**ok, "fromJurisdiction": "440500", "legalBasis": "gba-standard-contract"}),
        422,
        "gba_scope",
    )  # Shantou is in Guangdong, not in the GBA
    err(await post(w.gz_key, {**ok, "personalInformation": True, "personalInformationSubjects": 0}), 400)
    err(await post(w.gz_key, {**ok, "importer": {**ok["importer"], "identifier": w.gz["identifier"]}}), 400)

    # malformed and huge declarations
    for over in (
        {"payloadDigest": "0x1234"},
        {"volume": -1},
        {"volume": 2**80},
        {"legalBasis": "trust me"},
        {"dataCategories": []},
        {"surprise": 1},
        {"purpose": "x" * 5000},
        {"parentFlowId": 0},
        {"dataCategories": ["c"] * 65},
    ):
        e = err(await post(w.gz_key, {**ok, **over}), 400, "bad_request")
        assert e["details"] and "loc" in e["details"][0]
    e = err(
        await post(w.gz_key, {**ok, "dataCategories": [f"category-{i:05d}" for i in range(10_000)]}),
        400,
        "bad_request",
    )
    assert "at most 64" in e["message"]
    e = err(
        await post(w.gz_key, {**ok, "dataCategories": [f"c{i:030d}" for i in range(10_000)]}),
        413,
        "payload_too_large",
    )
    assert e["details"]["limit"] == schemas.MAX_BODY
    err(await post(w.gz_key, {**ok, "purpose": "p" * 1_000_000}), 413, "payload_too_large")
    r = await s.client.post(
        "/v1/flows", headers={**w.h(w.gz_key), "content-type": "application/json"}, content=b"{not json"
    )
    err(r, 400, "bad_request")
    r = await s.client.post(
        "/v1/flows", headers={**w.h(w.gz_key), "content-type": "application/json"}, content=b"[1, 2]"
    )
    err(r, 400, "bad_request")
    # nothing was anchored by any of these
    assert await s.ctx.chain.call(s.ctx.chain.flows.functions.flowCount()) == 0

    # the holder copy instead of the id: a tampered copy is refused, the genuine one declares
    r = await s.client.get(f"/v1/credentials/{w.credential_id}", headers=w.h(w.authority_key))
    copy = r.json()["credential"]
    no_id = {k: v for k, v in ok.items() if k != "credentialId"}
    forged = json.loads(json.dumps(copy))
    forged["credentialSubject"]["authorisedUses"][0]["purpose"] = "export:US:*"
    e = err(await post(w.gz_key, {**no_id, "credential": forged}), 400, "bad_request")
    assert "does not verify" in e["message"]
    err(await post(other_key, {**no_id, "credential": copy}), 403, "not_asset_holder")
    r = await post(w.gz_key, {**no_id, "credential": copy})
    assert r.status_code == 201, r.text
    assert r.json()["credentialId"] == w.credential_id

    # a revoked certificate: no flow of it
    cid2 = await issue_certificate(s, w.authority_key, w.gz["identifier"])
    r = await s.client.post(f"/v1/credentials/{cid2}/revoke", headers=w.h(w.authority_key), json={})
    assert r.status_code == 200, r.text
    e = err(await post(w.gz_key, {**ok, "credentialId": cid2}), 409, "certificate_not_valid")
    assert e["details"]["status"] == "revoked"


async def test_loops_decisions_and_trace_filters(world):
    w, s = world, world.service
    post = lambda key, body: s.client.post("/v1/flows", headers=w.h(key), json=body)  # noqa: E731
    r = await post(w.gz_key, declaration(w.credential_id, importer=w.hk, to="HK"))
    f1 = r.json()["flowId"]
    r = await post(w.hk_key, declaration(importer=w.sg, frm="HK", to="SG", parent=f1))
    assert r.status_code == 201, r.text
    f2 = r.json()["flowId"]
    # a loop: Singapore sends it back to Hong Kong, or back home to Guangzhou
    e = err(await post(w.sg_key, declaration(importer=w.hk, frm="SG", to="HK", parent=f2)), 400, "flow_loop")
    assert w.hk["identifier"] in e["details"]["chain"]
    home = {"name": w.gz["name"], "identifier": w.gz["identifier"], "jurisdiction": "CN-GD"}
    err(await post(w.sg_key, declaration(importer=home, frm="SG", to="CN-GD", parent=f2)), 400, "flow_loop")
    # an onward transfer that does not leave from where its parent arrived / names another asset / no parent
    err(
        await post(w.sg_key, declaration(importer=w.mo, frm="HK", to="MO", parent=f2)),
        400,
        "jurisdiction_mismatch",
    )
    err(
        await post(
            w.sg_key,
            declaration(
                "urn:uuid:11111111-1111-4111-8111-111111111111", importer=w.mo, frm="SG", to="MO", parent=f2
            ),
        ),
        400,
        "asset_mismatch",
    )
    err(await post(w.sg_key, declaration(importer=w.mo, frm="SG", to="MO", parent=999)), 404, "not_found")

    # decisions
    def dec(fid, body):
        return s.client.post(f"/v1/flows/{fid}/decision", headers=w.h(w.regulator_key), json=body)

    err(await dec(f1, {"decision": "maybe"}), 400, "bad_request")
    err(await dec(f1, {"decision": "rejected"}), 400, "bad_request")  # a rejection needs a reason
    err(await dec(f1, {"decision": "rejected", "reason": "r" * 1001}), 400, "bad_request")
    err(await dec(12345, {"decision": "approved"}), 404, "not_found")
    err(await dec(2**60, {"decision": "approved"}), 400, "bad_request")
    assert (
        await dec(f1, {"decision": "rejected", "reason": "no standard contract on file"})
    ).status_code == 200
    err(await dec(f1, {"decision": "approved"}), 409, "already_decided")
    err(
        await dec(f2, {"decision": "approved"}), 409, "parent_flow_rejected"
    )  # approving under a rejected parent
    err(await s.client.get("/v1/flows/abc", headers=w.h(w.regulator_key)), 400, "bad_request")
    err(
        await s.client.post(f"/v1/flows/{f1}/receipt", headers=w.h(w.hk_key), json={"payloadDigest": "abc"}),
        400,
    )

    # trace filters
    trace = lambda **p: s.client.get("/v1/flows/trace", headers=w.h(w.regulator_key), params=p)  # noqa: E731
    err(await trace(jurisdiction="XX"), 400, "unknown_jurisdiction")
    err(await trace(**{"from": "yesterday"}), 400, "bad_request")
    err(await trace(**{"from": "2026-02-01", "to": "2026-01-01"}), 400, "bad_request")
    err(await trace(format="xml"), 400, "bad_request")
    err(await trace(asset="urn:uuid:00000000-0000-4000-8000-000000000000"), 404, "not_found")
    err(await trace(organisation="999999"), 404, "not_found")
    err(await trace(asset="x" * 500), 400, "bad_request")
    r = await trace(jurisdiction="HK", format="csv", table="totals")
    assert r.status_code == 200 and r.text.splitlines()[0] == "from,to,flows,approved,pending,rejected,volume"


def test_registry_side_violations_and_csv_safety():
    """Rules the registry re-checks at trace time (pure: no chain needed)."""
    base = dict(
        parent_flow_id=0,
        asset_leaf="0x" + "11" * 32,
        asset_root="0x" + "22" * 32,
        exporter_id="0xa",
        importer_id="0xb",
        from_j="CN-GD",
        to_j="US",
        declared_at=1_800_000_000,
        decided_at=None,
        reason=None,
        legal_basis=1,
        personal_information=False,
        subjects=0,
        volume=10,
        payload_digest="0x" + "33" * 32,
        declaration_hash="0x" + "44" * 32,
        declared_tx="0x" + "55" * 32,
        decided_tx=None,
        purpose='=HYPERLINK("http://evil")',
        exporter_name="A",
        importer_name="B",
    )
    flows = [
        flow_trace.FlowRecord(
            flow_id=1, decision=schemas.APPROVED, authorised=False, within_validity=True, **base
        ),
        flow_trace.FlowRecord(
            flow_id=2, decision=schemas.REJECTED, authorised=False, within_validity=False, **base
        ),
        flow_trace.FlowRecord(
            flow_id=3, decision=schemas.PENDING, authorised=True, within_validity=False, **base
        ),
    ]
    q = flow_trace.make_query(asset=None, organisation=None, jurisdiction_code=None, since=None, until=None)
    t = flow_trace.build_trace(flows, {}, q, "registry")
    assert sorted((v["flowId"], v["kind"]) for v in t["violations"]) == [
        (1, "destination_not_authorised"),
        (3, "certificate_expired"),
    ]
    assert all(v["source"] == "registry" for v in t["violations"])
    assert flow_trace.chain_view(t)["violations"] == []
    csv_text = render.to_csv(t)
    assert "'=HYPERLINK" in csv_text
    subject = {
        "authorisedUses": [
            {
                "purpose": "export:CN:*",
                "until": "2030-01-01T00:00:00Z",
                "relyingParty": {"name": "x", "unifiedSocialCreditCode": "x"},
            }
        ]
    }
    assert schemas.authorised(subject, "CN-GD", "anything", "imp", 1_800_000_000)
    assert not schemas.authorised(subject, "HK", "anything", "imp", 1_800_000_000)
    assert not schemas.authorised(subject, "CN-GD", "anything", "imp", 1_900_000_000)  # after `until`
