"""An organisation's on-chain identity goes through the outbox (registry/services/onboarding.py):
its registration transactions are queued with its row, sent after the commit, and finished by the
settle pass when the request could not (block production stalled on a real anvil here, as in
tests/flows/test_unconfirmed.py). Nobody onboards it twice; the issuer gets one issuer id."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from registry.db.models import AuditEntry, OutboxTx
from registry.services import outbox
from scripts.samples import make_uscc

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


@pytest.fixture()
def stalled(chain):
    rpc = chain.w3.provider.make_request
    rpc("evm_setAutomine", [False])
    try:
        yield rpc
    finally:
        rpc("evm_setAutomine", [True])
        rpc("evm_mine", [])


async def _rows(ctx, org_id: int) -> dict[str, OutboxTx]:
    async with ctx.sessions() as s:
        rows = (
            await s.execute(
                select(OutboxTx).where(
                    OutboxTx.kind == str(outbox.Kind.REGISTRATION), OutboxTx.org_id == org_id
                )
            )
        ).scalars()
        return {r.payload["step"]: r for r in rows}


async def test_an_issuer_is_registered_once_through_the_outbox(service, chain):
    org, _ = await service.create_org(
        name="广州市市场监督管理局",
        identifier=make_uscc(prefix="114401"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    rows = await _rows(service.ctx, org["id"])
    assert {step: r.state for step, r in rows.items()} == {"fund": "confirmed", "issuer": "confirmed"}
    assert org["issuerId"] is not None
    ir = chain.contract("IssuerRegistry", service.ctx.deployment.issuer_registry)
    assert ir.functions.issuerOf(org["chainAccount"]).call() == org["issuerId"]
    async with service.ctx.sessions() as s:
        entries = (
            await s.execute(select(AuditEntry).where(AuditEntry.action == "register_on_chain"))
        ).scalars()
        steps = sorted((e.details["step"], e.details.get("issuerId")) for e in entries)
    assert steps == [("fund", None), ("issuer", org["issuerId"])]


async def test_onboarding_the_node_did_not_mine_in_time_is_finished_by_the_settle_pass(
    service, chain, stalled
):
    """The request answers 201 with the steps still open; the settle pass mines them in: the one
    sent is applied once mined, the one the request never sent is sent by the pass itself."""
    service.configure(tx_timeout_seconds=1.0)
    r = await service.client.post(
        "/v1/organisations",
        headers=service.h(service.admin_key),
        json={
            "name": "广东省政务服务和数据管理局",
            "identifier": make_uscc(prefix="114400"),
            "jurisdiction": "CN-GD",
            "roles": ["issuer"],
            "credentialTypes": ["DataAssetCertificate"],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    org = body["organisation"]
    assert body["onChainPending"] == ["fund", "issuer"] and org["issuerId"] is None and body["apiKey"]
    rows = await _rows(service.ctx, org["id"])
    assert (rows["fund"].state, rows["issuer"].state) == ("sent", "queued")
    health = (await service.client.get("/health")).json()["unconfirmedTransactions"]
    assert health["registrations"] == 2
    ctx = service.ctx
    report = await outbox.settle(ctx, kinds=(outbox.Kind.REGISTRATION,))  # within the wait: nothing
    assert (report.applied, report.waiting) == ([], 0)
    stalled("evm_mine", [])
    report = await outbox.settle(ctx, kinds=(outbox.Kind.REGISTRATION,), grace=0)
    assert report.applied == [f"org:{org['id']}:fund"] and report.waiting == 1  # the issuer step: sent now
    assert (await _rows(ctx, org["id"]))["issuer"].state == "sent"
    stalled("evm_mine", [])
    report = await outbox.settle(ctx, kinds=(outbox.Kind.REGISTRATION,), grace=0)
    assert report.applied == [f"org:{org['id']}:issuer"]
    got = (
        await service.client.get(f"/v1/organisations/{org['id']}", headers=service.h(service.admin_key))
    ).json()
    ir = chain.contract("IssuerRegistry", ctx.deployment.issuer_registry)
    assert (
        got["issuerId"] is not None and ir.functions.issuerOf(org["chainAccount"]).call() == got["issuerId"]
    )
    assert (await outbox.settle(ctx, grace=0)) == outbox.Report()  # settled once
    assert {s: r.state for s, r in (await _rows(ctx, org["id"])).items()} == {
        "fund": "confirmed",
        "issuer": "confirmed",
    }


async def test_an_exporter_and_a_regulator_get_their_roles_on_the_ledger(service, chain):
    exporter, _ = await service.create_org(
        name="广州市示例能源科技有限公司", identifier=make_uscc(prefix="914401"), roles=["exporter"]
    )
    regulator, _ = await service.create_org(
        name="国家数据局 数据出境监管", identifier=make_uscc(prefix="110000"), roles=["regulator"]
    )
    from eth_utils import keccak

    from ledger_node.deploy import REGULATOR_ROLE
    from registry.services.participants import participant_ids

    async with service.ctx.sessions() as s:
        ids = await participant_ids(s)
    ledger = chain.contract("DataFlowLedger", service.ctx.deployment.data_flow_ledger)
    on_chain = ledger.functions.participantOf(exporter["chainAccount"]).call()
    # the keyed id (FORMAT.md §11), not the bare hash a dictionary of credit codes would find
    assert on_chain == ids.id(exporter["identifier"]) != keccak(text=exporter["identifier"])
    assert ledger.functions.hasRole(REGULATOR_ROLE, regulator["chainAccount"]).call()
    assert set(await _rows(service.ctx, exporter["id"])) == {"fund", "participant"}
    assert set(await _rows(service.ctx, regulator["id"])) == {"fund", "regulator"}


async def test_an_issuer_with_an_invalid_credit_code_is_refused_before_anything_is_written(service):
    r = await service.client.post(
        "/v1/organisations",
        headers=service.h(service.admin_key),
        json={
            "name": "x",
            "identifier": "91440101MA59TEST0X",
            "jurisdiction": "CN-GD",
            "roles": ["issuer"],
            "credentialTypes": ["BusinessLicence"],
        },
    )
    assert r.status_code == 400 and "GB 32100" in r.json()["error"]["message"], r.text
    async with service.ctx.sessions() as s:
        assert (await s.execute(select(OutboxTx).where(OutboxTx.kind == "registration"))).first() is None
