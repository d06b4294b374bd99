"""A small data-customs world on a real registry service (the ``world`` fixture,
tests/flows/conftest.py): a data authority (issuer), a Guangzhou
enterprise holding an electricity-data asset certificate, importers in Hong Kong, Singapore and
Macao (registered as exporters, so they can transfer onward), a regulator."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from registry.flows import schemas

DATA = b"2024-2025 hourly electricity usage, meter 4401-0001\n" * 100
DIGEST = "0x" + hashlib.sha256(DATA).hexdigest()


@dataclass
class World:
    service: object
    authority_key: str
    gz: dict
    gz_key: str
    hk: dict
    hk_key: str
    sg: dict
    sg_key: str
    mo: dict
    mo_key: str
    regulator_key: str
    credential_id: str

    def h(self, key):
        return self.service.h(key)


def certificate_record(uscc: str, uses: list[str] | None = None) -> dict:
    uses = (
        uses
        if uses is not None
        else ["export:HK:*", "export:SG:cross-border trade finance", "export:MO:*", "export:PT:*"]
    )
    return {
        "validFrom": "2025-01-01T00:00:00Z",
        "validUntil": "2035-01-01T00:00:00Z",
        "credentialSubject": {
            "assetId": "GZ-DA-2026-000777",
            "assetName": "广州某企业用电数据",
            "holderName": "广州市示例能源科技有限公司",
            "unifiedSocialCreditCode": uscc,
            "dataProvider": "广东电网有限责任公司广州供电局",
            "dataCategory": "electricity-usage",
            "classificationLevel": "general",
            "periodCovered": {"from": "2024-01-01", "to": "2025-12-31"},
            "recordCount": 17520,
            "datasetDigest": DIGEST,
            "digestAlgorithm": "sha256",
            "valuation": {"amount": "2500000.00", "currency": "CNY", "method": "income approach"},
            "authorisedUses": [
                {
                    "relyingParty": {"name": "广州市示例能源科技有限公司", "unifiedSocialCreditCode": uscc},
                    "purpose": p,
                    "until": "2034-12-31T23:59:59Z",
                }
                for p in uses
            ],
        },
    }


async def issue_certificate(service, authority_key: str, uscc: str, uses=None) -> str:
    r = await service.client.post(
        "/v1/credentials",
        headers=service.h(authority_key),
        json={"type": "DataAssetCertificate", "record": certificate_record(uscc, uses)},
    )
    assert r.status_code == 202, r.text
    await service.drain()
    return r.json()["id"]


def declaration(
    credential_id=None,
    *,
    importer,
    to,
    frm="CN-GD",
    parent=None,
    purpose="cross-border trade finance",
    **over,
) -> dict:
    body = {
        "importer": {
            "name": importer["name"],
            "identifier": importer["identifier"],
            "jurisdiction": importer["jurisdiction"],
        },
        "fromJurisdiction": frm,
        "toJurisdiction": to,
        "dataCategories": ["electricity-usage", "meter-readings"],
        "personalInformation": False,
        "personalInformationSubjects": 0,
        "legalBasis": "standard-contract",
        "purpose": purpose,
        "volume": len(DATA),
        "payloadDigest": DIGEST,
    }
    if credential_id:
        body["credentialId"] = credential_id
    if parent:
        body["parentFlowId"] = parent
    body.update(over)
    return body


# -- the Guangzhou scenario (tests/flows/test_scenario.py, the trace page) --------------------------
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "flows"
PT = {"name": "Exemplo Energia Lisboa SA", "identifier": "PT-NIPC-509876543", "jurisdiction": "PT"}


async def declare(w, key, body, status=201):
    r = await w.service.client.post("/v1/flows", headers=w.h(key), json=body)
    assert r.status_code == status, r.text
    return r.json()


async def decide(w, flow_id, decision, reason="", key=None, status=200):
    r = await w.service.client.post(
        f"/v1/flows/{flow_id}/decision",
        headers=w.h(key or w.regulator_key),
        json={"decision": decision, "reason": reason},
    )
    assert r.status_code == status, r.text
    return r.json()


async def run_scenario(w) -> dict[str, int]:
    s = w.service
    f1 = await declare(w, w.gz_key, declaration(w.credential_id, importer=w.hk, to="HK"))
    assert f1["status"] == "pending" and f1["txHash"] and f1["flowId"] >= 1
    assert f1["declarationHash"] == schemas.declaration_hash(f1["declaration"])
    await decide(w, f1["flowId"], "approved", "standard contract filed with the Guangdong CAC")
    f2 = await declare(w, w.hk_key, declaration(importer=w.sg, frm="HK", to="SG", parent=f1["flowId"]))
    await decide(w, f2["flowId"], "approved")
    f3 = await declare(
        w, w.gz_key, declaration(w.credential_id, importer=w.mo, to="MO", purpose="market research")
    )
    f4 = await declare(
        w,
        w.mo_key,
        declaration(importer=PT, frm="MO", to="PT", parent=f3["flowId"], purpose="market research"),
    )
    await decide(w, f3["flowId"], "rejected", "no security assessment for a transfer to Macao of this volume")
    # an onward transfer of a rejected flow: refused outright by the API, and by the chain
    refused = await declare(
        w,
        w.mo_key,
        declaration(importer=PT, frm="MO", to="PT", parent=f3["flowId"], purpose="market research"),
        status=409,
    )
    assert refused["error"]["code"] == "parent_flow_rejected"
    # the importers report what they received: HK the declared payload, SG something else
    r = await s.client.post(
        f"/v1/flows/{f1['flowId']}/receipt", headers=w.h(w.hk_key), json={"payloadDigest": DIGEST}
    )
    assert r.status_code == 200 and r.json()["payloadMatches"] is True, r.text
    r = await s.client.post(
        f"/v1/flows/{f2['flowId']}/receipt", headers=w.h(w.sg_key), json={"payloadDigest": "0x" + "ab" * 32}
    )
    assert r.status_code == 200 and r.json()["payloadMatches"] is False, r.text
    # the data authority revokes the certificate after the approvals
    await asyncio.sleep(1.1)  # a later block second than the approvals
    r = await s.client.post(
        f"/v1/credentials/{w.credential_id}/revoke",
        headers=w.h(w.authority_key),
        json={"reason": "dataInaccurate"},
    )
    assert r.status_code == 200, r.text
    return {"f1": f1["flowId"], "f2": f2["flowId"], "f3": f3["flowId"], "f4": f4["flowId"]}
