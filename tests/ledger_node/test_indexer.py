"""The chain indexer against a real anvil, on SQLite and PostgreSQL: every event type into the
projection, catch-up over >= 10,000 events, spot checks against the contracts' views, and
"projection == a fresh rebuild from the chain's events"."""

from __future__ import annotations

import pytest

from tests.support import indexer as S

pytestmark = pytest.mark.chain


async def _spot(rpc_url, deployment, database_url, sample=40):
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from ledger_node.indexer import spot_check

    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as s:
            return await spot_check(rpc_url, deployment, s, sample=sample, seed=1)
    finally:
        await engine.dispose()


def test_every_event_type_projected(bulk_anvil, bulk_deployment, database_url):
    from ledger_node.indexer import chain_snapshot

    loader = S.Loader(bulk_anvil.url, bulk_deployment)
    keys = loader.mixed_history()
    stats, snap = S.run(S.index_once(bulk_anvil.url, bulk_deployment, database_url))
    assert stats.events == len(snap["events"]) and stats.end_block == loader.head()
    names = {e["event"] for e in snap["events"]}
    assert names >= {
        "IssuerRegistered",
        "CredentialTypeSet",
        "IssuerSuspended",
        "IssuerReinstated",
        "IssuerKeyRotated",
        "BatchAnchored",
        "BatchStatusChanged",
        "CredentialStatusChanged",
        "ParticipantRegistered",
        "FlowDeclared",
        "FlowDecided",
        "RoleGranted",
    }
    issuers = {r["issuer_id"]: r for r in snap["issuers"]}
    i1, i2 = keys["issuers"]
    assert issuers[i1]["key_version"] == 2 and issuers[i1]["account"] == S.addr(S.ISSUER_NEW_KEY)
    assert issuers[i2]["status"] == "Active" and issuers[i2]["suspension_reason"] == 0
    k = {(r["issuer_id"], r["key_version"]): r for r in snap["issuer_keys"]}
    assert k[(i1, 1)]["valid_until"] == k[(i1, 2)]["valid_from"] > 0 and k[(i1, 2)]["valid_until"] == 0
    types = {(r["issuer_id"], r["credential_type"]): r["allowed"] for r in snap["issuer_types"]}
    assert types[(i2, 2)] is False and types[(i2, 3)] is True
    anchors = {r["root"]: r for r in snap["anchors"]}
    other = ["0x" + r.hex() for r in keys["other"]]
    assert [anchors[r]["status"] for r in other] == ["Revoked", "Valid", "Suspended"]
    assert anchors[other[2]]["reason"] == 9
    cs = {r["leaf"]: r for r in snap["credential_status"]}
    leaves = ["0x" + lf.hex() for lf in keys["leaves"]]
    assert [cs[lf]["status"] for lf in leaves[1:]] == ["Revoked", "None", "Suspended"]
    flows = {r["flow_id"]: r for r in snap["flows"]}
    assert flows[1]["decision"] == "Approved" and flows[1]["from_jurisdiction"] == "CN-GD"
    assert flows[1]["to_jurisdiction"] == "HK" and flows[1]["legal_basis"] == "StandardContract"
    assert flows[1]["personal_information"] is True and flows[1]["subjects"] == 1200
    assert flows[2]["parent_flow_id"] == 1 and flows[2]["decision"] == "Rejected"
    assert flows[2]["decision_reason"] == "destination not authorised" and flows[2]["to_jurisdiction"] == "MO"
    assert flows[3]["decision"] == "Pending" and flows[3]["decided_at"] is None
    assert len(snap["participants"]) == 2

    # the projection equals the chain's events folded without a database, and the views agree
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""
    check = S.run(_spot(bulk_anvil.url, bulk_deployment, database_url))
    assert check.ok, check.mismatches
    assert check.checked == len(snap["anchors"]) + len(snap["credential_status"]) + 3 + 2

    # a second run is a no-op; new events are picked up incrementally, touching stored rows
    stats2, snap2 = S.run(S.index_once(bulk_anvil.url, bulk_deployment, database_url))
    assert stats2.events == 0 and snap2 == snap
    loader.tx(loader.ar.functions.reinstateBatch(keys["other"][2]), S.GOV)
    loader.tx(loader.ir.functions.suspendIssuer(i1, 4), S.GOV)
    stats3, snap3 = S.run(S.index_once(bulk_anvil.url, bulk_deployment, database_url))
    assert stats3.events == 2
    assert {r["root"]: r for r in snap3["anchors"]}[other[2]]["status"] == "Valid"
    assert {r["issuer_id"]: r for r in snap3["issuers"]}[i1]["status"] == "Suspended"
    assert S.diff(snap3, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""


@pytest.mark.slow
def test_catch_up_over_ten_thousand_events(bulk_anvil, bulk_deployment, database_url):
    from ledger_node.indexer import chain_snapshot

    loader = S.Loader(bulk_anvil.url, bulk_deployment)
    loader.register_issuer(S.ISSUER)
    roots = loader.anchor_many(S.ISSUER, 9_800, per_block=1000)  # packed: 1,000 per block
    roots += loader.anchor_many(S.ISSUER, 400, per_block=4)  # sparse: 100 blocks
    stats, snap = S.run(
        S.index_once(bulk_anvil.url, bulk_deployment, database_url, page_size=16, target_events_per_page=2000)
    )
    assert stats.events >= 10_000 and len(snap["anchors"]) == 10_200
    assert {r["root"] for r in snap["anchors"]} == {"0x" + r.hex() for r in roots}
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""
    check = S.run(_spot(bulk_anvil.url, bulk_deployment, database_url, sample=60))
    assert check.ok and check.checked == 61, check.mismatches
