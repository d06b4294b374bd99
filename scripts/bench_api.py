#!/usr/bin/env python3
"""Verify-API throughput and latency under load from a load generator on loopback.

    python scripts/bench_api.py [--seconds 10] [--connections 16] [--workers 1] [--json]

Starts a fresh anvil and `certledger serve` (uvicorn, SQLite), issues 1,000 credentials, fetches
their holder copies, then POSTs /v1/verify from a separate load-generator process (keep-alive
HTTP/1.1 connections in threads) for a fixed time. Reports requests/s, p50/p99 latency, and the CPU
time per request of the service and of the load generator (both on the same cores).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchlib import fresh_chain, service_cpu  # noqa: E402


def _load(port: int, key: str, bodies: list[bytes], seconds: float, connections: int, out) -> None:
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, n = [], i
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while time.monotonic() < stop:
            body = bodies[n % len(bodies)]
            n += connections
            t = time.perf_counter()
            try:
                conn.request("POST", "/v1/verify", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                ok = resp.status == 200 and b'"valid":true' in data.replace(b" ", b"")
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine.append(time.perf_counter() - t)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(
        {
            "requests": len(latencies),
            "errors": errors[0],
            "elapsed": time.perf_counter() - t0,
            "latencies": sorted(latencies),
            "cpu": sum(os.times()[:2]),
        }
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import httpx

    from scripts.samples import business_licence_record, make_uscc
    from tests.support.procs import ServiceProcess, create_issuer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        svc = None
        with fresh_chain(tmp) as (rpc_url, manifest):
            try:
                svc = ServiceProcess(
                    tmp / "data",
                    name="api",
                    env={
                        "CERTLEDGER_RPC_URL": rpc_url,
                        "CERTLEDGER_MANIFEST": str(manifest),
                        "CERTLEDGER_KEYSTORE_PASSPHRASE": "bench",
                        "CERTLEDGER_BATCH_WINDOW_SECONDS": "0.2",
                        "CERTLEDGER_INDEXER_ENABLED": "false",
                    },
                )
                svc.start()
                key = create_issuer(svc, make_uscc(prefix="114401"))
                h = {"Authorization": f"Bearer {key}"}
                recs = [business_licence_record() for _ in range(1000)]
                r = httpx.post(
                    svc.url + "/v1/credentials/bulk",
                    params={"type": "BusinessLicence"},
                    headers={**h, "Content-Type": "application/x-ndjson"},
                    content="\n".join(json.dumps(x, ensure_ascii=False) for x in recs).encode(),
                    timeout=120,
                )
                ids = r.json()["ids"]
                while svc.health()["pendingCredentialsAndBatches"]:
                    time.sleep(0.2)
                bodies = []
                with httpx.Client(base_url=svc.url, headers=h, timeout=30) as c:
                    for cid in ids:
                        cred = c.get(f"/v1/credentials/{cid}").json()["credential"]
                        bodies.append(json.dumps({"credential": cred}).encode())
                    assert c.post(
                        "/v1/verify", content=bodies[0], headers={"Content-Type": "application/json"}
                    ).json()["valid"]
                q: multiprocessing.Queue = multiprocessing.Queue()
                gen = multiprocessing.Process(
                    target=_load, args=(svc.port, key, bodies, args.seconds, args.connections, q)
                )
                used = service_cpu(svc.proc.pid)["service"]
                gen.start()
                res = q.get()
                used = service_cpu(svc.proc.pid)["service"] - used
                gen.join()
            finally:
                if svc is not None:
                    svc.kill()
    lat = res["latencies"]
    out = {
        "requests": res["requests"],
        "errors": res["errors"],
        "seconds": round(res["elapsed"], 2),
        "rate_per_s": round(res["requests"] / res["elapsed"]),
        "p50_ms": round(1000 * statistics.median(lat), 2),
        "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2),
        "connections": args.connections,
        "cpu_us_per_request": {
            "service": round(used / res["requests"] * 1e6),
            "load generator": round(res["cpu"] / res["requests"] * 1e6),
        },
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"| verify API | {out['rate_per_s']:,} req/s | p50 {out['p50_ms']} ms | p99 {out['p99_ms']} ms "
            f"| {out['requests']:,} requests, {out['errors']} errors, {args.connections} connections "
            f"| CPU per request (µs): service {out['cpu_us_per_request']['service']:,}, "
            f"load generator {out['cpu_us_per_request']['load generator']:,} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
