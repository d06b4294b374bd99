"""End to end through the API: onboard an issuer, issue, anchor, fetch the holder copy, verify."""

import pytest

from tests.registry.samples import business_licence_record

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def test_issue_anchor_fetch_verify(service):
    org, key = await service.create_org(name="广州市市场监督管理局", identifier="11440100MB2C93176P",
                                        roles=["issuer"], types=["BusinessLicence"])
    assert org["issuerId"] == 1
    r = await service.client.post("/v1/credentials", headers=service.h(key),
                                  json={"type": "BusinessLicence", "record": business_licence_record()})
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    await service.drain()
    r = await service.client.get(f"/v1/credentials/{cid}", headers=service.h(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "anchored"
    cred = body["credential"]
    r = await service.client.post("/v1/verify", headers=service.h(key), json={"credential": cred})
    assert r.status_code == 200, r.text
    assert r.json()["valid"], r.json()
