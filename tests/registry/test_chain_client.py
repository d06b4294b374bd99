"""The service's chain client against a real anvil node, seen from the wire (a recording proxy)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


def _serve(answer):
    """An HTTP server on a free port answering each POST with ``answer(request body) -> (status, bytes)``:
    (its URL, the list of JSON-RPC requests it received, each a list of methods)."""
    requests: list[list[str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = json.loads(body)
            requests.append([r["method"] for r in (request if isinstance(request, list) else [request])])
            status, data = answer(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", requests


@pytest.fixture()
def recorded(anvil_node):
    """(proxy URL, list of JSON-RPC methods it forwarded to the node, the requests: each a list of methods)"""

    def forward(body: bytes) -> tuple[int, bytes]:
        upstream = urllib.request.Request(
            anvil_node.rpc_url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(upstream, timeout=10) as response:
            return 200, response.read()

    server, url, requests = _serve(forward)

    class Methods(list):  # every method of every request, in order
        def count(self, method):  # noqa: D102
            return sum(r.count(method) for r in requests)

    yield url, Methods(), requests
    server.shutdown()
    server.server_close()


async def test_the_node_is_asked_its_chain_id_once_not_before_every_call(recorded, deployment):
    from ledger_node import DEV_KEYS
    from registry.services.chain import ServiceChain

    url, methods, _ = recorded
    chain = ServiceChain(url, deployment)
    try:
        fn = chain.anchors.functions.anchorOf(os.urandom(32))
        await chain.call_from(fn, DEV_KEYS[1])
        first = methods.count("eth_chainId")  # web3 asks once or twice while setting up its cache
        for _ in range(3):
            await chain.call_from(fn, DEV_KEYS[1])
        tx = await chain.sign(DEV_KEYS[1], chain.anchors.functions.anchor(os.urandom(32), 1, 1), gas=120_000)
    finally:
        await chain.close()
    assert methods.count("eth_call") == 4
    assert first <= 2 and methods.count("eth_chainId") == first
    assert tx.nonce >= 0 and tx.raw


async def test_the_pipeline_calls_go_out_as_one_batch_request_each(recorded, chain, deployment):
    """Dry runs with nonce and fee, broadcast, receipts and anchor lookups of several batches:
    one JSON-RPC batch request each; consecutive nonces; the chain's answers decoded per call."""
    from eth_account import Account

    from ledger_node import DEV_KEYS
    from registry.services.chain import SentTx, ServiceChain
    from registry.services.node_errors import Refusal

    key = DEV_KEYS[3]
    ir = chain.contract("IssuerRegistry", deployment.issuer_registry)
    chain.transact(
        ir.functions.registerIssuer(
            Account.from_key(key).address, "Bureau", "91440101MA59TEST0X", [1], 0, b"", 0, 0
        ),
        DEV_KEYS[0],
    )
    url, _, requests = recorded
    c = ServiceChain(url, deployment)
    roots = ["0x" + os.urandom(32).hex() for _ in range(3)]
    try:
        datas = [c.anchor_data(r, 1, 10 + k) for k, r in enumerate(roots)]
        txs = await c.anchor_txs(key, datas, gas=120_000)  # every dry run passes: all signed
        assert all(isinstance(t, SentTx) for t in txs), txs
        assert [t.nonce for t in txs] == [txs[0].nonce, txs[0].nonce + 1, txs[0].nonce + 2]
        assert {t.sender for t in txs} == {Account.from_key(key).address}
        assert await c.send_raws([t.raw for t in txs]) == [None, None, None]
        for _ in range(50):  # anvil mines each as it arrives
            receipts = await c.receipts([t.tx_hash for t in txs])
            if None not in receipts:
                break
            await asyncio.sleep(0.05)
        assert [r["status"] for r in receipts] == [1, 1, 1]
        assert [r["transactionHash"] for r in receipts] == [t.tx_hash for t in txs]
        unknown = "0x" + os.urandom(32).hex()
        anchors = await c.anchors_of([*roots, unknown])
        assert anchors[3] is None and await c.anchor_of(unknown) is None
        assert [a["count"] for a in anchors[:3]] == [10, 11, 12]
        assert [a["blockNumber"] for a in anchors[:3]] == [r["blockNumber"] for r in receipts]
        assert {a["issuerId"] for a in anchors[:3]} == {1} and {a["credentialType"] for a in anchors[:3]} == {
            1
        }
        n = len(requests)
        # refusals, decoded per call: anchored before, count zero, not an issuer's account
        other = "0x" + os.urandom(32).hex()
        refused = await c.anchor_txs(
            key, [datas[0], c.anchor_data(unknown, 1, 0), c.anchor_data(other, 1, 5)], gas=120_000
        )
        stranger = await c.anchor_txs(DEV_KEYS[4], [c.anchor_data(unknown, 1, 1)], gas=120_000)
        assert [r.details["error"] for r in refused[:2]] == ["RootAlreadyAnchored", "InvalidCount"]
        assert refused[0].details["args"]["root"] == roots[0]
        # the one the chain would take is signed, with the account's next nonce (the refused take none)
        assert isinstance(refused[2], SentTx) and refused[2].nonce == txs[2].nonce + 1
        assert stranger[0].details["error"] == "NotAnIssuer", stranger[0].details
        assert len(requests) == n + 2
        # a mined transaction sent again: the node refuses it for its nonce, classified so
        (again,) = await c.send_raws([txs[0].raw])
        assert again is not None and again.kind is Refusal.NONCE_USED and "nonce" in again.message, again
    finally:
        await c.close()
    batches = [r for r in requests if len(r) > 1]
    # the dry runs, nonce and fee in one batch request
    nonce_and_fee = ["eth_getTransactionCount", "eth_getBlockByNumber", "eth_gasPrice"]
    assert ["eth_call"] * 3 + nonce_and_fee in batches and ["eth_sendRawTransaction"] * 3 in batches
    assert ["eth_getTransactionReceipt"] * 3 in batches and ["eth_call"] * 4 in batches


@pytest.mark.parametrize(
    "answer, message",
    [
        ((503, b"overloaded"), "answered HTTP 503"),
        (
            (
                200,
                b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "batch requests disabled"}}',
            ),
            "refused a batch request",
        ),
        (
            (200, b'[{"jsonrpc": "2.0", "id": 0, "result": "0x1"}]'),
            "left call eth_getTransactionReceipt unanswered",
        ),
        ((200, b"not json"), "unreachable"),
    ],
)
async def test_a_node_that_does_not_answer_a_batch_request_is_unavailable(deployment, answer, message):
    """Every failure of a batch request as a whole is ChainUnavailable (the pipeline backs off and
    retries), never a traceback or a call silently left without an answer."""
    from registry.core.errors import ChainUnavailable
    from registry.services.chain import ServiceChain

    server, url, _ = _serve(lambda body: answer)
    c = ServiceChain(url, deployment)
    try:
        with pytest.raises(ChainUnavailable, match=message):
            await c.receipts(["0x" + "11" * 32, "0x" + "22" * 32])
    finally:
        await c.close()
        server.shutdown()
        server.server_close()


async def test_an_unreachable_node_is_unavailable_to_batch_requests(deployment):
    from ledger_node.node import free_port
    from registry.core.errors import ChainUnavailable
    from registry.services.chain import ServiceChain

    c = ServiceChain(f"http://127.0.0.1:{free_port()}", deployment, timeout=2)
    try:
        with pytest.raises(ChainUnavailable, match="unreachable"):
            await c.anchors_of(["0x" + "11" * 32])
    finally:
        await c.close()


async def test_a_batch_request_carries_at_most_50_calls(recorded, deployment):
    """Within Besu's default --rpc-http-max-batch-size: 120 lookups go out as 50 + 50 + 20, each
    answer in its place."""
    from registry.services.chain import BATCH_CALLS, ServiceChain

    url, _, requests = recorded
    c = ServiceChain(url, deployment)
    try:
        assert await c.anchors_of(["0x" + os.urandom(32).hex() for _ in range(120)]) == [None] * 120
    finally:
        await c.close()
    assert BATCH_CALLS == 50 and [len(r) for r in requests] == [50, 50, 20]


@pytest.fixture()
def besu_limited(anvil_node):
    """A node that takes batch requests of at most 10 calls, as Besu with --rpc-http-max-batch-size 10:
    a larger one is answered with Besu's single error object (HTTP 200, id null). (its URL, the
    requests it received, each a list of methods)"""

    def answer(body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        if isinstance(request, list) and len(request) > 10:
            return 200, json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32005, "message": "Number of requests exceeds max batch size"},
                }
            ).encode()
        upstream = urllib.request.Request(
            anvil_node.rpc_url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(upstream, timeout=10) as response:
            return 200, response.read()

    server, url, requests = _serve(answer)
    yield url, requests
    server.shutdown()
    server.server_close()


async def test_a_node_with_a_lower_batch_limit_is_refused_with_the_setting_to_change(
    besu_limited, deployment
):
    from registry.core.errors import ChainUnavailable
    from registry.services.chain import ServiceChain

    url, _ = besu_limited
    c = ServiceChain(url, deployment)
    try:
        with pytest.raises(
            ChainUnavailable, match="refused a batch request of 30 calls.*CERTLEDGER_RPC_BATCH_CALLS"
        ):
            await c.anchors_of(["0x" + os.urandom(32).hex() for _ in range(30)])
    finally:
        await c.close()


async def test_batch_requests_keep_within_the_configured_number_of_calls(besu_limited, deployment):
    from registry.services.chain import ServiceChain

    url, requests = besu_limited
    c = ServiceChain(url, deployment, batch_calls=10)
    try:
        assert await c.anchors_of(["0x" + os.urandom(32).hex() for _ in range(25)]) == [None] * 25
    finally:
        await c.close()
    assert [len(r) for r in requests] == [10, 10, 5]
    with pytest.raises(ValueError, match="at least one call"):
        ServiceChain(url, deployment, batch_calls=0)


@pytest.fixture()
def batch_calls_10(monkeypatch):
    monkeypatch.setenv("CERTLEDGER_RPC_BATCH_CALLS", "10")


async def test_the_pipeline_anchors_through_a_node_with_a_lower_batch_limit(
    batch_calls_10, service, besu_limited
):
    """CERTLEDGER_RPC_BATCH_CALLS=10 reaches the service's chain client, and the pipeline anchors
    twelve batches through a node that refuses batch requests of more than 10 calls."""
    import json

    from sqlalchemy import select

    from registry.db.models import Batch
    from scripts.samples import business_licence_record, make_uscc

    url, requests = besu_limited
    assert service.ctx.chain.batch_calls == 10
    service.ctx.chain.rpc_url = url  # the pipeline's batch requests go to the limited node
    _, key = await service.create_org(
        name="市场监督管理局",
        identifier=make_uscc(prefix="114401"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    service.configure(batch_size=5)
    recs = "\n".join(json.dumps(business_licence_record()) for _ in range(60)).encode()
    r = await service.client.post(
        "/v1/credentials/bulk?type=BusinessLicence",
        content=recs,
        headers={**service.h(key), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 202, r.text
    for _ in range(100):
        await service.pipeline.seal_due(force=True)
        await service.pipeline.advance_all()
        async with service.ctx.sessions() as s:
            states = (await s.execute(select(Batch.state))).scalars().all()
        if len(states) == 12 and set(states) == {"anchored"}:
            break
        await asyncio.sleep(0.05)
    assert len(states) == 12 and set(states) == {"anchored"}
    assert max(map(len, requests)) == 10  # twelve dry runs, broadcasts, lookups: 10 + 2 each
