"""Who may do what: only the certificate holder declares an original flow (only the parent's
importer an onward one), only regulators decide, only the importer reports receipt, only
regulators trace. Each refusal happens in the API and — signed with the caller's own key — on-chain."""

from __future__ import annotations

import pytest

from registry.core.errors import ChainRejected
from registry.db.models import Batch, Credential
from registry.services import jurisdictions as J
from registry.services.orgs import signing_key
from registry.services.records import proof_in_batch
from tests.support.flows import DIGEST, declaration
from verifier._internal.merkle import leaf_hash

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def key_of(s, org_id: int) -> str:
    async with s.ctx.sessions() as sess:
        return (await signing_key(sess, org_id, s.ctx.settings.passphrase()))[1]


async def asset_proof(s, credential_id: str) -> tuple:
    async with s.ctx.sessions() as sess:
        cred = await sess.get(Credential, credential_id)
        batch = await sess.get(Batch, cred.batch_id)
        t, sub = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
        proof = await proof_in_batch(sess, batch.id, leaf_hash(t, sub))
    return (bytes.fromhex(batch.root[2:]), t, sub, proof)


def onchain_decl(parent: int, importer: str, frm: str, to: str) -> tuple:
    from eth_utils import keccak

    return (
        parent,
        keccak(text=importer),
        J.to_bytes8(frm),
        J.to_bytes8(to),
        3,
        False,
        0,
        1000,
        keccak(text="cross-border trade finance"),
        bytes.fromhex(DIGEST[2:]),
        b"\x07" * 32,
    )


async def refused_on_chain(s, key: str, fn) -> str:
    with pytest.raises(ChainRejected) as exc:
        await s.ctx.chain.transact(key, fn)
    return exc.value.details["error"]


async def test_only_the_holder_declares_and_only_regulators_decide(world):
    w, s = world, world.service
    ledger = s.ctx.chain.flows.functions
    proof = await asset_proof(s, w.credential_id)

    # no key / a regulator / an issuer: not an exporter
    r = await s.client.post("/v1/flows", json=declaration(w.credential_id, importer=w.hk, to="HK"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    for key in (w.regulator_key, w.authority_key, s.admin_key):
        r = await s.client.post(
            "/v1/flows", headers=w.h(key), json=declaration(w.credential_id, importer=w.hk, to="HK")
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text

    # Hong Kong's importer is an exporter but not the certificate's holder
    r = await s.client.post(
        "/v1/flows",
        headers=w.h(w.hk_key),
        json=declaration(w.credential_id, importer=w.sg, frm="HK", to="SG"),
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_asset_holder", r.text
    hk_key = await key_of(s, w.hk["id"])
    assert (
        await refused_on_chain(
            s, hk_key, ledger.declareFlow(onchain_decl(0, w.sg["identifier"], "HK", "SG"), proof)
        )
        == "NotAssetHolder"
    )
    # the issuer's key is no ledger participant at all
    authority_org = (await s.client.get("/v1/organisations", headers=w.h(s.admin_key))).json()["items"]
    issuer_id = next(o["id"] for o in authority_org if "issuer" in o["roles"])
    assert (
        await refused_on_chain(
            s,
            await key_of(s, issuer_id),
            ledger.declareFlow(onchain_decl(0, w.hk["identifier"], "CN-GD", "HK"), proof),
        )
        == "NotAParticipant"
    )

    # the holder declares
    r = await s.client.post(
        "/v1/flows", headers=w.h(w.gz_key), json=declaration(w.credential_id, importer=w.hk, to="HK")
    )
    assert r.status_code == 201, r.text
    f1 = r.json()["flowId"]

    # only the parent's importer transfers onward
    r = await s.client.post(
        "/v1/flows", headers=w.h(w.sg_key), json=declaration(importer=w.mo, frm="HK", to="MO", parent=f1)
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_parent_importer", r.text
    assert (
        await refused_on_chain(
            s,
            await key_of(s, w.sg["id"]),
            ledger.declareFlow(onchain_decl(f1, w.mo["identifier"], "HK", "MO"), proof),
        )
        == "NotParentImporter"
    )

    # only regulators decide: an exporter, the issuer, the admin are refused by the API...
    for key in (w.gz_key, w.hk_key, w.authority_key, s.admin_key):
        r = await s.client.post(f"/v1/flows/{f1}/decision", headers=w.h(key), json={"decision": "approved"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    # ... and by the chain, signed with their own keys
    for org_id in (w.gz["id"], w.hk["id"]):
        assert (
            await refused_on_chain(s, await key_of(s, org_id), ledger.decideFlow(f1, 2, ""))
            == "AccessControlUnauthorizedAccount"
        )
    r = await s.client.get(f"/v1/flows/{f1}", headers=w.h(w.regulator_key))
    assert r.json()["status"] == "pending"
    r = await s.client.post(
        f"/v1/flows/{f1}/decision", headers=w.h(w.regulator_key), json={"decision": "approved"}
    )
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text

    # reading a flow: exporter, importer, regulator — not a bystander
    for key, status in ((w.gz_key, 200), (w.hk_key, 200), (w.regulator_key, 200), (w.sg_key, 403)):
        r = await s.client.get(f"/v1/flows/{f1}", headers=w.h(key))
        assert r.status_code == status, (key, r.text)
    # receipts: only the importer
    for key in (w.gz_key, w.sg_key, w.regulator_key):
        r = await s.client.post(f"/v1/flows/{f1}/receipt", headers=w.h(key), json={"payloadDigest": DIGEST})
        assert r.status_code == 403, r.text
    # tracing: regulators and admins
    for key, status in ((w.regulator_key, 200), (s.admin_key, 200), (w.gz_key, 403), (w.hk_key, 403)):
        r = await s.client.get("/v1/flows/trace", headers=w.h(key))
        assert r.status_code == status, r.text
    # nothing the refused attempts did reached the chain or the DB
    assert await s.ctx.chain.call(s.ctx.chain.flows.functions.flowCount()) == 1
    r = await s.client.get("/v1/flows/trace", headers=w.h(w.regulator_key))
    assert [e["flowId"] for e in r.json()["edges"]] == [f1]
