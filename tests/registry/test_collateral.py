"""Data assets as loan collateral through the registry (issue #22): the data authority registers a
certificate's asset and opens and resolves a dispute; a bank pledges it with the holder's and its
own EIP-712 consent; a second bank's pledge is refused on-chain (AlreadyPledged), and any pledge
while disputed (AssetDisputed); the first bank releases. Each step is relayed through the outbox,
audited once with its transaction, and the chain's state is what the answer says. Every bad input
is refused with its error. On SQLite and PostgreSQL against the session anvil; the SIGKILL case is
tests/registry/test_crash.py."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from sqlalchemy import select

from scripts.pledge_consents import pledge_signature, release_signature
from scripts.samples import data_asset_record, make_uscc
from verifier import credential_asset_key

pytestmark = [pytest.mark.chain, pytest.mark.anyio]

HOLDER = "0x" + "a1" * 32
BANK_A = "0x" + "b2" * 32
BANK_B = "0x" + "c3" * 32


async def _world(service):
    c, h = service.client, service.h
    authority, key = await service.create_org(
        name="广东省政务服务和数据管理局",
        identifier=make_uscc(prefix="114400"),
        roles=["issuer"],
        types=["DataAssetCertificate"],
    )
    _, other = await service.create_org(
        name="佛山市市场监督管理局",
        identifier=make_uscc(prefix="114406"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    _, bank = await service.create_org(
        name="示例银行", identifier=make_uscc(prefix="914401"), roles=["verifier"]
    )
    r = await c.post(
        "/v1/credentials",
        headers=h(key),
        json={"type": "DataAssetCertificate", "record": data_asset_record()},
    )
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    await service.drain()
    cert = (await c.get(f"/v1/credentials/{cid}", headers=h(key))).json()["credential"]
    return key, other, bank, cid, credential_asset_key(cert)


def _pledge_body(
    service, asset_key: bytes, nonce: int, lender_key: str, loan: str, rank: int = 1, holder_key: str = HOLDER
) -> dict:
    d = service.ctx.deployment
    deadline = int(time.time()) + 3600
    common = dict(
        asset_key=asset_key,
        rank=rank,
        holder=Account.from_key(holder_key).address,
        lender=Account.from_key(lender_key).address,
        loan_ref=loan,
        nonce=nonce,
        deadline=deadline,
    )
    return {
        "rank": rank,
        "lender": Account.from_key(lender_key).address,
        "loanRef": loan,
        "deadline": deadline,
        "holderSignature": pledge_signature(holder_key, d.chain_id, d.pledge_registry, **common),
        "lenderSignature": pledge_signature(lender_key, d.chain_id, d.pledge_registry, **common),
    }


async def test_register_pledge_refuse_a_second_dispute_release(service):
    from registry.db.models import AuditEntry, OutboxTx

    c, h = service.client, service.h
    key, other, bank, cid, asset_key = await _world(service)
    base = f"/v1/credentials/{cid}"

    # the data authority registers the asset; another issuer and a bank may not
    for who in (other, bank):
        r = await c.post(
            f"{base}/asset/register", headers=h(who), json={"holder": Account.from_key(HOLDER).address}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    r = await c.post(
        f"{base}/asset/register", headers=h(key), json={"holder": Account.from_key(HOLDER).address}
    )
    assert r.status_code == 200, r.text
    reg = r.json()
    assert reg["asset"]["state"] == "registered" and reg["asset"]["registrationNo"] >= 1
    assert reg["asset"]["holder"] == Account.from_key(HOLDER).address and reg["txHash"].startswith("0x")
    again = await c.post(
        f"{base}/asset/register", headers=h(key), json={"holder": Account.from_key(HOLDER).address}
    )
    assert again.status_code == 409 and again.json()["error"]["details"]["error"] == "AssetAlreadyRegistered"

    # bank A pledges with both consents (relayed by the registry: the bank's own API key)
    r = await c.post(
        f"{base}/pledges", headers=h(bank), json=_pledge_body(service, asset_key, 0, BANK_A, "GZ-LOAN-1")
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["pledge"]["state"] == "active" and got["pledge"]["lender"] == Account.from_key(BANK_A).address
    assert got["asset"]["activePledges"] == 1 and got["asset"]["nonce"] == 1  # the next consents sign nonce 1

    # bank B's own pledge of the same rank, consented by the holder too, is refused on-chain
    r = await c.post(
        f"{base}/pledges", headers=h(bank), json=_pledge_body(service, asset_key, 1, BANK_B, "SZ-LOAN-9")
    )
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "AlreadyPledged", r.text
    # a consent the holder did not give (signed by the bank in its place) is refused
    forged = _pledge_body(service, asset_key, 1, BANK_B, "SZ-LOAN-9", rank=2)
    forged["holderSignature"] = forged["lenderSignature"]
    r = await c.post(f"{base}/pledges", headers=h(bank), json=forged)
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "BadHolderSignature", r.text

    # a dispute blocks pledging until resolved
    r = await c.post(f"{base}/asset/dispute", headers=h(key), json={"caseRef": "(2026)粤01民初1号"[:10]})
    assert r.status_code == 200 and r.json()["asset"]["disputed"] is True, r.text
    r = await c.post(
        f"{base}/pledges", headers=h(bank), json=_pledge_body(service, asset_key, 1, BANK_B, "SZ-LOAN-9")
    )
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "AssetDisputed", r.text
    r = await c.post(f"{base}/asset/resolve", headers=h(key), json={"caseRef": "(2026)粤01民初1号"[:10]})
    assert r.status_code == 200 and r.json()["asset"]["disputed"] is False, r.text

    # the asset cannot be cancelled while pledged; bank A releases; then bank B can pledge
    r = await c.post(f"{base}/asset/cancel", headers=h(key), json={"reason": 1})
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "AssetPledged", r.text
    d = service.ctx.deployment
    bad = release_signature(BANK_B, d.chain_id, d.pledge_registry, asset_key=asset_key, rank=1, nonce=1)
    r = await c.post(f"{base}/pledges/1/release", headers=h(bank), json={"lenderSignature": bad})
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "BadLenderSignature", r.text
    sig = release_signature(BANK_A, d.chain_id, d.pledge_registry, asset_key=asset_key, rank=1, nonce=1)
    r = await c.post(f"{base}/pledges/1/release", headers=h(bank), json={"lenderSignature": sig})
    assert r.status_code == 200 and r.json()["pledge"]["state"] == "released", r.text
    assert r.json()["asset"]["nonce"] == 2 and r.json()["asset"]["activePledges"] == 0
    stale = _pledge_body(service, asset_key, 1, BANK_B, "SZ-LOAN-9")  # consents bound to the old nonce
    r = await c.post(f"{base}/pledges", headers=h(bank), json=stale)
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "BadHolderSignature", r.text
    r = await c.post(
        f"{base}/pledges", headers=h(bank), json=_pledge_body(service, asset_key, 2, BANK_B, "SZ-LOAN-9")
    )
    assert r.status_code == 200 and r.json()["pledge"]["lender"] == Account.from_key(BANK_B).address, r.text

    # the authority cancels bank B's pledge (a court order, through it)
    r = await c.post(f"{base}/pledges/1/cancel", headers=h(bank), json={"reason": 8})
    assert r.status_code == 403, r.text
    r = await c.post(f"{base}/pledges/1/cancel", headers=h(key), json={"reason": 8})
    assert r.status_code == 200 and r.json()["pledge"]["state"] == "cancelled", r.text

    # each mined step audited once with its transaction; every outbox row settled
    async with service.ctx.sessions() as s:
        entries = list(
            (
                await s.execute(
                    select(AuditEntry).where(AuditEntry.action.like("asset_%")).order_by(AuditEntry.seq)
                )
            )
            .scalars()
            .all()
        )
        rows = list(
            (await s.execute(select(OutboxTx).where(OutboxTx.kind == "pledge_registry"))).scalars().all()
        )
    assert [e.action for e in entries] == [
        "asset_register",
        "asset_pledge",
        "asset_dispute",
        "asset_resolve",
        "asset_release",
        "asset_pledge",
        "asset_cancel_pledge",
    ]
    assert all(e.details["tx"].startswith("0x") and e.details["credentialId"] == cid for e in entries)
    assert {r.state for r in rows} <= {"confirmed", "failed"}
    assert sum(r.state == "confirmed" for r in rows) == len(entries)
    assert "Signature" not in str([e.details for e in entries])  # consents are not copied into the log

    # the regulator's trace of the asset shows its history (PledgeRegistry events)
    _, regulator = await service.create_org(
        name="广东省数据跨境监管局", identifier=make_uscc(prefix="114400"), roles=["regulator"]
    )
    trace = (await c.get("/v1/flows/trace", params={"asset": cid}, headers=h(regulator))).json()
    assert [e["event"] for e in trace["assetHistory"]] == [
        "AssetRegistered",
        "Pledged",
        "DisputeOpened",
        "DisputeResolved",
        "PledgeReleased",
        "Pledged",
        "PledgeCancelled",
    ], trace.get("assetHistory")
    assert trace["assetHistory"][1]["args"]["loanRef"] == "GZ-LOAN-1"


BAD_INPUT = [
    ("asset/register", {"holder": "0x1234"}, 400, "holder"),
    ("asset/register", {"holder": "0x" + "11" * 20, "ranks": 0}, 400, "ranks"),
    ("asset/dispute", {"caseRef": "x" * 40}, 400, "caseRef"),
    ("asset/dispute", {}, 400, "caseRef"),
    ("pledges", {"lender": "0x" + "22" * 20, "loanRef": "L", "deadline": 1}, 400, "holderSignature"),
    ("pledges/0/release", {"lenderSignature": "0x" + "44" * 65}, 400, "rank"),
    ("pledges/1/release", {"lenderSignature": "0x44"}, 400, "lenderSignature"),
    ("asset/register", {"holder": "0x" + "11" * 20, "extra": 1}, 400, "extra"),
]


async def test_bad_input_is_refused_before_anything_is_sent(service):
    from registry.db.models import OutboxTx

    c, h = service.client, service.h
    key, _, _, cid, _ = await _world(service)
    for path, body, status, match in BAD_INPUT:
        r = await c.post(f"/v1/credentials/{cid}/{path}", headers=h(key), json=body)
        assert r.status_code == status and match in r.text, (path, body, r.text)
    async with service.ctx.sessions() as s:
        assert (await s.execute(select(OutboxTx).where(OutboxTx.kind == "pledge_registry"))).first() is None


async def test_a_credential_that_is_not_a_data_asset_or_does_not_exist(service):
    c, h = service.client, service.h
    _, key = await service.create_org(
        name="市场监督管理局",
        identifier=make_uscc(prefix="114401"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    from scripts.samples import business_licence_record

    r = await c.post(
        "/v1/credentials",
        headers=h(key),
        json={"type": "BusinessLicence", "record": business_licence_record()},
    )
    cid = r.json()["id"]
    r = await c.post(
        f"/v1/credentials/{cid}/asset/register", headers=h(key), json={"holder": "0x" + "11" * 20}
    )
    assert r.status_code == 409 and "names no data asset" in r.json()["error"]["message"], r.text
    r = await c.post(
        "/v1/credentials/urn:uuid:nope/asset/register", headers=h(key), json={"holder": "0x" + "11" * 20}
    )
    assert r.status_code == 404, r.text


async def test_a_revoked_certificates_asset_is_not_registered_or_pledged(service):
    c, h = service.client, service.h
    key, _, bank, cid, asset_key = await _world(service)
    base = f"/v1/credentials/{cid}"
    r = await c.post(
        f"{base}/asset/register", headers=h(key), json={"holder": Account.from_key(HOLDER).address}
    )
    assert r.status_code == 200, r.text
    r = await c.post(f"{base}/suspend", headers=h(key), json={"reason": "courtOrder"})
    assert r.status_code == 200, r.text
    r = await c.post(
        f"{base}/pledges", headers=h(bank), json=_pledge_body(service, asset_key, 0, BANK_A, "L-1")
    )
    assert (
        r.status_code == 409 and "is suspended: its asset cannot be pledged" in r.json()["error"]["message"]
    )


async def test_a_transfer_links_the_reissued_certificate_and_moves_the_holders_consent(service):
    """转移登记: the data authority re-issues the certificate to the new holder, transfers the asset
    on-chain naming the new certificate (AssetTransferred carries its targetHash), and revokes the
    old one; from then on the new holder's consent is the one a pledge needs. Refused while pledged,
    for a certificate of another asset, and for the old certificate itself."""
    from registry.db.models import AuditEntry

    c, h = service.client, service.h
    key, _, bank, cid, asset_key = await _world(service)
    base = f"/v1/credentials/{cid}"
    r = await c.post(
        f"{base}/asset/register", headers=h(key), json={"holder": Account.from_key(HOLDER).address}
    )
    assert r.status_code == 200, r.text
    old = (await c.get(base, headers=h(key))).json()["credential"]
    new_record = data_asset_record()
    new_record["credentialSubject"] = {
        **old["credentialSubject"],
        "unifiedSocialCreditCode": make_uscc(prefix="914406"),
        "holderName": "佛山市新持有人科技有限公司",
    }
    for k in ("id",):
        new_record["credentialSubject"].pop(k, None)
    r = await c.post(
        "/v1/credentials", headers=h(key), json={"type": "DataAssetCertificate", "record": new_record}
    )
    assert r.status_code == 202, r.text
    new_id = r.json()["id"]
    another = data_asset_record()
    another["credentialSubject"]["assetId"] = "GD-DA-2026-999999"  # another asset of the same authority
    other = await c.post(
        "/v1/credentials", headers=h(key), json={"type": "DataAssetCertificate", "record": another}
    )
    await service.drain()
    new_holder = "0x" + "d4" * 32

    # refused: the old certificate itself; a certificate of another asset
    body = {"holder": Account.from_key(new_holder).address, "newCredentialId": cid}
    r = await c.post(f"{base}/asset/transfer", headers=h(key), json=body)
    assert r.status_code == 400 and "not the old one" in r.text, r.text
    r = await c.post(
        f"{base}/asset/transfer", headers=h(key), json=body | {"newCredentialId": other.json()["id"]}
    )
    assert r.status_code == 409 and "not a certificate of the same data asset" in r.text, r.text
    # refused while pledged
    r = await c.post(
        f"{base}/pledges", headers=h(bank), json=_pledge_body(service, asset_key, 0, BANK_A, "L-1")
    )
    assert r.status_code == 200, r.text
    r = await c.post(f"{base}/asset/transfer", headers=h(key), json=body | {"newCredentialId": new_id})
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "AssetPledged", r.text
    d = service.ctx.deployment
    sig = release_signature(BANK_A, d.chain_id, d.pledge_registry, asset_key=asset_key, rank=1, nonce=1)
    assert (
        await c.post(f"{base}/pledges/1/release", headers=h(bank), json={"lenderSignature": sig})
    ).status_code == 200

    r = await c.post(f"{base}/asset/transfer", headers=h(key), json=body | {"newCredentialId": new_id})
    assert r.status_code == 200, r.text
    assert r.json()["asset"]["holder"] == Account.from_key(new_holder).address
    reg = service.ctx.chain.pledges
    receipt = await service.ctx.chain.receipt(r.json()["txHash"])
    (event,) = reg.events.AssetTransferred().process_receipt(receipt)
    new_target = (await c.get(f"/v1/credentials/{new_id}", headers=h(key))).json()["credential"]["proof"][
        "targetHash"
    ]
    assert "0x" + bytes(event["args"]["newCertificate"]).hex() == new_target
    r = await c.post(f"{base}/revoke", headers=h(key), json={"reason": "superseded"})
    assert r.status_code == 200, r.text

    # the old holder's consent no longer pledges it; the new holder's does (through the new certificate)
    stale = _pledge_body(service, asset_key, 2, BANK_A, "L-2")  # signed by the old holder
    r = await c.post(f"/v1/credentials/{new_id}/pledges", headers=h(bank), json=stale)
    assert r.status_code == 409 and r.json()["error"]["details"]["error"] == "BadHolderSignature", r.text
    fresh = _pledge_body(service, asset_key, 2, BANK_A, "L-2", holder_key=new_holder)
    r = await c.post(f"/v1/credentials/{new_id}/pledges", headers=h(bank), json=fresh)
    assert r.status_code == 200 and r.json()["pledge"]["state"] == "active", r.text
    r = await c.post(f"{base}/pledges", headers=h(bank), json=fresh)  # the revoked old certificate
    assert r.status_code == 409 and "is revoked" in r.json()["error"]["message"], r.text
    r = await c.post(f"{base}/asset/change", headers=h(key), json={"changeDigest": "0x" + "ab" * 32})
    assert r.status_code == 200, r.text
    async with service.ctx.sessions() as s:
        actions = [
            e.action
            for e in (await s.execute(select(AuditEntry).where(AuditEntry.action.like("asset_%")))).scalars()
        ]
    assert actions.count("asset_transfer") == 1 and actions.count("asset_change") == 1
