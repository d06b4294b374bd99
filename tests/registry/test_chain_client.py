"""The service's chain client against a real anvil node, seen from the wire (a recording proxy)."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


@pytest.fixture()
def recorded(anvil_node):
    """(proxy URL, list of JSON-RPC methods it forwarded to the node)"""
    methods: list[str] = []

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = json.loads(body)
            methods.extend(r["method"] for r in (request if isinstance(request, list) else [request]))
            upstream = urllib.request.Request(anvil_node.rpc_url, data=body,
                                              headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(upstream, timeout=10) as response:
                data = response.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", methods
    server.shutdown()
    server.server_close()


async def test_the_node_is_asked_its_chain_id_once_not_before_every_call(recorded, deployment):
    from ledger_node import DEV_KEYS
    from registry.services.chain import ServiceChain

    url, methods = recorded
    chain = ServiceChain(url, deployment)
    try:
        assert await chain.anchor_of("0x" + os.urandom(32).hex()) is None
        first = methods.count("eth_chainId")  # web3 asks once or twice while setting up its cache
        for _ in range(2):
            assert await chain.anchor_of("0x" + os.urandom(32).hex()) is None
        fn = chain.anchors.functions.anchorOf(os.urandom(32))
        await chain.call_from(fn, DEV_KEYS[1])
        tx = await chain.sign(DEV_KEYS[1], chain.anchors.functions.anchor(os.urandom(32), 1, 1), gas=120_000)
    finally:
        await chain.close()
    assert methods.count("eth_call") == 4
    assert first <= 2 and methods.count("eth_chainId") == first, methods
    assert tx.nonce >= 0 and tx.raw
