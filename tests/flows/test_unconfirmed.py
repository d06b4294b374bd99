"""A declaration whose transaction is not mined before the request gives up (block production
stalled on a real anvil, `evm_setAutomine false`): the caller gets a 503 naming the transaction,
a second declaration of the asset is refused while the first is in flight, and the service settles
it by itself through the outbox (registry/services/outbox.py, kind flow_declaration) — recorded
once mined, re-broadcast when the node lost it, removed when its nonce went to another transaction
or when it was never sent."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import select

from registry.db.models import AuditEntry, FlowDeclaration, OutboxTx
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


async def settle_declarations(ctx, *, grace: float | None = None) -> outbox.Report:
    return await outbox.settle(ctx, kinds=(outbox.Kind.FLOW_DECLARATION,), grace=grace)


async def _declaration_tx(ctx) -> OutboxTx:
    async with ctx.sessions() as s:
        (row,) = (
            await s.execute(select(OutboxTx).where(OutboxTx.kind == str(outbox.Kind.FLOW_DECLARATION)))
        ).scalars()
        return row


async def test_mined_late_is_recorded_with_its_audit_entry(world, stalled, monkeypatch):
    w, ctx = world, world.service.ctx
    sent = await _declare_unconfirmed(w, monkeypatch)
    # a request that is still waiting settles its own row: nothing is looked at before its next_attempt_at
    assert (await settle_declarations(ctx)).waiting == 0
    report = await settle_declarations(ctx, grace=0)
    assert (report.applied, report.dropped, report.waiting) == ([], [], 1)  # pending in the mempool
    tx = await _declaration_tx(ctx)
    assert (tx.state, tx.tx_hash, tx.attempts) == ("sent", sent["txHash"], 1)

    stalled("evm_mine", [])
    report = await settle_declarations(ctx, grace=0)
    (row,) = await _rows(ctx)
    assert report.applied == [f"declaration:{row.id}"] and report.dropped == [] and report.waiting == 0
    flow_id = row.flow_id
    r = await w.service.client.get(f"/v1/flows/{flow_id}", headers=w.h(w.regulator_key))
    assert r.status_code == 200, r.text
    assert r.json()["txHash"] == sent["txHash"] and r.json()["status"] == "pending"
    assert row.declaration_hash == sent["declarationHash"] and row.declared_at is not None
    assert (await _declaration_tx(ctx)).state == "confirmed"
    async with ctx.sessions() as s:
        entries = (
            (await s.execute(select(AuditEntry).where(AuditEntry.target == f"flow:{flow_id}")))
            .scalars()
            .all()
        )
    assert [(e.action, e.actor) for e in entries] == [("declare_flow", w.gz["name"])]
    assert (await w.service.client.get("/health")).json()["unconfirmedTransactions"] == {
        "anchors": 0,
        "statusChanges": 0,
        "flowDeclarations": 0,
        "flowDecisions": 0,
        "registrations": 0,
        "pledgeRegistry": 0,
        "oldestSeconds": None,
    }
    # settled once: a second pass finds nothing
    assert (await settle_declarations(ctx, grace=0)) == type(report)()
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
    assert (await settle_declarations(ctx, grace=0)).waiting == 1
    assert stalled("eth_getTransactionByHash", [tx_hash])["result"] is not None

    # lost again, and this time another transaction of the exporter's key takes its nonce
    stalled("anvil_dropTransaction", [tx_hash])
    (declared,) = await _rows(ctx)
    row = await _declaration_tx(ctx)
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
    report = await settle_declarations(ctx, grace=0)
    assert (report.applied, report.dropped) == ([], [f"declaration:{declared.id}"])
    assert await _rows(ctx) == []
    dropped = await _declaration_tx(ctx)
    assert dropped.state == "failed" and "nonce" in dropped.last_error

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


async def test_a_declaration_never_sent_is_undone_once_its_wait_is_over(world, monkeypatch):
    """The process died between writing the row (with its queued intent) and sending: nothing was
    sent, so once the intent's wait is over the settle pass fails it and removes the row, and the
    exporter may declare the asset again. Within the wait a request may still own it: a second
    declaration is refused meanwhile."""
    w, ctx = world, world.service.ctx
    body = declaration(w.credential_id, importer=w.hk, to="HK")

    async def dies_before_sending(*args, **kwargs):
        raise SystemExit("the process died before signing")  # not an error the request handles

    monkeypatch.setattr(ctx.chain, "transact", dies_before_sending)
    with pytest.raises(SystemExit):
        await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
    monkeypatch.undo()
    (row,) = await _rows(ctx)
    queued = await _declaration_tx(ctx)
    assert (queued.state, queued.tx_hash, queued.target) == ("queued", None, f"declaration:{row.id}")
    r = await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
    assert r.status_code == 409 and "not yet sent" in r.json()["error"]["message"], r.text
    assert (await w.service.client.get("/health")).json()["unconfirmedTransactions"]["flowDeclarations"] == 1
    assert (await settle_declarations(ctx)).dropped == []  # its wait is not over: a request may own it
    assert (await settle_declarations(ctx, grace=0)).dropped == [f"declaration:{row.id}"]
    assert await _rows(ctx) == []
    given_up = await _declaration_tx(ctx)
    assert given_up.state == "failed" and "never sent" in given_up.last_error
    r = await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
    assert r.status_code == 201, r.text


async def test_a_refused_declaration_leaves_no_row_and_a_failed_outbox_entry(world):
    """The chain refuses it when it is signed (a dry run, before anything leaves): the row goes and
    its intent is failed with the chain's reason, at once."""
    w, ctx = world, world.service.ctx
    body = declaration(w.credential_id, importer=w.hk, to="HK")
    async with ctx.sessions() as s:
        _, key, _ = await signing_key(s, w.gz["id"], ctx.settings.passphrase())
    # the exporter is no longer a participant on-chain: the ledger refuses its declarations
    gov = ctx.governance_key
    fn = ctx.chain.flows.functions.registerParticipant(Account.from_key(key).address, b"\x01" * 32)
    await ctx.chain.transact(gov, fn)
    try:
        r = await w.service.client.post("/v1/flows", headers=w.h(w.gz_key), json=body)
        assert r.status_code == 409 and r.json()["error"]["code"] == "chain_rejected", r.text
        assert await _rows(ctx) == []
        refused = await _declaration_tx(ctx)
        assert refused.state == "failed" and refused.tx_hash is None and refused.last_error
    finally:
        from registry.services.participants import participant_ids

        async with ctx.sessions() as s:
            ids = await participant_ids(s)
        await ctx.chain.transact(
            gov,
            ctx.chain.flows.functions.registerParticipant(
                Account.from_key(key).address, ids.id(w.gz["identifier"])
            ),
        )
