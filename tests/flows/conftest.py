"""A small data-customs world on a real registry service: a data authority (issuer), a Guangzhou
enterprise holding an electricity-data asset certificate, importers in Hong Kong, Singapore and
Macao (registered as exporters, so they can transfer onward), a regulator."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import pytest

from tests.registry.conftest import service  # noqa: F401  (the in-process registry fixture)
from tests.registry.samples import make_uscc

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
    uses = uses if uses is not None else ["export:HK:*", "export:SG:cross-border trade finance",
                                          "export:MO:*", "export:PT:*"]
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
                {"relyingParty": {"name": "广州市示例能源科技有限公司", "unifiedSocialCreditCode": uscc},
                 "purpose": p, "until": "2034-12-31T23:59:59Z"} for p in uses
            ],
        },
    }


async def issue_certificate(service, authority_key: str, uscc: str, uses=None) -> str:
    r = await service.client.post("/v1/credentials", headers=service.h(authority_key),
                                  json={"type": "DataAssetCertificate", "record": certificate_record(uscc, uses)})
    assert r.status_code == 202, r.text
    await service.drain()
    return r.json()["id"]


def declaration(credential_id=None, *, importer, to, frm="CN-GD", parent=None, purpose="cross-border trade finance",
                **over) -> dict:
    body = {
        "importer": {"name": importer["name"], "identifier": importer["identifier"],
                     "jurisdiction": importer["jurisdiction"]},
        "fromJurisdiction": frm, "toJurisdiction": to,
        "dataCategories": ["electricity-usage", "meter-readings"],
        "personalInformation": False, "personalInformationSubjects": 0,
        "legalBasis": "standard-contract", "purpose": purpose, "volume": len(DATA), "payloadDigest": DIGEST,
    }
    if credential_id:
        body["credentialId"] = credential_id
    if parent:
        body["parentFlowId"] = parent
    body.update(over)
    return body


@pytest.fixture()
async def world(service):  # noqa: F811
    rng = random.Random()
    _, authority = await service.create_org(name="广东省政务服务和数据管理局", identifier=make_uscc(rng, "114400"),
                                            roles=["issuer"], types=["DataAssetCertificate"])
    uscc = make_uscc(rng, "914401")
    gz, gz_key = await service.create_org(name="广州市示例能源科技有限公司", identifier=uscc, roles=["exporter"])
    hk, hk_key = await service.create_org(name="Example Trade Finance (HK) Ltd", identifier="HK-BR-12345678",
                                          roles=["exporter"], jurisdiction="HK")
    sg, sg_key = await service.create_org(name="Example Analytics Pte Ltd", identifier="SG-UEN-201912345K",
                                          roles=["exporter"], jurisdiction="SG")
    mo, mo_key = await service.create_org(name="Exemplo Dados Macau Lda", identifier="MO-SO-54321",
                                          roles=["exporter"], jurisdiction="MO")
    _, regulator = await service.create_org(name="国家数据局 数据出境监管", identifier=make_uscc(rng, "110000"),
                                            roles=["regulator"])
    cid = await issue_certificate(service, authority, uscc)
    return World(service, authority, gz, gz_key, hk, hk_key, sg, sg_key, mo, mo_key, regulator, cid)
