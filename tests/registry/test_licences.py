"""E-licences through the registry (docs/FORMAT.md §2.3): each gets a 证照标识 naming its issuer,
an identifier the issuer sends is kept or refused with the reason, a licence is found by its
identifier (and only by whoever may see it), and a long-term licence is issued and verifies.
On SQLite and PostgreSQL (the `database_url` fixture), against the session anvil."""

from __future__ import annotations

import pytest

from scripts.samples import business_licence_record, make_uscc
from verifier.licence_id import make_licence_identifier, parse_licence_identifier

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def _bulk(service, key, records, atomic=False):
    return await service.client.post(
        f"/v1/credentials/bulk?type=BusinessLicence&atomic={str(atomic).lower()}",
        headers=service.h(key),
        json=records,
    )


async def test_licences_get_identifiers_are_found_by_them_and_foreign_ones_are_refused(service):
    c, h = service.client, service.h
    issuer_code = make_uscc(prefix="114401")
    org, key = await service.create_org(
        name="广州市天河区市场监督管理局", identifier=issuer_code, roles=["issuer"], types=["BusinessLicence"]
    )
    _, other_key = await service.create_org(
        name="佛山市市场监督管理局",
        identifier=make_uscc(prefix="114406"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    own = make_licence_identifier("11100000000013338W011", issuer_code, "GZ2026000001")
    foreign = make_licence_identifier("11100000000013338W011", "91440101MA5BANK009", "GZ2026000002")
    long_term = business_licence_record()
    del long_term["validUntil"]
    long_term["credentialSubject"]["longTermValidity"] = True
    records = [
        business_licence_record(),  # the registry gives it an identifier
        business_licence_record(licenceIdentifier=own, licenceTypeCode="11100000000013338W011"),
        business_licence_record(licenceIdentifier=foreign, licenceTypeCode="11100000000013338W011"),
        business_licence_record(licenceIdentifier=own[:-1] + ("0" if own[-1] != "0" else "1")),
        long_term,
    ]
    r = await _bulk(service, key, records)
    assert r.status_code == 202, r.text
    body = r.json()
    rejected = {e["index"]: " ".join(e["errors"]) for e in body["rejected"]}
    assert set(rejected) == {2, 3}, body
    assert "names the issuing body 91440101MA5BANK009, but the issuer is " + issuer_code in rejected[2]
    assert "check character" in rejected[3]
    given_id, own_id, long_id = body["ids"]
    await service.drain()

    # each accepted licence carries an identifier naming its issuer; the one given is kept
    copies = {}
    for cid in body["ids"]:
        got = await c.get(f"/v1/credentials/{cid}", headers=h(key))
        copies[cid] = got.json()["credential"]
        ident = copies[cid]["credentialSubject"]["licenceIdentifier"]
        assert parse_licence_identifier(ident, issuer_code=issuer_code)
    assert copies[own_id]["credentialSubject"]["licenceIdentifier"] == own
    assert (
        "validUntil" not in copies[long_id]
        and copies[long_id]["credentialSubject"]["longTermValidity"] is True
    )

    # found by its identifier, by its issuer; not by another issuer
    for cid in body["ids"]:
        ident = copies[cid]["credentialSubject"]["licenceIdentifier"]
        found = await c.get("/v1/credentials", params={"licenceIdentifier": ident}, headers=h(key))
        assert found.status_code == 200 and [i["id"] for i in found.json()["items"]] == [cid], found.text
        assert found.json()["items"][0]["licenceIdentifier"] == ident
        theirs = await c.get("/v1/credentials", params={"licenceIdentifier": ident}, headers=h(other_key))
        assert theirs.status_code == 200 and theirs.json()["items"] == []
    wrong = own[:-1] + ("A" if own[-1] != "A" else "B")
    bad = await c.get("/v1/credentials", params={"licenceIdentifier": wrong}, headers=h(key))
    assert bad.status_code == 400 and "check character" in bad.json()["error"]["message"], bad.text
    unknown = make_licence_identifier("X1", issuer_code, "NEVERISSUED")
    none = await c.get("/v1/credentials", params={"licenceIdentifier": unknown}, headers=h(key))
    assert none.status_code == 200 and none.json()["items"] == []

    # they verify, the long-term one with "long-term"
    for cid, copy in copies.items():
        v = await c.post("/v1/verify", headers=h(key), json={"credential": copy})
        checks = {x["name"]: x for x in v.json()["checks"]}
        assert v.json()["valid"], checks
        if cid == long_id:
            assert "long-term" in checks["validity"]["reason"]
