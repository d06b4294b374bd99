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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def run_one(rpc_url: str, manifest: Path, database_url: str, batch: int, count: int, workdir: Path) -> dict:
    from registry.core.config import Settings
    from registry.samples import business_licence_record, make_uscc
    from registry.services.context import ServiceContext
    from registry.services.issuance import Issuance
    from registry.services.orgs import Principal, create_organisation
    from registry.services.pipeline import Pipeline

    settings = Settings(data_dir=workdir, database_url=database_url, rpc_url=rpc_url, manifest=manifest,
                        keystore_passphrase="bench", batch_size=batch, batch_window_seconds=3600)
    ctx = await ServiceContext.create(settings)
    try:
        async with ctx.sessions() as s, s.begin():
            org, _ = await create_organisation(
                s, ctx, name="广州市市场监督管理局", identifier=make_uscc(prefix="114401"), jurisdiction="CN-GD",
                roles=["issuer"], credential_types=["BusinessLicence"], actor="bench", request_id="bench")
        principal = Principal(org.id, org.name, ("issuer",), "bench")
        issuance = Issuance(ctx)
        ctx.pipeline = Pipeline(ctx)
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
        issuance.close()
        return {"database": database_url.split(":")[0].split("+")[0], "batch": batch, "credentials": accepted,
                "accept_s": round(t1 - t0, 3), "anchor_s": round(t2 - t1, 3),
                "rate_per_s": round(accepted / (t2 - t0)), "accept_rate_per_s": round(accepted / (t1 - t0))}
    finally:
        await ctx.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--postgres", help="an admin PostgreSQL URL (postgresql://...); a scratch database is made")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    batches = args.batch or [1000, 10_000]

    from ledger_node import DEV_KEYS, AnvilNode, Chain, deploy
    from ledger_node.node import free_port

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        node = AnvilNode(tmp / "node", port=free_port())
        node.start()
        try:
            manifest = tmp / "deployment.json"
            deploy(Chain(node.rpc_url), DEV_KEYS[0], manifest)
            dbs = [("sqlite", None)] + ([("postgres", args.postgres)] if args.postgres else [])
            for kind, admin in dbs:
                for batch in batches:
                    work = tmp / f"{kind}-{batch}"
                    if kind == "sqlite":
                        url = f"sqlite+aiosqlite:///{work / 'registry.db'}"
                        results.append(asyncio.run(run_one(node.rpc_url, manifest, url, batch, args.count, work)))
                    else:
                        import uuid

                        import psycopg

                        name = f"certledger_bench_{uuid.uuid4().hex[:8]}"
                        with psycopg.connect(admin, autocommit=True) as c:
                            c.execute(f'CREATE DATABASE "{name}"')
                        try:
                            url = admin.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + "/" + name
                            results.append(asyncio.run(run_one(node.rpc_url, manifest, url, batch, args.count, work)))
                        finally:
                            with psycopg.connect(admin, autocommit=True) as c:
                                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            node.stop()
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
