"""A declaration whose transaction is not mined before the request gives up (block production
stalled on a real anvil, `evm_setAutomine false`): the caller gets a 503 naming the transaction,
a second declaration of the asset is refused while the first is in flight, and the service settles
it by itself — recorded once mined, re-broadcast when the node lost it, removed when its nonce
went to another transaction."""

from __future__ import annotations

from datetime import UTC

import pytest
from eth_account import Account
from sqlalchemy import select

from registry.db.models import AuditEntry, FlowDeclaration
from registry.flows.ledger import settle_flows
from registry.services import outbox
from registry.services.orgs import signing_key
from tests.support.flows import declaration

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


@pytest.fixture()
def stalled(chain):
    """Block production off for the test (anvil mines only on evm_mine); back on afterwards."""
    rpc = chain.w3.provider.make_request
    rpc("evm_setAutomine", [False])
    try:
        yield rpc
    finally:
        rpc("evm_setAutomine", [True])
        rpc("evm_mine", [])


async def _declare_unconfirmed(w, monkeypatch) -> dict:
    w.service.configure(tx_timeout_seconds=1.0)
    body = declaration(w.credential_id, importer=w.hk, to="HK")
    r = await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "chain_unavailable"
    assert "not mined within 1 s" in err["message"] and "do not declare it again" in err["message"]
    assert err["details"]["txHash"].startswith("0x") and err["details"]["declarationHash"].startswith("0x")
    health = (await w.service.client.get("/health")).json()["unconfirmedTransactions"]
    assert health["flowDeclarations"] == 1 and health["statusChanges"] == 0 and health["oldestSeconds"] >= 0
    # in flight: the same asset cannot be declared again by the same exporter
    r = await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "declaration_unconfirmed"
    assert err["details"]["txHash"] in r.json()["error"]["message"]
    return err["details"]


async def _rows(ctx) -> list[FlowDeclaration]:
    async with ctx.sessions() as s:
        return list((await s.execute(select(FlowDeclaration))).scalars())


async def test_mined_late_is_recorded_with_its_audit_entry(world, stalled, monkeypatch):
    w, ctx = world, world.service.ctx
    sent = await _declare_unconfirmed(w, monkeypatch)
    # a request that is still waiting settles its own row: nothing is looked at within the grace period
    assert (await settle_flows(ctx)).waiting == 0
    report = await settle_flows(ctx, grace=0)
    assert (report.recorded, report.dropped, report.waiting) == ([], [], 1)  # pending in the mempool

    stalled("evm_mine", [])
    report = await settle_flows(ctx, grace=0)
    assert len(report.recorded) == 1 and report.dropped == [] and report.waiting == 0
    flow_id = report.recorded[0]
    r = await w.service.client.get(f"/v1/flows/{flow_id}", headers=w.h(w.regulator_key))
    assert r.status_code == 200, r.text
    assert r.json()["txHash"] == sent["txHash"] and r.json()["status"] == "pending"
    (row,) = await _rows(ctx)
    assert (
        row.declaration_hash == sent["declarationHash"] and row.raw_tx is None and row.declared_at is not None
    )
    async with ctx.sessions() as s:
        entries = (
            (await s.execute(select(AuditEntry).where(AuditEntry.target == f"flow:{flow_id}")))
            .scalars()
            .all()
        )
    assert [(e.action, e.actor) for e in entries] == [("declare_flow", w.gz["name"])]
    assert (await w.service.client.get("/health")).json()["unconfirmedTransactions"] == {
        "statusChanges": 0,
        "flowDeclarations": 0,
        "oldestSeconds": None,
    }
    # settled once: a second pass finds nothing
    assert (await settle_flows(ctx, grace=0)) == type(report)()
    # the regulator's decision stalls the same way: it is in the outbox, and the registry applies it
    # by itself once it is mined (a repeat meanwhile is refused, not sent twice)
    decision = {"decision": "approved", "reason": "standard contract filed"}
    r = await w.service.client.post(
        f"/v1/flows/{flow_id}/decision", headers=w.h(w.regulator_key), json=decision
    )
    assert r.status_code == 503 and "applies it by itself" in r.json()["error"]["message"], r.text
    decision_tx = r.json()["error"]["details"]["txHash"]
    r = await w.service.client.post(
        f"/v1/flows/{flow_id}/decision",
        headers=w.h(w.regulator_key),
        json={"decision": "approved", "reason": "a retry's own words"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "decision_unconfirmed", r.text
    assert r.json()["error"]["details"]["txHash"] == decision_tx
    stalled("evm_mine", [])
    stalled("evm_setAutomine", [True])
    r = await w.service.client.get(f"/v1/flows/{flow_id}", headers=w.h(w.regulator_key))
    assert r.json()["status"] == "pending"  # the request gave up before writing
    report = await outbox.settle(ctx, kinds=(outbox.Kind.FLOW_DECISION,), grace=0)
    assert report.applied == [f"flow:{flow_id}"]
    r = await w.service.client.get(f"/v1/flows/{flow_id}", headers=w.h(w.regulator_key))
    assert r.json()["status"] == "approved" and r.json()["decision"]["txHash"] == decision_tx, r.text
    async with ctx.sessions() as s:
        (entry,) = (
            (await s.execute(select(AuditEntry).where(AuditEntry.action == "decide_flow"))).scalars().all()
        )
    # the reason recorded is the one the regulator sent, with its transaction
    assert entry.details["reason"] == "standard contract filed" and entry.details["tx"] == decision_tx
    assert entry.details["settledFromChain"] is True
    assert (await outbox.settle(ctx, grace=0)) == type(report)()  # settled once
    r = await w.service.client.post(
        f"/v1/flows/{flow_id}/decision", headers=w.h(w.regulator_key), json=decision
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_decided", r.text


async def test_lost_transaction_is_rebroadcast_then_dropped_when_its_nonce_is_taken(
    world, stalled, monkeypatch
):
    w, ctx = world, world.service.ctx
    sent = await _declare_unconfirmed(w, monkeypatch)
    tx_hash = sent["txHash"]
    # the node forgets it (a restart without its mempool): the settler sends it again
    stalled("anvil_dropTransaction", [tx_hash])
    assert stalled("eth_getTransactionByHash", [tx_hash])["result"] is None
    assert (await settle_flows(ctx, grace=0)).waiting == 1
    assert stalled("eth_getTransactionByHash", [tx_hash])["result"] is not None

    # lost again, and this time another transaction of the exporter's key takes its nonce
    stalled("anvil_dropTransaction", [tx_hash])
    (row,) = await _rows(ctx)
    async with ctx.sessions() as s:
        _, key, _ = await signing_key(s, w.gz["id"], ctx.settings.passphrase())
    acct = Account.from_key(key)
    assert acct.address.lower() == row.sender.lower()
    other = acct.sign_transaction(
        {
            "to": acct.address,
            "value": 0,
            "gas": 21_000,
            "gasPrice": 20 * 10**9,
            "nonce": row.nonce,
            "chainId": ctx.chain.chain_id,
        }
    )
    stalled("eth_sendRawTransaction", ["0x" + bytes(other.raw_transaction).hex()])
    stalled("evm_mine", [])
    report = await settle_flows(ctx, grace=0)
    assert (report.recorded, report.dropped) == ([], [sent["declarationHash"]])
    assert await _rows(ctx) == []

    # nothing of it reached the chain, so the exporter declares the asset again, and it goes through
    stalled("evm_setAutomine", [True])
    r = await w.service.client.post(
        "/v1/flows", headers=w.h(w.gz_key), json=declaration(w.credential_id, importer=w.hk, to="HK")
    )
    assert r.status_code == 201, r.text
    assert r.json()["txHash"] != tx_hash
    flow_id = r.json()["flowId"]

    # a rejection that stalls, then a retry asking for the opposite: refused while the rejection is
    # unconfirmed; once the registry settles it, the chain's decision stands in the DB
    stalled("evm_setAutomine", [False])
    r = await w.service.client.post(
        f"/v1/flows/{flow_id}/decision",
        headers=w.h(w.regulator_key),
        json={"decision": "rejected", "reason": "no standard contract on file"},
    )
    assert r.status_code == 503, r.text
    stalled("evm_mine", [])
    stalled("evm_setAutomine", [True])
    changed = {"decision": "approved", "reason": "changed my mind"}
    r = await w.service.client.post(
        f"/v1/flows/{flow_id}/decision", headers=w.h(w.regulator_key), json=changed
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "decision_unconfirmed", r.text
    await outbox.settle(ctx, kinds=(outbox.Kind.FLOW_DECISION,), grace=0)
    r = await w.service.client.post(
        f"/v1/flows/{flow_id}/decision", headers=w.h(w.regulator_key), json=changed
    )
    assert r.status_code == 409 and r.json()["error"]["details"]["status"] == "rejected", r.text
    got = (await w.service.client.get(f"/v1/flows/{flow_id}", headers=w.h(w.regulator_key))).json()
    assert (got["status"], got["decision"]["reason"]) == ("rejected", "no standard contract on file"), got


async def test_a_row_that_never_got_a_transaction_is_removed(world):
    """The process died between writing the row and signing: nothing was sent, so it goes."""
    w, ctx = world, world.service.ctx
    body = declaration(w.credential_id, importer=w.hk, to="HK")
    async with ctx.sessions() as s, s.begin():
        from datetime import datetime

        cred_row = FlowDeclaration(
            declaration_hash="0x" + "ab" * 32,
            exporter_org_id=w.gz["id"],
            credential_id=w.credential_id,
            declaration=body,
            decision=1,
            asset_leaf="0x" + "cd" * 32,  # no FlowDeclared of it on the chain
            created_at=datetime.now(UTC),
        )
        s.add(cred_row)
    r = await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
    assert r.status_code == 409 and "not yet sent" in r.json()["error"]["message"], r.text
    assert (await settle_flows(ctx)).dropped == []  # younger than the grace period: a request may own it
    assert (await settle_flows(ctx, grace=0)).dropped == ["0x" + "ab" * 32]
    r = await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
    assert r.status_code == 201, r.text


async def test_a_row_without_its_transaction_is_found_on_the_chain_by_its_declaration_hash(
    world, stalled, monkeypatch
):
    """A row that lost its signed transaction (one written before the outbox existed) whose declaration
    did reach the chain: the settler finds it among the FlowDeclared events of its asset and records it."""
    w, ctx = world, world.service.ctx
    sent = await _declare_unconfirmed(w, monkeypatch)
    stalled("evm_mine", [])
    async with ctx.sessions() as s, s.begin():
        (row,) = (await s.execute(select(FlowDeclaration))).scalars().all()
        row.raw_tx = row.tx_hash = row.nonce = row.sender = None
    report = await settle_flows(ctx, grace=0)
    assert len(report.recorded) == 1 and report.dropped == [], report
    (row,) = await _rows(ctx)
    assert row.flow_id == report.recorded[0] and row.tx_hash == sent["txHash"]
    assert row.declaration_hash == sent["declarationHash"]
