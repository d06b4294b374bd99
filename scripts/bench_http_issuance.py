#!/usr/bin/env python3
"""Issuance as an issuing bureau runs it: `certledger issue` (the command line, a separate process)
sending a JSONL file over HTTP to `certledger serve` (another process), until every credential is
anchored.

    python scripts/bench_http_issuance.py [--count 40000] [--batch 10000] [--passes 3] [--postgres URL]

Unlike bench_issuance.py (the service's own functions called in-process), this includes the HTTP
transfer, parsing each JSON line, the answer with every id, and the command line's own work, all
on the same two cores. Each pass starts a fresh anvil, service and database, issues 5,000 records
to warm the service up (its worker processes start, the issuer's keystore is decrypted), then times
the file; the table gives the pass with the median end-to-end rate, every pass's rate, and the CPU
each process spent per credential in that pass.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from _benchlib import fresh_chain, scratch_database, service_cpu  # noqa: E402

CERTLEDGER = Path(sys.executable).parent / "certledger"


def one_pass(count: int, batch: int, admin_pg: str | None, work: Path) -> dict:
    from scripts.samples import business_licence_record, make_uscc
    from tests.support.procs import ServiceProcess, create_issuer

    def jsonl(path: Path, n: int) -> Path:
        path.write_text(
            "\n".join(json.dumps(business_licence_record(), ensure_ascii=False) for _ in range(n)),
            encoding="utf-8",
        )
        return path

    records, warm = jsonl(work / "licences.jsonl", count), jsonl(work / "warm-up.jsonl", 5000)
    env = {
        "CERTLEDGER_KEYSTORE_PASSPHRASE": "bench",
        "CERTLEDGER_BATCH_SIZE": str(batch),
        "CERTLEDGER_BATCH_WINDOW_SECONDS": "1",
        "CERTLEDGER_INDEXER_ENABLED": "false",
    }
    with ExitStack() as stack:
        if admin_pg:
            env["CERTLEDGER_DATABASE_URL"] = stack.enter_context(scratch_database(admin_pg))
        with fresh_chain(work) as (rpc_url, manifest):
            env.update(CERTLEDGER_RPC_URL=rpc_url, CERTLEDGER_MANIFEST=str(manifest))
            svc = ServiceProcess(work / "data", env=env, name="bench")
            svc.start()
            try:
                key = create_issuer(svc, make_uscc())

                def cpu() -> dict[str, float]:
                    r = resource.getrusage(resource.RUSAGE_CHILDREN)
                    return {**service_cpu(svc.proc.pid), "command line": r.ru_utime + r.ru_stime}

                def issue(path: Path, n: int) -> None:
                    proc = subprocess.run(
                        [
                            str(CERTLEDGER),
                            "issue",
                            "BusinessLicence",
                            str(path),
                            "--url",
                            svc.url,
                            "--api-key",
                            key,
                            "--chunk",
                            str(min(n // 2, 10_000)),
                        ],
                        capture_output=True,
                        text=True,
                    )
                    if proc.returncode != 0 or f"accepted {n} of {n}" not in proc.stdout:
                        raise SystemExit(f"certledger issue failed: {proc.stdout}{proc.stderr[-2000:]}")

                # one client for the polling: a client per request built a TLS context each time (~35 ms
                # of CPU, on the cores the service shares), which also delayed seeing the last anchor
                poller = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))

                def anchored(since: float) -> None:
                    while True:
                        pending = poller.get("/health").json()["pendingCredentialsAndBatches"]
                        if pending == 0:
                            return
                        if time.perf_counter() - since > 300:
                            raise SystemExit(f"{pending} credentials and batches still pending after 300 s")
                        time.sleep(0.02)

                issue(warm, 5000)  # starts the service's worker processes and decrypts the issuer's key,
                anchored(time.perf_counter())  # as a running service has done long before
                before = cpu()
                t0 = time.perf_counter()
                issue(records, count)
                t1 = time.perf_counter()
                anchored(t1)
                t2 = time.perf_counter()
                after = cpu()
            finally:
                svc.kill()
    return {
        "accept_s": t1 - t0,
        "anchor_s": t2 - t1,
        "rate": count / (t2 - t0),
        "cpu_us": {k: (after[k] - before[k]) / count * 1e6 for k in after},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=40_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server (a scratch database per pass)")
    args = ap.parse_args()
    if args.count < 1 or args.batch < 1 or args.passes < 1:
        ap.error("--count, --batch and --passes must be positive")
    print(
        "| database | credentials | command line done (s) | then all anchored (s) | end-to-end /s (every pass) "
        "| CPU per credential (µs): service / workers / command line |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for label, pg in [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else []):
        passes = []
        for _ in range(args.passes):
            with tempfile.TemporaryDirectory() as tmp:
                passes.append(one_pass(args.count, args.batch, pg, Path(tmp)))
        mid = sorted(passes, key=lambda p: p["rate"])[len(passes) // 2]
        c = mid["cpu_us"]
        every = ", ".join(f"{p['rate']:,.0f}" for p in passes)
        print(
            f"| {label} | {args.count:,} | {mid['accept_s']:.2f} | {mid['anchor_s']:.2f} | **{mid['rate']:,.0f}** "
            f"({every}) | {c['service']:.0f} / {c['workers']:.0f} / {c['command line']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
