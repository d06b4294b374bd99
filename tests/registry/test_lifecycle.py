"""Revoke / suspend / reinstate through the API, and everything that must agree with it: the
chain (statusOf), the DB, the hash-chained audit log, /v1/verify, the signed trust bundle and
offline verification with it; the on-chain rule that one issuer cannot change another's
credential; QR codes; /health, /metrics and the OpenAPI document."""

from __future__ import annotations

import io
import json
from datetime import UTC

import pytest
from sqlalchemy import select, text

from scripts.samples import business_licence_record, make_uscc

pytestmark = [pytest.mark.chain, pytest.mark.anyio]

STATUS = {0: "none", 1: "valid", 2: "revoked", 3: "suspended"}


async def _issue(service, key, n: int) -> list[str]:
    r = await service.client.post(
        "/v1/credentials/bulk?type=BusinessLicence&atomic=true",
        headers=service.h(key),
        json=[business_licence_record() for _ in range(n)],
    )
    assert r.status_code == 202, r.text
    await service.drain()
    return r.json()["ids"]


async def _leaf(service, cid) -> tuple[bytes, bytes]:
    """(root, leaf) of a credential, from the DB."""
    from registry.db.models import Batch, Credential
    from verifier import leaf_hash

    async with service.ctx.sessions() as s:
        cred = await s.get(Credential, cid)
        batch = await s.get(Batch, cred.batch_id)
        return (
            bytes.fromhex(batch.root[2:]),
            leaf_hash(bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])),
        )


async def _chain_status(service, cid) -> tuple[str, int]:
    root, leaf = await _leaf(service, cid)
    status, reason = await service.ctx.chain.anchors.functions.statusOf(root, leaf).call()
    return STATUS[status], reason


async def _db(service, cid) -> tuple[int, int, str | None]:
    from registry.db.models import Credential

    async with service.ctx.sessions() as s:
        c = await s.get(Credential, cid)
        return c.status, c.status_reason, c.status_tx


async def _audit(service, action=None) -> list:
    from registry.db.models import AuditEntry

    async with service.ctx.sessions() as s:
        q = select(AuditEntry).order_by(AuditEntry.seq)
        if action:
            q = q.where(AuditEntry.action == action)
        return list((await s.execute(q)).scalars())


async def _verify(service, key, copy) -> dict:
    r = await service.client.post("/v1/verify", headers=service.h(key), json={"credential": copy})
    assert r.status_code == 200, r.text
    return {c["name"]: c for c in r.json()["checks"]} | {"valid": r.json()["valid"]}


async def _copy(service, key, cid) -> dict:
    r = await service.client.get(f"/v1/credentials/{cid}", headers=service.h(key))
    assert r.status_code == 200 and r.json()["credential"], r.text
    return r.json()["credential"]


async def test_credential_suspend_reinstate_revoke(service):
    c, h = service.client, service.h
    org, key = await service.create_org(
        name="广州市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    cid, bystander = await _issue(service, key, 2)
    copy = await _copy(service, key, cid)
    assert await _chain_status(service, cid) == ("valid", 0)
    assert (await _verify(service, key, copy))["valid"]

    # suspend (reason by name) --------------------------------------------------------------
    r = await c.post(f"/v1/credentials/{cid}/suspend", headers=h(key), json={"reason": "courtOrder"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "suspended" and body["reason"] == 8 and body["txHash"].startswith("0x")
    assert await _chain_status(service, cid) == ("suspended", 8)
    assert await _db(service, cid) == (3, 8, body["txHash"])
    receipt = await service.ctx.chain.receipt(body["txHash"])
    assert receipt["status"] == 1 and receipt["blockNumber"] == body["blockNumber"]
    got = await _verify(service, key, copy)  # at once: the verify endpoint must not serve a stale bundle
    assert not got["valid"] and got["status"]["status"] == "failed", got
    assert "suspended" in got["status"]["reason"] and "court order" in got["status"]["reason"].lower(), got[
        "status"
    ]
    assert (await c.get(f"/v1/credentials/{cid}", headers=h(key))).json()["status"] == "suspended"
    assert (await _verify(service, key, await _copy(service, key, bystander)))[
        "valid"
    ]  # its neighbour is not

    # reinstate ------------------------------------------------------------------------------
    r = await c.post(f"/v1/credentials/{cid}/reinstate", headers=h(key))
    assert r.status_code == 200 and r.json()["status"] == "valid", r.text
    assert await _chain_status(service, cid) == ("valid", 0)
    assert (await _db(service, cid))[:2] == (1, 0)
    assert (await _verify(service, key, copy))["valid"]

    # revoke (reason by code), final -----------------------------------------------------------
    r = await c.post(f"/v1/credentials/{cid}/revoke", headers=h(key), json={"reason": 2})
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    revoke_tx = r.json()["txHash"]
    assert await _chain_status(service, cid) == ("revoked", 2)
    assert (await _db(service, cid))[:2] == (2, 2)
    got = await _verify(service, key, copy)
    assert not got["valid"] and got["status"]["status"] == "failed"
    reason = got["status"]["reason"]
    assert "revoked" in reason and org["name"] in reason and "superseded" in reason.lower(), reason
    for action in ("reinstate", "suspend"):
        r = await c.post(f"/v1/credentials/{cid}/{action}", headers=h(key))
        assert r.status_code == 409 and r.json()["error"]["code"] == "chain_rejected", r.text
    assert await _chain_status(service, cid) == ("revoked", 2)
    listed = (await c.get("/v1/credentials?status=revoked", headers=h(key))).json()
    assert [i["id"] for i in listed["items"]] == [cid]

    # the audit log has each change, with its transaction, and its chain is intact
    from registry.services.audit import verify_chain

    entries = {a: await _audit(service, f"{a}_credential") for a in ("suspend", "reinstate", "revoke")}
    assert all(len(v) == 1 and v[0].target == cid and v[0].actor == org["name"] for v in entries.values()), (
        entries
    )
    assert entries["revoke"][0].details == {"reason": 2, "tx": revoke_tx}
    assert entries["suspend"][0].details["reason"] == 8
    async with service.ctx.sessions() as s:
        ok, n, msg = await verify_chain(s)
    assert ok and n == len(await _audit(service)), msg


async def test_audit_chain_detects_tampering(service):
    from registry.services.audit import verify_chain

    _, key = await service.create_org(
        name="佛山市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    (cid,) = await _issue(service, key, 1)
    r = await service.client.post(f"/v1/credentials/{cid}/revoke", headers=service.h(key), json={"reason": 1})
    assert r.status_code == 200, r.text
    entries = await _audit(service)
    assert len(entries) >= 4  # bootstrap, create organisation, issue, revoke
    async with service.ctx.sessions() as s:
        assert (await verify_chain(s))[0]
    target = next(e for e in entries if e.action == "revoke_credential")
    for sql, params in (
        ("UPDATE audit_log SET actor = :v WHERE seq = :seq", {"v": "mallory"}),
        (
            "UPDATE audit_log SET target = :v WHERE seq = :seq",
            {"v": "urn:uuid:00000000-0000-0000-0000-000000000000"},
        ),
    ):
        async with service.ctx.sessions() as s, s.begin():
            original = (
                await s.execute(
                    text("SELECT actor, target FROM audit_log WHERE seq = :seq"), {"seq": target.seq}
                )
            ).one()
            await s.execute(text(sql), {**params, "seq": target.seq})
        async with service.ctx.sessions() as s:
            ok, n, msg = await verify_chain(s)
        assert not ok and str(target.seq) in msg, msg
        assert n == target.seq - entries[0].seq  # the entries before it still check
        async with service.ctx.sessions() as s, s.begin():
            await s.execute(
                text("UPDATE audit_log SET actor = :a, target = :t WHERE seq = :seq"),
                {"a": original.actor, "t": original.target, "seq": target.seq},
            )
        async with service.ctx.sessions() as s:
            assert (await verify_chain(s))[0]
    # a removed entry breaks the link of the next one
    first_issue = next(e for e in entries if e.action == "issue")
    async with service.ctx.sessions() as s, s.begin():
        await s.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": first_issue.seq})
    async with service.ctx.sessions() as s:
        ok, _, msg = await verify_chain(s)
    assert not ok, msg


async def test_batch_suspend_reinstate_revoke(service):
    c, h = service.client, service.h
    org, key = await service.create_org(
        name="深圳市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    ids = await _issue(service, key, 3)
    batch = (await c.get(f"/v1/credentials/{ids[0]}", headers=h(key))).json()["batchId"]
    copies = [await _copy(service, key, i) for i in ids]
    root = bytes.fromhex((await c.get(f"/v1/batches/{batch}", headers=h(key))).json()["root"][2:])
    anchors = service.ctx.chain.anchors.functions

    from datetime import datetime

    days = {datetime.now(UTC).strftime("%Y-%m-%d")}
    r = await c.post(f"/v1/batches/{batch}/suspend", headers=h(key), json={"reason": "dataInaccurate"})
    assert r.status_code == 200 and r.json()["status"] == "suspended", r.text
    days.add(datetime.now(UTC).strftime("%Y-%m-%d"))
    assert (await anchors.anchorOf(root).call())[6:8] == (3, 6)
    for cid in ids:
        assert await _chain_status(service, cid) == ("suspended", 6)
    b = (await c.get(f"/v1/batches/{batch}", headers=h(key))).json()
    assert b["status"] == "suspended" and b["statusReason"] == 6
    for copy in copies:
        got = await _verify(service, key, copy)
        assert not got["valid"] and "whole batch" in got["status"]["reason"], got["status"]
        # when, not "an unrecorded date"
        assert any(f"on {day}" in got["status"]["reason"] for day in days), got["status"]
    r = await c.post(f"/v1/batches/{batch}/reinstate", headers=h(key))
    assert r.status_code == 200, r.text
    assert all([(await _chain_status(service, cid)) == ("valid", 0) for cid in ids])
    assert all([(await _verify(service, key, copy))["valid"] for copy in copies])
    r = await c.post(f"/v1/batches/{batch}/revoke", headers=h(key), json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    assert all([(await _chain_status(service, cid)) == ("revoked", 1) for cid in ids])
    assert (await c.get(f"/v1/batches/{batch}", headers=h(key))).json()["status"] == "revoked"
    got = await _verify(service, key, copies[1])
    assert not got["valid"] and "revoked" in got["status"]["reason"], got
    assert [e.target for e in await _audit(service, "revoke_batch")] == [f"batch:{batch}"]
    assert len(await _audit(service, "suspend_batch")) == len(await _audit(service, "reinstate_batch")) == 1
    from registry.services.audit import verify_chain

    async with service.ctx.sessions() as s:
        assert (await verify_chain(s))[0]


async def test_one_issuer_cannot_change_anothers_credential_api_or_chain(service):
    from registry.core.errors import ChainRejected
    from registry.services.orgs import signing_key
    from registry.services.records import proof_in_batch

    c, h = service.client, service.h
    org_a, key_a = await service.create_org(
        name="甲市场监管局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    org_b, key_b = await service.create_org(
        name="乙市场监管局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    (cid,) = await _issue(service, key_a, 1)
    for action in ("revoke", "suspend", "reinstate"):
        r = await c.post(f"/v1/credentials/{cid}/{action}", headers=h(key_b))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    # a compromised API signing with B's chain key: the contract refuses it
    from registry.db.models import Batch, Credential

    async with service.ctx.sessions() as s:
        _, b_private, _ = await signing_key(s, org_b["id"], service.ctx.settings.passphrase())
        cred = await s.get(Credential, cid)
        batch = await s.get(Batch, cred.batch_id)
        target, subject = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
        root = bytes.fromhex(batch.root[2:])
        _, leaf = await _leaf(service, cid)
        proof = await proof_in_batch(s, batch.id, leaf)
    f = service.ctx.chain.anchors.functions
    for fn in (
        f.revokeCredential(root, target, subject, proof, 1),
        f.suspendCredential(root, target, subject, proof, 1),
        f.revokeBatch(root, 1),
        f.suspendBatch(root, 1),
    ):
        with pytest.raises(ChainRejected) as exc:
            await service.ctx.chain.transact(b_private, fn)
        assert exc.value.details["error"] == "NotStatusAuthority", exc.value.details
    assert await _chain_status(service, cid) == ("valid", 0)
    # the issuer itself may (same call, its own key)
    async with service.ctx.sessions() as s:
        _, a_private, _ = await signing_key(s, org_a["id"], service.ctx.settings.passphrase())
    await service.ctx.chain.transact(a_private, f.suspendCredential(root, target, subject, proof, 1))
    assert await _chain_status(service, cid) == ("suspended", 1)


async def test_trust_bundle_offline_verification(service):
    from verifier import TrustBundle, verify
    from verifier.errors import InvalidBundle

    c, h = service.client, service.h
    _, key = await service.create_org(
        name="广州市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    _, bank = await service.create_org(name="示例银行广州分行", identifier=make_uscc(), roles=["verifier"])
    cid, other = await _issue(service, key, 2)
    copy = await _copy(service, key, cid)
    holder_file = json.dumps(copy, ensure_ascii=False)

    r = await c.get("/v1/trust-bundle", headers=h(bank))
    assert r.status_code == 200, r.text
    before = r.json()
    bundle = TrustBundle.load(before, operators=[service.ctx.operator_address])
    result = verify(json.loads(holder_file), trust=bundle)
    assert result.valid, [(x.name, x.status, x.reason) for x in result.checks]
    # a bundle signed by someone else, or altered, is refused
    with pytest.raises(InvalidBundle):
        TrustBundle.load(before, operators=["0x" + "11" * 20])
    tampered = json.loads(json.dumps(before))
    tampered["block"]["number"] += 1
    with pytest.raises(InvalidBundle):
        TrustBundle.load(tampered, operators=[service.ctx.operator_address])

    r = await c.post(f"/v1/credentials/{cid}/revoke", headers=h(key), json={"reason": "cessationOfOperation"})
    assert r.status_code == 200, r.text
    # the old bundle is a snapshot: offline, the credential still looks valid as of its block
    assert verify(json.loads(holder_file), trust=bundle).valid
    after = (await c.get("/v1/trust-bundle", headers=h(bank))).json()
    bundle2 = TrustBundle.load(after, operators=[service.ctx.operator_address])
    result = verify(json.loads(holder_file), trust=bundle2)
    assert not result.valid
    failed = {x.name: x.reason for x in result.failed}
    assert set(failed) == {"status"}, failed
    assert "revoked" in failed["status"], failed
    assert verify(await _copy(service, key, other), trust=bundle2).valid  # the other one in the batch is fine


async def test_trust_bundle_records_when_an_issuer_was_suspended(service):
    """FORMAT.md §8 (issue 24): the exported bundle carries the block and time of an issuer's
    suspension, so offline its earlier batches stay valid and the reason says when."""
    from verifier import TrustBundle, verify

    c, h = service.client, service.h
    _, key = await service.create_org(
        name="广州市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    _, bank = await service.create_org(name="示例银行广州分行", identifier=make_uscc(), roles=["verifier"])
    (cid,) = await _issue(service, key, 1)
    holder = await _copy(service, key, cid)
    issuer_id = holder["proof"]["issuerId"]
    chain = service.ctx.chain
    receipt = await chain.transact(
        service.ctx.governance_key, chain.issuers.functions.suspendIssuer(issuer_id, 1)
    )
    mined = int(receipt["blockNumber"])
    mined_at = int((await chain._rpc(chain.w3.eth.get_block(mined)))["timestamp"])
    data = (await c.get("/v1/trust-bundle", headers=h(bank))).json()
    entry = next(x for x in data["issuers"] if x["id"] == issuer_id)
    assert entry["status"] == "suspended"
    assert (entry["statusBlock"], entry["statusTimestamp"]) == (mined, mined_at)
    assert all(
        (x["statusBlock"], x["statusTimestamp"]) == (0, 0) for x in data["issuers"] if x["id"] != issuer_id
    )
    bundle = TrustBundle.load(data, operators=[service.ctx.operator_address])
    result = verify(holder, trust=bundle)
    assert result.valid, [(x.name, x.status, x.reason) for x in result.checks]
    assert f"block {mined}, after this batch was anchored" in result.check("issuer").reason


async def test_qr_codes_encode_the_verify_link(service):
    import qrcode
    from PIL import Image

    from registry.services.qr import verify_link

    c, h = service.client, service.h
    _, key = await service.create_org(
        name="广州市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    (cid,) = await _issue(service, key, 1)
    link = verify_link(service.ctx.settings.public_url, cid)
    assert link.startswith(service.ctx.settings.public_url.rstrip("/") + "/verify?credential=urn%3Auuid%3A")

    r = await c.get(f"/v1/credentials/{cid}/qr.png", headers=h(key))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    # read the modules off the image and compare with the link encoded independently
    expected = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    expected.add_data(link)
    expected.make(fit=True)
    matrix = expected.get_matrix()  # includes the border
    img = Image.open(io.BytesIO(r.content)).convert("L")
    box = img.size[0] // len(matrix)
    assert img.size == (box * len(matrix), box * len(matrix)), (img.size, len(matrix))
    seen = [
        [img.getpixel((x * box + box // 2, y * box + box // 2)) < 128 for x in range(len(matrix))]
        for y in range(len(matrix))
    ]
    assert seen == matrix, "the PNG's modules are not the QR code of the verify link"
    # a different link gives a different code (the comparison means something)
    other = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    other.add_data(link.replace(cid[-4:], "0000"))
    other.make(fit=True)
    assert other.get_matrix() != matrix

    r = await c.get(f"/v1/credentials/{cid}/qr.svg", headers=h(key))
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content[:300]
    import qrcode.image.svg

    ref = qrcode.make(link, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)
    buf = io.BytesIO()
    ref.save(buf)
    assert r.content == buf.getvalue()
    # a QR code for a credential that is not anchored yet is fine (the link still resolves)
    r = await c.post(
        "/v1/credentials",
        headers=h(key),
        json={"type": "BusinessLicence", "record": business_licence_record()},
    )
    r = await c.get(f"/v1/credentials/{r.json()['id']}/qr.png", headers=h(key))
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"


async def test_health_metrics_and_openapi(service):
    from tests.support.service import app_routes

    c = service.client
    r = await c.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "chain": "ok"}, body
    assert body["chainId"] == service.ctx.deployment.chain_id and body["pendingCredentialsAndBatches"] == 0

    await c.get("/v1/organisations", headers=service.h(service.admin_key))
    await c.get("/v1/organisations/999", headers=service.h(service.admin_key))
    r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.headers
    metrics = r.text
    assert "# TYPE certledger_http_requests_total counter" in metrics
    assert 'certledger_http_requests_total{method="GET",route="/v1/organisations",status="200"}' in metrics
    assert 'route="/v1/organisations/{org_id}",status="404"' in metrics  # the route template, not the URL
    assert "certledger_http_request_seconds_bucket" in metrics

    r = await c.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"]
    documented = {
        (m.upper(), path)
        for path, ops in doc["paths"].items()
        for m in ops
        if m in ("get", "post", "put", "patch", "delete")
    }
    try:
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(service.app.routes))
    except ImportError:
        routes = list(service.app.routes)
    hidden = {
        (m, r.path) for r in routes if not getattr(r, "include_in_schema", True) for m in (r.methods or ())
    }
    expected = {x for x in app_routes(service.app) if x not in hidden}
    assert documented == expected, (sorted(expected - documented), sorted(documented - expected))
    assert {("POST", "/v1/credentials"), ("GET", "/v1/trust-bundle"), ("GET", "/health")} <= documented
    # /docs serves the UI for it
    r = await c.get("/docs")
    assert r.status_code == 200 and "openapi.json" in r.text


async def test_a_change_mined_after_the_request_gave_up_is_applied_by_the_service(
    service, chain, monkeypatch
):
    """Block production stalls (anvil `evm_setAutomine false`): a revocation and a batch suspension
    answer 503 naming their transactions; until they are mined another change of the same credential
    or batch is refused (409), so nothing is sent twice; once mined, the service applies them itself —
    DB, audit log (by the organisation that asked, with the transaction) and /v1/verify follow the chain."""
    from registry.db.models import OutboxTx
    from registry.services.lifecycle import settle_changes

    c, h = service.client, service.h
    org, key = await service.create_org(
        name="佛山市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    cid, other = await _issue(service, key, 2)
    copy = await _copy(service, key, cid)
    batch_id = (await c.get(f"/v1/credentials/{cid}", headers=h(key))).json()["batchId"]
    service.configure(tx_timeout_seconds=1.0)
    rpc = chain.w3.provider.make_request
    rpc("evm_setAutomine", [False])
    try:
        r = await c.post(f"/v1/credentials/{cid}/revoke", headers=h(key), json={"reason": "keyCompromise"})
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert (
            err["code"] == "chain_unavailable" and "applies it by itself once it is mined" in err["message"]
        ), err
        tx_hash = err["details"]["txHash"]
        r = await c.post(f"/v1/batches/{batch_id}/suspend", headers=h(key), json={"reason": "courtOrder"})
        assert r.status_code == 503, r.text
        for path in (f"/v1/credentials/{cid}/suspend", f"/v1/batches/{batch_id}/revoke"):
            r = await c.post(path, headers=h(key), json={"reason": 1})
            assert r.status_code == 409 and r.json()["error"]["code"] == "change_unconfirmed", r.text
        report = await settle_changes(service.ctx, grace=0)
        assert (report.applied, report.dropped, report.waiting) == ([], [], 2)
        assert (await c.get("/health")).json()["unconfirmedTransactions"]["statusChanges"] == 2
        rpc("evm_mine", [])
    finally:
        rpc("evm_setAutomine", [True])
    assert (await service.ctx.chain.receipt(tx_hash))["status"] == 1
    root, leaf = await _leaf(service, cid)
    assert (await service.ctx.chain.anchors.functions.credentialStatusOf(root, leaf).call())[:2] == (2, 1)
    assert (await _db(service, cid))[:2] == (1, 0)  # the request gave up before the DB was written
    assert (await settle_changes(service.ctx)).applied == []  # within the grace period: left to the request

    report = await settle_changes(service.ctx, grace=0)
    assert (
        sorted(report.applied) == sorted([f"credential:{cid}", f"batch:{batch_id}"]) and report.dropped == []
    )
    assert await _db(service, cid) == (2, 1, tx_hash)
    (entry,) = await _audit(service, "revoke_credential")
    assert (
        entry.details == {"reason": 1, "tx": tx_hash, "settledFromChain": True} and entry.actor == org["name"]
    )
    assert (await _audit(service, "suspend_batch"))[0].details["reason"] == 8
    got = await _verify(service, key, copy)  # (the batch's suspension is what it reports first)
    assert not got["valid"] and "the whole batch was suspended" in got["status"]["reason"], got
    assert not (await _verify(service, key, await _copy(service, key, other)))["valid"]
    async with service.ctx.sessions() as s:
        rows = (await s.execute(select(OutboxTx).where(OutboxTx.kind == "status_change"))).scalars().all()
    assert sorted((r.target, r.state, r.attempts) for r in rows) == sorted(
        [(f"credential:{cid}", "confirmed", 1), (f"batch:{batch_id}", "confirmed", 1)]
    )
    assert all(r.last_error is None for r in rows)
    assert await settle_changes(service.ctx, grace=0) == type(report)()

    # the DB holds these now: a plain repeat is refused by the chain, as before
    for path in (f"/v1/credentials/{cid}/revoke", f"/v1/batches/{batch_id}/suspend"):
        r = await c.post(path, headers=h(key), json={"reason": 1})
        assert r.status_code == 409 and r.json()["error"]["code"] == "chain_rejected", r.text
    from registry.services.audit import verify_chain

    async with service.ctx.sessions() as s:
        ok, _, msg = await verify_chain(s)
    assert ok, msg


async def test_a_change_the_registry_lost_track_of_is_taken_from_the_chain(service, monkeypatch):
    """The chain holds a status the DB does not and no pending change explains it (say, a transaction
    sent before pending changes were recorded): repeating the request takes the chain's word instead
    of failing on AlreadyRevoked; a change dropped before it was mined is forgotten."""
    from registry.services.lifecycle import settle_changes
    from registry.services.orgs import signing_key

    c, h, ctx = service.client, service.h, service.ctx
    org, key = await service.create_org(
        name="江门市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    (cid,) = await _issue(service, key, 1)
    root, leaf = await _leaf(service, cid)
    from registry.db.models import Batch, Credential

    async with ctx.sessions() as s:
        cred = await s.get(Credential, cid)
        batch = await s.get(Batch, cred.batch_id)
        from registry.services.records import proof_in_batch

        proof = await proof_in_batch(s, batch.id, leaf)
        _, issuer_key, _ = await signing_key(s, org["id"], ctx.settings.passphrase())
    await ctx.chain.transact(
        issuer_key,
        ctx.chain.anchors.functions.revokeCredential(
            root, bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:]), proof, 6
        ),
    )
    assert (await _db(service, cid))[:2] == (1, 0)
    r = await c.post(f"/v1/credentials/{cid}/revoke", headers=h(key), json={"reason": "superseded"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason"], r.json()["settledFromChain"]) == ("revoked", 6, True)
    assert (await _db(service, cid))[:2] == (2, 6)  # the chain's reason, not the repeat's
    (entry,) = await _audit(service, "revoke_credential")
    assert entry.details == {"reason": 6, "tx": None, "settledFromChain": True}
    assert (await settle_changes(ctx, grace=0)).applied == []

    # the same for a batch, whose anchor record keeps no date: the day comes from its status event's block
    from datetime import datetime

    (other,) = await _issue(service, key, 1)
    copy = await _copy(service, key, other)
    batch_id = (await c.get(f"/v1/credentials/{other}", headers=h(key))).json()["batchId"]
    other_root, _ = await _leaf(service, other)
    receipt = await ctx.chain.transact(issuer_key, ctx.chain.anchors.functions.suspendBatch(other_root, 3))
    stamp = (await ctx.chain.w3.eth.get_block(receipt["blockNumber"]))["timestamp"]
    r = await c.post(f"/v1/batches/{batch_id}/suspend", headers=h(key), json={"reason": "superseded"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason"], r.json()["settledFromChain"]) == ("suspended", 3, True)
    got = await _verify(service, key, copy)
    day = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
    assert not got["valid"] and f"on {day}" in got["status"]["reason"], got["status"]
    assert "unrecorded" not in got["status"]["reason"]


async def test_a_change_is_applied_once_when_the_settler_gets_there_first(service, monkeypatch):
    """The settler runs between the request's receipt and its DB write (a request slower than its
    grace period): the change and its audit entry are in the DB once, and the request still answers."""
    from registry.services.lifecycle import settle_changes

    c, h, ctx = service.client, service.h, service.ctx
    _, key = await service.create_org(
        name="珠海市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    (cid,) = await _issue(service, key, 1)
    transact, settled = ctx.chain.transact, []

    async def transact_then_settle(*args, **kwargs):
        receipt = await transact(*args, **kwargs)
        settled.append(await settle_changes(ctx, grace=0))
        return receipt

    monkeypatch.setattr(ctx.chain, "transact", transact_then_settle)
    r = await c.post(f"/v1/credentials/{cid}/suspend", headers=h(key), json={"reason": "courtOrder"})
    assert r.status_code == 200 and r.json()["status"] == "suspended", r.text
    assert settled[0].applied == [f"credential:{cid}"]
    assert (await _db(service, cid))[:2] == (3, 8)
    assert len(await _audit(service, "suspend_credential")) == 1


async def test_audit_adopts_a_status_changed_on_the_chain_alone_when_asked(service):
    """A revocation and a batch suspension made on the chain outside the registry: the audit reports
    them; --adopt-chain-status writes the chain's status, reason and day into the DB with audit
    entries, leaving alone a credential whose own change is still pending; the audit is then clean."""
    from datetime import datetime

    from registry.db.models import Batch, Credential, OutboxTx, as_utc
    from registry.services.orgs import signing_key
    from registry.services.reconcile import adopt_chain_status, audit
    from registry.services.records import proof_in_batch

    ctx = service.ctx
    org, key = await service.create_org(
        name="韶关市市场监督管理局", identifier=make_uscc(), roles=["issuer"], types=["BusinessLicence"]
    )
    revoked, waiting = await _issue(service, key, 2)
    (member,) = await _issue(service, key, 1)
    copy = await _copy(service, key, revoked)
    async with ctx.sessions() as s:
        _, issuer_key, _ = await signing_key(s, org["id"], ctx.settings.passphrase())
        creds = {cid: await s.get(Credential, cid) for cid in (revoked, waiting, member)}
        batches = {cid: await s.get(Batch, cred.batch_id) for cid, cred in creds.items()}
        proofs = {
            cid: await proof_in_batch(s, cred.batch_id, (await _leaf(service, cid))[1])
            for cid, cred in creds.items()
            if cid != member
        }
    anchors = ctx.chain.anchors.functions
    stamps = {}
    for cid in (revoked, waiting):
        cred = creds[cid]
        target, subject = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
        root, _ = await _leaf(service, cid)
        receipt = await ctx.chain.transact(
            issuer_key, anchors.revokeCredential(root, target, subject, proofs[cid], 4)
        )
        stamps[cid] = (await ctx.chain.w3.eth.get_block(receipt["blockNumber"]))["timestamp"]
    receipt = await ctx.chain.transact(
        issuer_key, anchors.suspendBatch(bytes.fromhex(batches[member].root[2:]), 6)
    )
    batch_stamp = (await ctx.chain.w3.eth.get_block(receipt["blockNumber"]))["timestamp"]
    async with ctx.sessions() as s, s.begin():  # a change of `waiting` the registry sent and has not settled
        s.add(
            OutboxTx(
                kind="status_change",
                state="sent",
                target=f"credential:{waiting}",
                org_id=org["id"],
                payload={"action": "revoke", "reason": 4, "actor": org["name"], "request_id": "r"},
                raw_tx=b"\x01",
                tx_hash="0x" + "77" * 32,
                nonce=0,
                sender="0x" + "00" * 20,
                attempts=0,
                next_attempt_at=datetime.now(UTC),
                created_at=datetime.now(UTC),
            )
        )

    report = await audit(ctx, spot=0)
    found = {(d.kind, d.target, d.chain_status, d.reason) for d in report.status_differences}
    assert found == {
        ("credential", revoked, 2, 4),
        ("credential", waiting, 2, 4),
        ("batch", str(batches[member].id), 3, 6),
    }, report.differences
    assert (await _db(service, revoked))[:2] == (1, 0)  # the audit itself repairs nothing

    adopted, skipped = await adopt_chain_status(ctx, report)
    assert len(adopted) == 2 and len(skipped) == 1 and skipped[0].startswith(f"credential {waiting}:"), (
        skipped
    )
    assert (await _db(service, revoked)) == (2, 4, None) and (await _db(service, waiting))[:2] == (1, 0)
    entries = await _audit(service, "revoke_credential") + await _audit(service, "suspend_batch")
    assert {(e.actor, e.target) for e in entries} == {
        ("certledger audit", revoked),
        ("certledger audit", f"batch:{batches[member].id}"),
    }
    assert all(e.details["settledFromChain"] for e in entries)
    day = datetime.fromtimestamp(stamps[revoked], UTC).strftime("%Y-%m-%d")
    got = await _verify(service, key, copy)
    assert not got["valid"] and f"on {day}" in got["status"]["reason"], got["status"]
    async with ctx.sessions() as s:
        b = await s.get(Batch, batches[member].id)
        assert (b.status, b.status_reason, int(as_utc(b.status_changed_at).timestamp())) == (
            3,
            6,
            batch_stamp,
        )
    # the trust bundle carries the block's time whatever the host's time zone (SQLite reads it back naive)
    import os
    import time

    from registry.services.bundle import export_bundle

    zone = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    try:
        bundle = await export_bundle(ctx)
    finally:
        if zone is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = zone
        time.tzset()
    (anchor,) = [a for a in bundle["anchors"] if a["root"] == batches[member].root]
    assert anchor["statusTimestamp"] == batch_stamp

    again = await audit(ctx, spot=0)
    assert [(d.kind, d.target) for d in again.status_differences] == [("credential", waiting)]
    assert (await adopt_chain_status(ctx, again))[0] == []  # still waiting on its pending change
