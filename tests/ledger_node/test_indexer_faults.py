"""The indexer through a faulty RPC endpoint (tests/ledger_node/rpc_proxy.py) still converges:
every third request failing (HTTP 500 or a dropped connection), and a node that refuses
eth_getLogs answers over 1,000 logs (the window halves, then grows back)."""

from __future__ import annotations

import pytest

from tests.ledger_node import rpc_proxy as P
from tests.support import indexer as S

pytestmark = pytest.mark.chain


def test_every_third_rpc_call_failing_still_converges(bulk_anvil, bulk_deployment, sqlite_database_url):
    from ledger_node.indexer import chain_snapshot

    loader = S.Loader(bulk_anvil.url, bulk_deployment)
    loader.mixed_history()
    loader.anchor_many(S.ISSUER_NEW_KEY, 600, per_block=5)  # 120 blocks with events
    with P.RpcProxy(bulk_anvil.url, fail_every=3) as proxy:
        stats, snap = S.run(S.index_once(proxy.url, bulk_deployment, sqlite_database_url, page_size=16))
        assert proxy.failed >= 5, proxy.failed
    assert stats.end_block == loader.head() and stats.pages >= 8
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""


def test_endpoint_that_refuses_large_log_queries(bulk_anvil, bulk_deployment, database_url):
    from ledger_node.indexer import chain_snapshot

    loader = S.Loader(bulk_anvil.url, bulk_deployment)
    loader.register_issuer(S.ISSUER)
    loader.anchor_many(S.ISSUER, 2_400, per_block=300)  # 8 blocks of 300
    loader.anchor_many(S.ISSUER, 300, per_block=3)  # 100 blocks of 3
    with P.RpcProxy(bulk_anvil.url, max_results=1000) as proxy:
        stats, snap = S.run(
            S.index_once(proxy.url, bulk_deployment, database_url, page_size=1024, target_events_per_page=600)
        )
        assert proxy.refused_ranges, "the proxy never refused a range"
    assert stats.window_shrinks >= 2 and stats.end_block == loader.head()
    assert len(snap["anchors"]) == 2_700
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, bulk_deployment))) == ""


def test_unreachable_endpoint_is_a_clear_error(bulk_deployment, sqlite_database_url):
    from ledger_node._rpc import RpcUnavailable
    from ledger_node.node import free_port

    with pytest.raises(RpcUnavailable, match="connection refused"):
        S.run(
            S.index_once(
                f"http://127.0.0.1:{free_port()}", bulk_deployment, sqlite_database_url, rpc_retries=2
            )
        )
