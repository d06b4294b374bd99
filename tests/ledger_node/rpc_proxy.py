"""A faulty JSON-RPC proxy for the indexer tests: forwards to a real node, but

* `fail_every=k`: every k-th HTTP request fails — alternately an HTTP 500 and a dropped
  connection (the socket is closed without an answer);
* `max_results=n`: an eth_getLogs whose answer would hold more than n logs gets the error geth
  and Besu give, "query returned more than n results".

    with RpcProxy(upstream, fail_every=3) as proxy:
        ... proxy.url ...
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RpcProxy:
    def __init__(self, upstream: str, *, fail_every: int = 0, max_results: int = 0):
        self.upstream = upstream
        self.fail_every = fail_every
        self.max_results = max_results
        self.requests = 0
        self.failed = 0
        self.refused_ranges: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.requests += 1
                    n = proxy.requests
                if proxy.fail_every and n % proxy.fail_every == 0:
                    with proxy._lock:
                        proxy.failed += 1
                        kind = proxy.failed % 2
                    if kind:
                        self.send_response(500)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        self.close_connection = True
                        self.connection.shutdown(2)
                    return
                reply = proxy._forward(json.loads(body))
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _forward(self, request):
        req = urllib.request.Request(
            self.upstream, data=json.dumps(request).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            reply = json.loads(resp.read())
        if self.max_results:
            calls = request if isinstance(request, list) else [request]
            replies = reply if isinstance(reply, list) else [reply]
            by_id = {r.get("id"): r for r in replies}
            for call in calls:
                r = by_id.get(call.get("id"))
                if (
                    call.get("method") == "eth_getLogs"
                    and r
                    and len(r.get("result") or []) > self.max_results
                ):
                    f = call["params"][0]
                    self.refused_ranges.append((int(f["fromBlock"], 16), int(f["toBlock"], 16)))
                    r.pop("result")
                    r["error"] = {
                        "code": -32005,
                        "message": f"query returned more than {self.max_results} results",
                    }
        return reply

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
