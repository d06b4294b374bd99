"""GET /v1/credentials/{id}/proof on SQLite and PostgreSQL against a real anvil: a fresh proof
package (docs/FORMAT.md §12) that the verifier accepts, that sees a revocation, and the refusals."""

import copy

import pytest

from scripts.samples import business_licence_record

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


def _error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code and body["message"] and "details" in body
    return body


async def test_a_fresh_package_proves_anchor_and_status_and_sees_a_revocation(service):
    from registry.api.ratelimit import PublicRateLimit
    from verifier import TrustBundle, Verifier

    c, h = service.client, service.h
    _, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier="11440100MB2C93176P",
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    ids = []
    for _ in range(2):
        r = await c.post(
            "/v1/credentials",
            headers=h(key),
            json={"type": "BusinessLicence", "record": business_licence_record()},
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    pending = await c.post(
        "/v1/credentials",
        headers=h(key),
        json={"type": "BusinessLicence", "record": business_licence_record()},
    )
    _error(await c.get(f"/v1/credentials/{pending.json()['id']}/proof"), 409, "conflict")  # not anchored yet
    await service.drain()

    r = await c.get(f"/v1/credentials/{ids[0]}/proof")  # public: no API key
    assert r.status_code == 200, r.text
    assert r.json()["credentialId"] == ids[0]
    package = r.json()["proofPackage"]
    assert (
        package["type"] == "CertledgerProofPackage" and package["chainId"] == service.ctx.deployment.chain_id
    )
    holder = (await c.get(f"/v1/credentials/{ids[0]}", headers=h(key))).json()["credential"]
    bundle = (await c.get("/v1/trust-bundle", headers=h(key))).json()
    trust = TrustBundle.load(bundle, operators=[service.ctx.operator_address])
    carried = copy.deepcopy(holder)
    carried["proof"]["proofPackage"] = package
    result = Verifier(trust=trust).verify(carried)
    assert result.valid, result.checks
    assert "proven from chain state" in result.check("status").reason

    r = await c.post(f"/v1/credentials/{ids[0]}/revoke", headers=h(key), json={"reason": 2})
    assert r.status_code == 200, r.text
    carried["proof"]["proofPackage"] = (await c.get(f"/v1/credentials/{ids[0]}/proof")).json()["proofPackage"]
    check = Verifier(trust=trust).verify(carried).check("status")  # the bundle predates the revocation
    assert (
        check.status == "failed"
        and check.reason.startswith("revoked on ")
        and check.reason.endswith("superseded")
    )
    # the revoked credential's package, put on its batch-mate: the mate's own slot is read (proven
    # empty, or its path is not in the package), never the revoked one's
    other = (await c.get(f"/v1/credentials/{ids[1]}", headers=h(key))).json()["credential"]
    other["proof"]["proofPackage"] = carried["proof"]["proofPackage"]
    mate = Verifier(trust=trust).verify(other).check("status")
    assert mate.status == "passed" or mate.reason.startswith(
        "the proof package does not prove the status: storageProof"
    )
    assert not mate.reason.startswith("revoked")

    _error(
        await c.get("/v1/credentials/urn:uuid:00000000-0000-4000-8000-000000000000/proof"), 404, "not_found"
    )
    service.app.state.public_limit = PublicRateLimit("2/minute")
    assert (await c.get(f"/v1/credentials/{ids[1]}/proof")).status_code == 200
    assert (await c.get(f"/v1/credentials/{ids[1]}/proof")).status_code == 200
    r = await c.get(f"/v1/credentials/{ids[1]}/proof")
    body = _error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and body["details"]["limit"] == "2 per 1 minute"
