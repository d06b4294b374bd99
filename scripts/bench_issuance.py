#!/usr/bin/env python3
"""End-to-end issuance rate: accept (validate, canonicalise, salt, hash, persist) → batch →
Merkle tree → issuer signature → anchor tx → confirmation, proofs stored (the batch's tree).

    python scripts/bench_issuance.py [--count 20000] [--batch 1000 --batch 10000] [--postgres URL] [--json]

Runs the registry's own services in-process (no HTTP) against a fresh anvil it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchlib import fresh_chain, issuer_in_process  # noqa: E402


async def run_one(rpc_url: str, manifest: Path, database_url: str, batch: int, count: int, workdir: Path) -> dict:
    from registry.samples import business_licence_record

    async with issuer_in_process(rpc_url, manifest, database_url, workdir, batch) as (ctx, principal, issuance):
        records = [business_licence_record() for _ in range(count)]
        await issuance.accept(principal, "BusinessLicence", records[:2000], atomic=False, request_id="warm-up")
        await ctx.pipeline.drain()
        t0 = time.perf_counter()
        accepted = 0
        for i in range(0, count, 10_000):
            res = await issuance.accept(principal, "BusinessLicence", records[i:i + 10_000], atomic=False,
                                        request_id="bench")
            accepted += len(res.accepted)
        t1 = time.perf_counter()
        await ctx.pipeline.drain(timeout=600)
        t2 = time.perf_counter()
    return {"database": database_url.split(":")[0].split("+")[0], "batch": batch, "credentials": accepted,
            "accept_s": round(t1 - t0, 3), "anchor_s": round(t2 - t1, 3),
            "rate_per_s": round(accepted / (t2 - t0)), "accept_rate_per_s": round(accepted / (t1 - t0))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--postgres", help="an admin PostgreSQL URL (postgresql://...); a scratch database is made")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    batches = args.batch or [1000, 10_000]

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with fresh_chain(tmp) as (rpc_url, manifest):
            dbs = [("sqlite", None)] + ([("postgres", args.postgres)] if args.postgres else [])
            for kind, admin in dbs:
                for batch in batches:
                    work = tmp / f"{kind}-{batch}"
                    if kind == "sqlite":
                        url = f"sqlite+aiosqlite:///{work / 'registry.db'}"
                        results.append(asyncio.run(run_one(rpc_url, manifest, url, batch, args.count, work)))
                    else:
                        import uuid

                        import psycopg

                        name = f"certledger_bench_{uuid.uuid4().hex[:8]}"
                        with psycopg.connect(admin, autocommit=True) as c:
                            c.execute(f'CREATE DATABASE "{name}"')
                        try:
                            url = admin.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + "/" + name
                            results.append(asyncio.run(run_one(rpc_url, manifest, url, batch, args.count, work)))
                        finally:
                            with psycopg.connect(admin, autocommit=True) as c:
                                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if args.json:
        print(json.dumps(results))
    else:
        print("| database | batch | credentials | accept (s) | anchor (s) | end-to-end /s |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in results:
            print(f"| {r['database']} | {r['batch']:,} | {r['credentials']:,} | {r['accept_s']} | {r['anchor_s']} "
                  f"| {r['rate_per_s']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
