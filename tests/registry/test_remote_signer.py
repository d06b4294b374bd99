"""Issuers with their own signer: a real `certledger signer` process, a real anvil, the registry on
SQLite and PostgreSQL. The batch is signed by the issuer's key (never in the registry), one signer
call per batch; a signer that is slow, down or refusing leaves the batch sealed and it is anchored
exactly once when the signer answers again."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from registry.db.models import Batch, SigningKey
from tests.registry.samples import business_licence_record, make_uscc
from tests.registry.signer_procs import SignerProcess

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


@pytest.fixture()
def signer_home(tmp_path):
    return tmp_path / "issuer-signer"


@pytest.fixture()
def procs():
    started: list[SignerProcess] = []
    yield started
    for p in started:
        p.kill()


def start_signer(procs, home, deployment, **kw) -> SignerProcess:
    p = SignerProcess(home, deployment, **kw).start()
    procs.append(p)
    return p


async def onboard(service, signer: SignerProcess, suite="secp256k1"):
    r = await service.client.post("/v1/organisations", headers=service.h(service.admin_key), json={
        "name": "广州市市场监督管理局", "identifier": make_uscc(prefix="114401"), "jurisdiction": "CN-GD",
        "roles": ["issuer"], "suite": suite, "credentialTypes": ["BusinessLicence"], "signer": signer.ref()})
    assert r.status_code == 201, r.text
    return r.json()["organisation"], r.json()["apiKey"]


async def issue(service, key, n=3) -> list[str]:
    body = "\n".join(json.dumps(business_licence_record()) for _ in range(n)).encode()
    r = await service.client.post("/v1/credentials/bulk?type=BusinessLicence", content=body,
                                  headers={**service.h(key), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    return r.json()["ids"]


async def batches(service) -> list[Batch]:
    async with service.ctx.sessions() as s:
        return (await s.execute(select(Batch).order_by(Batch.id))).scalars().all()


async def anchored_roots(service, chain, deployment) -> list[str]:
    """Every BatchAnchored event of the AnchorRegistry (the chain's own record of anchors)."""
    contract = chain.w3.eth.contract(address=chain.w3.to_checksum_address(deployment.anchor_registry),
                                     abi=__import__("ledger_node.artifacts", fromlist=["x"]).load_artifact("AnchorRegistry").abi)
    return ["0x" + bytes(e["args"]["root"]).hex() for e in contract.events.BatchAnchored().get_logs(from_block=0)]


@pytest.mark.parametrize("suite", ["secp256k1", "sm2-sm3"])
async def test_an_issuer_with_its_own_signer_issues_verifiable_credentials(
        service, deployment, procs, signer_home, suite):
    signer = start_signer(procs, signer_home, deployment, suite=suite)
    org, key = await onboard(service, signer, suite)
    assert org["chainAccount"].lower() == signer.address and org["signerUrl"] == signer.url
    async with service.ctx.sessions() as s:
        row = (await s.execute(select(SigningKey).where(SigningKey.org_id == org["id"]))).scalar_one()
    assert row.keystore is None and row.sm2_keystore is None  # the registry holds no key of this issuer
    ids = await issue(service, key, 3)
    await service.drain()
    (batch,) = await batches(service)
    assert batch.state == "anchored" and batch.suite == suite
    signed = [e for e in signer.entries() if e["kind"] == "batch"]
    assert [(e["root"], e["count"], e["signature"]) for e in signed] == [(batch.root, 3, batch.signature)]
    assert signed[0]["transaction"]["hash"] == batch.tx_hash  # the anchor tx the signer signed
    r = await service.client.get(f"/v1/credentials/{ids[0]}", headers=service.h(key))
    r = await service.client.post("/v1/verify", headers=service.h(key), json={"credential": r.json()["credential"]})
    assert r.json()["valid"], r.json()

    # a status change of the issuer's own credential is signed by its signer too (eth_signTransaction)
    r = await service.client.post(f"/v1/credentials/{ids[1]}/revoke", headers=service.h(key),
                                  json={"reason": "dataInaccurate"})
    assert r.status_code == 200, r.text
    tx = [e for e in signer.entries() if e["kind"] == "transaction"]
    assert [(e["function"], e["root"]) for e in tx] == [("revokeCredential", batch.root)]
    assert tx[0]["transaction"]["hash"] == r.json()["txHash"]


async def test_a_refusing_signer_leaves_the_batch_sealed_with_the_reason(service, deployment, procs, signer_home):
    # the issuer's policy allows data asset certificates only; the registry sends a business licence batch
    signer = start_signer(procs, signer_home, deployment, policy={"credentialTypes": [3]})
    _, key = await onboard(service, signer)
    await issue(service, key, 2)
    p = service.ctx.pipeline
    await p.seal_due(force=True)
    await p.advance_all()
    (batch,) = await batches(service)
    assert batch.state == "sealed" and batch.root is None and batch.raw_tx is None
    assert "signer refused" in batch.last_error and "credential type 1" in batch.last_error
    refused = [e for e in signer.entries() if e["kind"] == "refused"]
    assert [e["code"] for e in refused] == ["credential_type_not_allowed"]
    assert not [e for e in signer.entries() if e["kind"] == "batch"]


async def test_signer_down_then_back_anchors_the_batch_once(service, chain, deployment, procs, signer_home):
    service.ctx.settings.signer_retry_seconds = 0.3
    signer = start_signer(procs, signer_home, deployment)
    _, key = await onboard(service, signer)
    signer.kill()  # the issuer's signer goes down (SIGKILL)
    await issue(service, key, 2)
    p = service.ctx.pipeline
    await p.seal_due(force=True)
    await p.advance_all()
    (batch,) = await batches(service)
    assert batch.state == "sealed" and "did not answer" in batch.last_error
    signer.start()  # back, with the same log
    await asyncio.sleep(0.35)
    await service.drain()
    (batch,) = await batches(service)
    assert batch.state == "anchored"
    assert (await anchored_roots(service, chain, deployment)).count(batch.root) == 1


async def test_slow_signer_times_out_and_the_retry_anchors_once(service, chain, deployment, procs, signer_home):
    """The signer answers after the registry gave up: it has signed (and logged) the batch, the
    registry did not store it; the retry gets the same root signed again, anchored once."""
    service.ctx.settings.signer_timeout_seconds = 0.5
    service.ctx.settings.signer_retry_seconds = 0.3
    signer = start_signer(procs, signer_home, deployment, test_delay=1.5)
    _, key = await onboard(service, signer)
    await issue(service, key, 2)
    p = service.ctx.pipeline
    await p.seal_due(force=True)
    await p.advance_all()
    (batch,) = await batches(service)
    assert batch.state == "sealed" and "did not answer" in batch.last_error
    service.ctx.settings.signer_timeout_seconds = 10
    await asyncio.sleep(1.5)  # the signer finishes the first request meanwhile
    await service.drain()
    (batch,) = await batches(service)
    assert batch.state == "anchored"
    assert (await anchored_roots(service, chain, deployment)).count(batch.root) == 1
    signed = [e for e in signer.entries() if e["kind"] == "batch"]
    assert len(signed) == 2 and {e["root"] for e in signed} == {batch.root}
    assert [e["new"] for e in signed] == [True, False]  # the second one was not counted as a new batch


async def test_onboarding_refuses_a_signer_that_does_not_hold_the_address(service, deployment, procs, signer_home):
    signer = start_signer(procs, signer_home, deployment)
    ref = {**signer.ref(), "address": "0x" + "11" * 20}
    r = await service.client.post("/v1/organisations", headers=service.h(service.admin_key), json={
        "name": "x", "identifier": make_uscc(prefix="114401"), "jurisdiction": "CN-GD", "roles": ["issuer"],
        "credentialTypes": ["BusinessLicence"], "signer": ref})
    assert r.status_code == 400 and "does not hold" in r.json()["error"]["message"]
    r = await service.client.post("/v1/organisations", headers=service.h(service.admin_key), json={
        "name": "x", "identifier": make_uscc(prefix="114401"), "jurisdiction": "CN-GD", "roles": ["issuer"],
        "credentialTypes": ["BusinessLicence"], "suite": "sm2-sm3", "signer": signer.ref()})
    assert r.status_code == 400 and "SM2 public key" in r.json()["error"]["message"]
    signer.kill()
    r = await service.client.post("/v1/organisations", headers=service.h(service.admin_key), json={
        "name": "x", "identifier": make_uscc(prefix="114401"), "jurisdiction": "CN-GD", "roles": ["issuer"],
        "credentialTypes": ["BusinessLicence"], "signer": signer.ref()})
    assert r.status_code == 503 and r.json()["error"]["code"] == "signer_unavailable"
