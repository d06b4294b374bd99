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
from scripts.samples import business_licence_record, make_uscc
from tests.registry.signer_procs import SignerProcess
from tests.support.service import anchor_txs

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
    r = await service.client.post(
        "/v1/organisations",
        headers=service.h(service.admin_key),
        json={
            "name": "广州市市场监督管理局",
            "identifier": make_uscc(prefix="114401"),
            "jurisdiction": "CN-GD",
            "roles": ["issuer"],
            "suite": suite,
            "credentialTypes": ["BusinessLicence"],
            "signer": signer.ref(),
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["organisation"], r.json()["apiKey"]


async def issue(service, key, n=3) -> list[str]:
    body = "\n".join(json.dumps(business_licence_record()) for _ in range(n)).encode()
    r = await service.client.post(
        "/v1/credentials/bulk?type=BusinessLicence",
        content=body,
        headers={**service.h(key), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 202, r.text
    return r.json()["ids"]


async def batches(service) -> list[Batch]:
    async with service.ctx.sessions() as s:
        return (await s.execute(select(Batch).order_by(Batch.id))).scalars().all()


async def anchored_roots(service, chain, deployment) -> list[str]:
    """Every BatchAnchored event of the AnchorRegistry (the chain's own record of anchors)."""
    contract = chain.w3.eth.contract(
        address=chain.w3.to_checksum_address(deployment.anchor_registry),
        abi=__import__("ledger_node.artifacts", fromlist=["x"]).load_artifact("AnchorRegistry").abi,
    )
    return [
        "0x" + bytes(e["args"]["root"]).hex() for e in contract.events.BatchAnchored().get_logs(from_block=0)
    ]


@pytest.mark.parametrize("suite", ["secp256k1", "sm2-sm3"])
async def test_an_issuer_with_its_own_signer_issues_verifiable_credentials(
    service, deployment, procs, signer_home, suite
):
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
    r = await service.client.post(
        "/v1/verify", headers=service.h(key), json={"credential": r.json()["credential"]}
    )
    assert r.json()["valid"], r.json()

    # a status change of the issuer's own credential is signed by its signer too (eth_signTransaction)
    r = await service.client.post(
        f"/v1/credentials/{ids[1]}/revoke", headers=service.h(key), json={"reason": "dataInaccurate"}
    )
    assert r.status_code == 200, r.text
    tx = [e for e in signer.entries() if e["kind"] == "transaction"]
    assert [(e["function"], e["root"]) for e in tx] == [("revokeCredential", batch.root)]
    assert tx[0]["transaction"]["hash"] == r.json()["txHash"]


async def test_a_refusing_signer_leaves_the_batch_sealed_with_the_reason(
    service, deployment, procs, signer_home
):
    # the issuer's policy allows data asset certificates only; the registry sends a business licence batch
    signer = start_signer(procs, signer_home, deployment, policy={"credentialTypes": [3]})
    _, key = await onboard(service, signer)
    await issue(service, key, 2)
    p = service.pipeline
    await p.seal_due(force=True)
    await p.advance_all()
    (batch,) = await batches(service)
    assert batch.state == "sealed" and batch.root is None and batch.tx_hash is None
    assert await anchor_txs(service.ctx) == []
    assert "signer refused" in batch.last_error and "credential type 1" in batch.last_error
    refused = [e for e in signer.entries() if e["kind"] == "refused"]
    assert [e["code"] for e in refused] == ["credential_type_not_allowed"]
    assert not [e for e in signer.entries() if e["kind"] == "batch"]


async def test_signer_down_then_back_anchors_the_batch_once(service, chain, deployment, procs, signer_home):
    service.configure(signer_retry_seconds=0.3)
    signer = start_signer(procs, signer_home, deployment)
    _, key = await onboard(service, signer)
    signer.kill()  # the issuer's signer goes down (SIGKILL)
    await issue(service, key, 2)
    p = service.pipeline
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


async def test_slow_signer_times_out_and_the_retry_anchors_once(
    service, chain, deployment, procs, signer_home
):
    """The signer answers after the registry gave up: it has signed (and logged) the batch, the
    registry did not store it; the retry gets the same root signed again, anchored once."""
    service.configure(signer_timeout_seconds=0.5)
    service.configure(signer_retry_seconds=0.3)
    signer = start_signer(procs, signer_home, deployment, test_delay=1.5)
    _, key = await onboard(service, signer)
    await issue(service, key, 2)
    p = service.pipeline
    await p.seal_due(force=True)
    await p.advance_all()
    (batch,) = await batches(service)
    assert batch.state == "sealed" and "did not answer" in batch.last_error
    service.configure(signer_timeout_seconds=10)
    await asyncio.sleep(1.5)  # the signer finishes the first request meanwhile
    await service.drain()
    (batch,) = await batches(service)
    assert batch.state == "anchored"
    assert (await anchored_roots(service, chain, deployment)).count(batch.root) == 1
    signed = [e for e in signer.entries() if e["kind"] == "batch"]
    assert len(signed) == 2 and {e["root"] for e in signed} == {batch.root}
    assert [e["new"] for e in signed] == [True, False]  # the second one was not counted as a new batch


async def test_onboarding_refuses_a_signer_that_does_not_hold_the_address(
    service, deployment, procs, signer_home
):
    signer = start_signer(procs, signer_home, deployment)
    ref = {**signer.ref(), "address": "0x" + "11" * 20}
    r = await service.client.post(
        "/v1/organisations",
        headers=service.h(service.admin_key),
        json={
            "name": "x",
            "identifier": make_uscc(prefix="114401"),
            "jurisdiction": "CN-GD",
            "roles": ["issuer"],
            "credentialTypes": ["BusinessLicence"],
            "signer": ref,
        },
    )
    assert r.status_code == 400 and "does not hold" in r.json()["error"]["message"]
    r = await service.client.post(
        "/v1/organisations",
        headers=service.h(service.admin_key),
        json={
            "name": "x",
            "identifier": make_uscc(prefix="114401"),
            "jurisdiction": "CN-GD",
            "roles": ["issuer"],
            "credentialTypes": ["BusinessLicence"],
            "suite": "sm2-sm3",
            "signer": signer.ref(),
        },
    )
    assert r.status_code == 400 and "SM2 public key" in r.json()["error"]["message"]
    signer.kill()
    r = await service.client.post(
        "/v1/organisations",
        headers=service.h(service.admin_key),
        json={
            "name": "x",
            "identifier": make_uscc(prefix="114401"),
            "jurisdiction": "CN-GD",
            "roles": ["issuer"],
            "credentialTypes": ["BusinessLicence"],
            "signer": signer.ref(),
        },
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "signer_unavailable"


async def test_the_operators_passphrase_cannot_mint_a_licence_for_an_issuer_with_its_own_signer(
    service, chain, deployment, procs, signer_home
):
    """The attack of issue 18: the registry's keystore passphrase is stolen, with the database and
    every keystore the operator holds. A licence minted with them for an issuer that keeps its key
    in its own signer is refused by the chain (anchors are accepted only from the issuer's address)
    and by a bank's verifier (the root is not signed by the issuer's registered key). (The
    governance key, which could re-register the issuer, is the data authority's, not the operator's:
    outside the development chain the registry needs CERTLEDGER_GOVERNANCE_KEY given to it.)"""
    from eth_account import Account
    from sqlalchemy import update

    from registry.db.models import Organisation
    from registry.services.keys import decrypt_secret, new_key
    from registry.services.orgs import signing_key
    from verifier import RpcTrust, verify

    signer = start_signer(procs, signer_home, deployment)
    victim, victim_api_key = await onboard(service, signer)
    custodial, _ = await service.create_org(
        name="广州市数据局",
        identifier=make_uscc(prefix="114401"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    ctx = service.ctx

    # everything the operator holds: the passphrase, every keystore in the DB, the operator keystore
    passphrase = ctx.settings.passphrase()
    async with ctx.sessions() as s:
        rows = (await s.execute(select(SigningKey))).scalars().all()
    stolen = [decrypt_secret(k, passphrase) for r in rows for k in (r.keystore, r.sm2_keystore) if k]
    stolen.append(ctx.operator_key)
    assert signer.address not in {Account.from_key(k).address.lower() for k in stolen}

    # 1. the registry is turned against the issuer: its key row replaced by one the attacker made
    forged = new_key(passphrase)
    async with ctx.sessions() as s, s.begin():
        s.add(
            SigningKey(
                org_id=victim["id"],
                version=2,
                suite="secp256k1",
                address=forged.address,
                keystore=forged.keystore,
                created_at=__import__("datetime").datetime.now(),
            )
        )
        await s.execute(update(Organisation).where(Organisation.id == victim["id"]).values(signer_url=None))
    (cid,) = await issue(service, victim_api_key, 1)
    p = service.pipeline
    await p.seal_due(force=True)
    await p.advance_all()
    (batch,) = await batches(service)
    assert batch.state == "signed" and batch.tx_hash is None  # signed with the forged key, never sent:
    assert await anchor_txs(service.ctx) == []
    assert (
        "NotAnIssuer" in batch.last_error or "refused" in batch.last_error
    )  # the chain's dry run refuses it
    assert batch.root not in await anchored_roots(service, chain, deployment)

    # 2. anchored from an account the operator does hold (a custodial issuer's): it is that issuer's anchor
    async with ctx.sessions() as s:
        _, custodial_key, _ = await signing_key(s, custodial["id"], passphrase)
    receipt = await ctx.chain.transact(
        custodial_key,
        ctx.chain.anchors.functions.anchor(bytes.fromhex(batch.root[2:]), batch.credential_type, batch.count),
    )
    async with ctx.sessions() as s, s.begin():  # the attacker writes the DB as if all went well
        await s.execute(
            update(Batch)
            .where(Batch.id == batch.id)
            .values(
                state="anchored",
                block_number=receipt["blockNumber"],
                tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            )
        )
    r = await service.client.get(f"/v1/credentials/{cid}", headers=service.h(victim_api_key))
    forged_licence = r.json()["credential"]
    assert forged_licence["issuer"]["id"].endswith(victim["identifier"]) or victim["name"] in json.dumps(
        forged_licence["issuer"], ensure_ascii=False
    )

    # 3. a bank verifying against the chain refuses it
    result = verify(forged_licence, trust=RpcTrust(chain.rpc_url, deployment.to_json()))
    failed = {c.name: c.reason for c in result.checks if c.status == "failed"}
    assert not result.valid and "issuer" in failed, failed


@pytest.mark.slow
@pytest.mark.parametrize("point", ["signed", "sending", "broadcast"])
def test_sigkill_of_the_registry_around_the_signer_call_anchors_once(
    chain, deployment, tmp_path, procs, point
):
    """The real service, its issuer signing with a real signer process, SIGKILLed right after the
    signer's answer was committed (`signed`, `sending`) or broadcast: after a restart every credential
    is anchored, each root once."""
    import httpx

    from tests.support.procs import ServiceProcess, write_manifest

    signer = start_signer(procs, tmp_path / "signer", deployment)
    manifest = write_manifest(tmp_path / "deployment.json", deployment)
    svc = ServiceProcess(
        tmp_path / "data",
        env={
            "CERTLEDGER_RPC_URL": chain.rpc_url,
            "CERTLEDGER_MANIFEST": str(manifest),
            "CERTLEDGER_KEYSTORE_PASSPHRASE": "crash-test",
            "CERTLEDGER_BATCH_SIZE": "20",
            "CERTLEDGER_BATCH_WINDOW_SECONDS": "0.2",
            "CERTLEDGER_INDEXER_ENABLED": "false",
        },
        name="remote-crash",
    )
    try:
        svc.start()
        admin = {"Authorization": f"Bearer {svc.admin_key()}"}
        r = httpx.post(
            svc.url + "/v1/organisations",
            headers=admin,
            timeout=60,
            json={
                "name": "广州市市场监督管理局",
                "identifier": make_uscc(prefix="114401"),
                "jurisdiction": "CN-GD",
                "roles": ["issuer"],
                "credentialTypes": ["BusinessLicence"],
                "signer": signer.ref(),
            },
        )
        assert r.status_code == 201, r.text
        key = r.json()["apiKey"]
        svc.kill()
        svc.start(crash_after=f"{point}:1")
        body = "\n".join(json.dumps(business_licence_record()) for _ in range(60)).encode()

        def upload():
            try:
                return httpx.post(
                    svc.url + "/v1/credentials/bulk?type=BusinessLicence",
                    content=body,
                    timeout=60,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
                )
            except httpx.HTTPError:  # killed before it answered: sent again after the restart
                return None

        r = upload()
        assert svc.wait_dead(60), "the crash point was not reached"
        svc.start()
        if r is None:
            r = upload()
        assert r.status_code == 202, r.text
        deadline = __import__("time").monotonic() + 60
        while __import__("time").monotonic() < deadline:
            items = httpx.get(svc.url + "/v1/batches?limit=100", headers=admin, timeout=10).json()["items"]
            if items and sum(b["count"] for b in items if b["state"] == "anchored") == 60:
                break
            __import__("time").sleep(0.3)
        else:
            raise AssertionError(f"not all anchored: {items}")
    finally:
        svc.kill()
    contract = chain.w3.eth.contract(
        address=chain.w3.to_checksum_address(deployment.anchor_registry),
        abi=__import__("ledger_node.artifacts", fromlist=["x"]).load_artifact("AnchorRegistry").abi,
    )
    roots = [
        "0x" + bytes(e["args"]["root"]).hex() for e in contract.events.BatchAnchored().get_logs(from_block=0)
    ]
    assert sorted(roots) == sorted(b["root"] for b in items) and len(set(roots)) == len(roots) == 3
    assert {e["root"] for e in signer.entries() if e["kind"] == "batch"} == set(roots)
