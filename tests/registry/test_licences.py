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


async def test_a_natural_persons_certificate_keeps_the_citizen_id_out_of_copies_by_default(service):
    """issue #22, point 3: a natural person holds a data asset certificate; its holder copy comes
    with the citizen ID number redacted unless asked for, both copies verify, and the row's subject
    is the salted digest's hash, not the number."""
    from registry.db.models import Credential
    from scripts.samples import natural_person_asset_record

    c, h = service.client, service.h
    _, key = await service.create_org(
        name="广东省人力资源和社会保障厅",
        identifier=make_uscc(prefix="114400"),
        roles=["issuer"],
        types=["DataAssetCertificate"],
    )
    r = await c.post(
        "/v1/credentials",
        headers=h(key),
        json={"type": "DataAssetCertificate", "record": natural_person_asset_record()},
    )
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    bad = natural_person_asset_record()
    bad["credentialSubject"]["unifiedSocialCreditCode"] = make_uscc()
    r = await c.post("/v1/credentials", headers=h(key), json={"type": "DataAssetCertificate", "record": bad})
    assert r.status_code == 422 and "a natural person holder (citizenId) has none" in r.text, r.text
    await service.drain()
    default = (await c.get(f"/v1/credentials/{cid}", headers=h(key))).json()["credential"]
    assert "citizenIdNumber" not in default["credentialSubject"]
    assert "/credentialSubject/citizenIdNumber" in default["proof"]["redactedDigests"]
    full = (await c.get(f"/v1/credentials/{cid}?disclose=citizenIdNumber", headers=h(key))).json()[
        "credential"
    ]
    assert full["credentialSubject"]["citizenIdNumber"] == "11010519491231002X"
    for copy in (default, full):
        v = (await c.post("/v1/verify", headers=h(key), json={"credential": copy})).json()
        assert v["valid"], v
    async with service.ctx.sessions() as s:
        row = await s.get(Credential, cid)
    assert "11010519491231002X" not in row.subject_identifier and len(row.subject_identifier) == 64
    assert row.subject_hash == default["proof"]["subjectHash"]
