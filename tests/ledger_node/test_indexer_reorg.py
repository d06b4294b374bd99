"""Reorgs under the indexer (anvil_reorg, test-only): depth 1 at the tip, and depth 5 with the
checkpoint inside the replaced range. Statuses changed in dropped blocks revert, events of the
new branch apply, and the projection equals a fresh re-index and the chain's own fold."""

from __future__ import annotations

import os

import pytest

from tests.support import indexer as S

pytestmark = pytest.mark.chain


async def _index(url, deployment, database_url, target=None):
    from sqlalchemy.ext.asyncio import create_async_engine

    from ledger_node.indexer import Indexer
    from ledger_node.projection import create_chain_tables

    engine = create_async_engine(database_url)
    try:
        await create_chain_tables(engine)
        async with Indexer(url, deployment, engine, page_size=4) as ix:
            return await ix.run_once(target=target)
    finally:
        await engine.dispose()


def _req(loader, fn, key):
    return {"from": S.addr(key), "to": fn.address, "data": fn._encode_transaction_data(), "gas": hex(500_000)}


def _by(snap, table, key):
    return {r[key]: r for r in snap[table]}


def test_reorgs_of_depth_one_and_five(bulk_anvil, bulk_deployment, database_url, tmp_path):
    from ledger_node.indexer import chain_snapshot

    L = S.Loader(bulk_anvil.url, bulk_deployment)
    keys = L.mixed_history()
    L.anchor_many(S.ISSUER_NEW_KEY, 40, per_block=4)
    i1, i2 = keys["issuers"]
    other = keys["other"]
    S.run(_index(bulk_anvil.url, bulk_deployment, database_url))

    # depth 1: the tip (a batch suspension) is replaced by a block with a new anchor
    L.tx(L.ar.functions.suspendBatch(other[1], 6), S.GOV)
    S.run(_index(bulk_anvil.url, bulk_deployment, database_url))
    assert (
        _by(S.run(S.db_snapshot(database_url)), "anchors", "root")["0x" + other[1].hex()]["status"]
        == "Suspended"
    )
    new_root = os.urandom(32)
    L.rpc("anvil_reorg", [1, [[_req(L, L.ar.functions.anchor(new_root, 1, 7), S.ISSUER_NEW_KEY), 0]]])
    L.mine(2)
    stats = S.run(_index(bulk_anvil.url, bulk_deployment, database_url))
    assert stats.reorgs == 1 and stats.rolled_back_events == 1
    snap = S.run(S.db_snapshot(database_url))
    anchors = _by(snap, "anchors", "root")
    assert (
        anchors["0x" + other[1].hex()]["status"] == "Valid" and anchors["0x" + new_root.hex()]["count"] == 7
    )
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""

    # depth 5, with the checkpoint inside the replaced range
    L._nonces.clear()
    L.tx(L.ir.functions.suspendIssuer(i2, 3), S.GOV)
    L.tx(L.fl.functions.decideFlow(3, 2, "approved"), S.GOV)
    L.tx(L.ar.functions.revokeBatch(new_root, 1), S.ISSUER_NEW_KEY)
    L.tx(L.ir.functions.setCredentialType(i1, 2, False), S.GOV)
    L.tx(L.fl.functions.registerParticipant(S.addr(S.DEV_KEYS[7]), os.urandom(32)), S.GOV)
    head = L.head()
    S.run(_index(bulk_anvil.url, bulk_deployment, database_url, target=head - 2))
    snap = S.run(S.db_snapshot(database_url))
    assert _by(snap, "flows", "flow_id")[3]["decision"] == "Approved"
    assert _by(snap, "anchors", "root")["0x" + new_root.hex()]["status"] == "Revoked"
    late_root = os.urandom(32)
    L.rpc(
        "anvil_reorg",
        [
            5,
            [
                [_req(L, L.fl.functions.decideFlow(3, 3, "rejected on the new branch"), S.GOV), 1],
                [_req(L, L.ar.functions.anchor(late_root, 1, 3), S.ISSUER_NEW_KEY), 3],
            ],
        ],
    )
    L._nonces.clear()
    L.mine(3)
    stats = S.run(_index(bulk_anvil.url, bulk_deployment, database_url))
    assert stats.reorgs == 1 and stats.rolled_back_events >= 3
    snap = S.run(S.db_snapshot(database_url))
    assert _by(snap, "issuers", "issuer_id")[i2]["status"] == "Active"
    flow3 = _by(snap, "flows", "flow_id")[3]
    assert flow3["decision"] == "Rejected" and flow3["decision_reason"] == "rejected on the new branch"
    anchors = _by(snap, "anchors", "root")
    assert anchors["0x" + new_root.hex()]["status"] == "Valid" and "0x" + late_root.hex() in anchors
    types = {(r["issuer_id"], r["credential_type"]): r["allowed"] for r in snap["issuer_types"]}
    assert types[(i1, 2)] is True
    assert len(snap["participants"]) == 2
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""

    # equal to a fresh re-index into an empty database
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    S.run(_index(bulk_anvil.url, bulk_deployment, fresh))
    assert S.diff(snap, S.run(S.db_snapshot(fresh))) == ""


def test_deep_fork_rolls_back_to_the_newest_common_block(bulk_anvil, bulk_deployment, sqlite_database_url):
    """30 indexed blocks replaced by a longer branch of 40 (evm_snapshot / evm_revert)."""
    from ledger_node.indexer import chain_snapshot

    L = S.Loader(bulk_anvil.url, bulk_deployment)
    L.register_issuer(S.ISSUER)
    snap_id = L.snapshot()
    L.anchor_many(S.ISSUER, 30, per_block=1)
    S.run(_index(bulk_anvil.url, bulk_deployment, sqlite_database_url))
    L.revert(snap_id)
    L.anchor_many(S.ISSUER, 40, per_block=1)  # a longer, different branch
    stats = S.run(_index(bulk_anvil.url, bulk_deployment, sqlite_database_url))
    assert stats.reorgs == 1
    snap = S.run(S.db_snapshot(sqlite_database_url))
    assert len(snap["anchors"]) == 40
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""
