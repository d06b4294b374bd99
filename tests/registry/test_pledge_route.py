"""GET /v1/credentials/{id}/pledge on SQLite and PostgreSQL against a real anvil: a fresh pledge
proof (docs/FORMAT.md §17.3) that the verifier's pledge check accepts — not pledged, then pledged
after a pledge registered on-chain with both parties' consent — and the refusals."""

import json

import pytest
from eth_account import Account

from ledger_node import DEV_KEYS
from ledger_node.chain import Chain
from scripts.samples import business_licence_record, data_asset_record, make_uscc

pytestmark = [pytest.mark.chain, pytest.mark.anyio]
HOLDER, BANK = DEV_KEYS[7], DEV_KEYS[8]
FAR = 2**63 - 1


def _error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code and body["message"] and "details" in body
    return body


async def test_pledge_proof_route(service, chain):
    from verifier import TrustBundle
    from verifier._pledge_proof import credential_asset_key, loan_ref_bytes, pledge_check

    c, h = service.client, service.h
    _, key = await service.create_org(
        name="广东省政务服务和数据管理局",
        identifier=make_uscc(prefix="114400"),
        roles=["issuer"],
        types=["DataAssetCertificate", "BusinessLicence"],
    )
    r = await c.post(
        "/v1/credentials",
        headers=h(key),
        json={"type": "DataAssetCertificate", "record": data_asset_record()},
    )
    assert r.status_code == 202, r.text
    cert_id = r.json()["id"]
    r = await c.post(
        "/v1/credentials",
        headers=h(key),
        json={"type": "BusinessLicence", "record": business_licence_record()},
    )
    licence_id = r.json()["id"]
    await service.drain()
    cert = (await c.get(f"/v1/credentials/{cert_id}", headers=h(key))).json()["credential"]
    bundle = (await c.get("/v1/trust-bundle", headers=h(key))).json()
    trust = TrustBundle.load(bundle, operators=[service.ctx.operator_address])
    registry = service.ctx.deployment.pledge_registry
    assert trust.contracts["pledgeRegistry"] == registry.lower()  # the signed bundle names it

    async def check():
        r = await c.get(f"/v1/credentials/{cert_id}/pledge")  # public: no API key
        assert r.status_code == 200, r.text
        assert r.json()["assetKey"] == "0x" + credential_asset_key(cert).hex()
        return pledge_check(
            cert,
            r.json()["pledgeProof"],
            pledge_registry=registry,
            trust=trust,
            lender_names={Account.from_key(BANK).address.lower(): "示例银行"},
        )

    got = await check()
    assert got.status == "failed" and "not registered" in got.reason  # the authority has not registered it

    sync = Chain(chain.rpc_url)
    reg = sync.contract("PledgeRegistry", registry)
    akey = credential_asset_key(cert)
    sync.transact(reg.functions.registerAsset(akey, Account.from_key(HOLDER).address, 1), DEV_KEYS[0])
    got = await check()
    assert got.status == "passed" and "not pledged" in got.reason, got
    from scripts.pledge_consents import pledge_signature, ref32

    consent = dict(
        asset_key=akey,
        rank=1,
        holder=Account.from_key(HOLDER).address,
        lender=Account.from_key(BANK).address,
        loan_ref="ROUTE-LOAN",
        nonce=0,
        deadline=FAR,
    )
    chain_id = sync.w3.eth.chain_id
    sigs = [bytes.fromhex(pledge_signature(k, chain_id, reg.address, **consent)[2:]) for k in (HOLDER, BANK)]
    msg = {"lender": consent["lender"], "loanRef": ref32("ROUTE-LOAN")}
    assert msg["loanRef"] == loan_ref_bytes("ROUTE-LOAN")  # the registry's and the verifier's padding agree
    sync.transact(reg.functions.pledge(akey, 1, msg["lender"], msg["loanRef"], FAR, *sigs), BANK)
    got = await check()
    assert got.status == "passed" and "pledged to 示例银行" in got.reason and "ROUTE-LOAN" in got.reason, got
    history = (await c.get(f"/v1/credentials/{cert_id}/pledge")).json()["history"]
    assert [e["event"] for e in history] == ["AssetRegistered", "Pledged"], history
    assert history[1]["args"]["lender"] == Account.from_key(BANK).address.lower()
    assert history[1]["args"]["loanRef"] == "ROUTE-LOAN" and history[0]["args"]["registrationNo"] >= 1
    # the proof carries the history, and the check shows it as the registry's word (not proven)
    blocks = [e["blockNumber"] for e in history]
    assert got.reason.endswith(
        f"; history (the registry's word, not proven): registered (block {blocks[0]}) → "
        f"pledged to 示例银行 (block {blocks[1]})"
    ), got.reason

    _error(await c.get(f"/v1/credentials/{licence_id}/pledge"), 409, "conflict")  # no data asset
    _error(
        await c.get("/v1/credentials/urn:uuid:00000000-0000-4000-8000-000000000000/pledge"), 404, "not_found"
    )
    assert json.loads(json.dumps(got.to_json()))["name"] == "pledge"


def test_pledge_cli_refuses_with_one_line(tmp_path):
    """`certledger pledge proof` against no registry, and against a path that is not one: exit 1, one line."""
    import subprocess
    import sys
    from pathlib import Path

    from ledger_node.node import free_port

    exe = Path(sys.executable).parent / "certledger"
    proc = subprocess.run(
        [
            str(exe),
            "pledge",
            "proof",
            "urn:uuid:x",
            str(tmp_path / "p.json"),
            "--url",
            f"http://127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "cannot reach the registry" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr and not (tmp_path / "p.json").exists()
