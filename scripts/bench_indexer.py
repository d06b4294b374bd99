"""Indexer catch-up rate: events/s from the deploy block to the head over N anchor events.

    .venv/bin/python scripts/bench_indexer.py [--events 100000] [--per-block 2000] [--json]

Starts a private in-memory anvil, registers an issuer, anchors N random roots (signed locally,
sent as JSON-RPC batches, packed `--per-block` to a block), then indexes everything into a fresh
SQLite file and — when a server answers at CERTLEDGER_TEST_PG_URL (default
postgresql://postgres:postgres@127.0.0.1:5432/postgres) — a fresh PostgreSQL database.
Prints one markdown table row per database (or JSON with --json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _support():
    from tests.support import indexer as indexer_support

    return indexer_support


async def _index(rpc_url: str, deployment, database_url: str, page_size: int) -> dict:
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from ledger_node.indexer import Indexer
    from ledger_node.projection import ChainAnchor, create_chain_tables

    engine = create_async_engine(database_url)
    try:
        await create_chain_tables(engine)
        t0 = time.perf_counter()
        async with Indexer(rpc_url, deployment, engine, page_size=page_size) as ix:
            stats = await ix.run_once()
        wall = time.perf_counter() - t0
        async with AsyncSession(engine) as s:
            anchors = (await s.execute(select(func.count()).select_from(ChainAnchor))).scalar_one()
        return {
            "events": stats.events,
            "anchors": anchors,
            "blocks": stats.end_block - stats.start_block,
            "pages": stats.pages,
            "seconds": round(wall, 2),
            "events_per_s": round(stats.events / wall),
        }
    finally:
        await engine.dispose()


def _pg_url() -> tuple[str, str] | None:
    admin = os.environ.get("CERTLEDGER_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        name = f"certledger_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception:  # noqa: BLE001 - no server: SQLite only
        return None
    return admin, name


def _pg_drop(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--per-block", type=int, default=2_000)
    ap.add_argument("--page-size", type=int, default=2_000)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    S = _support()
    from tests.support.anvil import BULK_ARGS, PrivateAnvil

    anvil = PrivateAnvil(*BULK_ARGS)
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            deployment = anvil.deploy(Path(tmp) / "deployment.json")
            loader = S.Loader(anvil.url, deployment)
            loader.register_issuer(S.ISSUER)
            t0 = time.perf_counter()
            loader.anchor_many(S.ISSUER, args.events, per_block=args.per_block)
            gen = time.perf_counter() - t0
            print(f"generated {args.events} anchors in {gen:.1f}s", file=sys.stderr)
            targets = [("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", None)]
            pg = None if args.no_postgres else _pg_url()
            if pg is not None:
                base = pg[0].rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
                targets.append(("PostgreSQL", f"{base}/{pg[1]}", pg))
            for label, url, pg_info in targets:
                try:
                    r = asyncio.run(_index(anvil.url, deployment, url, args.page_size))
                finally:
                    if pg_info is not None:
                        _pg_drop(*pg_info)
                r.update(
                    database=label,
                    per_block=args.per_block,
                    machine=f"{os.cpu_count()} cores, "
                    f"{platform.python_implementation()} {platform.python_version()}",
                )
                results.append(r)
    finally:
        anvil.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| database | events | blocks | pages | seconds | events/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['database']} | {r['events']:,} | {r['blocks']:,} | {r['pages']} | {r['seconds']} | "
            f"{r['events_per_s']:,} |"
        )


if __name__ == "__main__":
    main()
