#!/usr/bin/env python3
"""Do the reference triggers still pay for themselves? Credential rows COPY'd into PostgreSQL with the two
declared foreign keys of ``credentials`` (issuer_org_id, batch_id) against the statement-level
triggers that replace them on PostgreSQL (registry/migrations, issue #20 point 6).

A scratch database is migrated to head (triggers), an organisation and a batch are written, and
``--rows`` credential rows are COPY'd in one transaction and rolled back, ``--passes`` times; then
the triggers are swapped for the foreign keys (as reference_triggers.remove does) and the same again, the
two alternating. Reports the median per-row time of each and their ratio (one run, same server).

    .venv/bin/python scripts/bench_fk_triggers.py --url postgresql://postgres:postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = (
    "id",
    "status_index",
    "issuer_org_id",
    "credential_type",
    "subject_identifier",
    "target_hash",
    "subject_hash",
    "packed_document",
    "salt_seed",
    "batch_id",
    "accepted_at",
    "status",
    "status_reason",
)


def _rows(n: int, start: int, batch_id: int) -> list[tuple]:
    now = datetime.now(UTC)
    doc = os.urandom(300)  # (a packed document's size: registry/services/docpack.py)
    return [
        (
            f"urn:uuid:{uuid.uuid4()}",
            start + i,
            1,
            1,
            "91440101MA5BANK009",
            "0x" + os.urandom(32).hex(),
            "0x" + os.urandom(32).hex(),
            doc,
            os.urandom(32),
            batch_id,
            now,
            1,
            0,
        )
        for i in range(n)
    ]


async def _copy(conn, rows: list[tuple]) -> float:
    tx = conn.transaction()
    await tx.start()
    t0 = time.perf_counter()
    await conn.copy_records_to_table("credentials", records=rows, columns=COLUMNS)
    elapsed = time.perf_counter() - t0
    await tx.rollback()
    return elapsed


async def _swap_to_foreign_keys(conn) -> None:
    from registry.migrations.reference_triggers import FUNCTIONS, TRIGGERS

    for name, table, _spec in TRIGGERS:
        await conn.execute(f"DROP TRIGGER {name} ON {table}")
    for fn in FUNCTIONS:
        await conn.execute(f"DROP FUNCTION {fn}()")
    await conn.execute(
        "ALTER TABLE credentials ADD CONSTRAINT credentials_issuer_org_id_fkey "
        "FOREIGN KEY (issuer_org_id) REFERENCES organisations (id)"
    )
    await conn.execute(
        "ALTER TABLE credentials ADD CONSTRAINT credentials_batch_id_fkey "
        "FOREIGN KEY (batch_id) REFERENCES batches (id)"
    )


async def main_async(args) -> None:
    import asyncpg

    from registry.db.migrate import upgrade

    name = f"certledger_bench_fk_{os.getpid()}"
    admin = await asyncpg.connect(args.url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = args.url.rsplit("/", 1)[0]
    try:
        await asyncio.to_thread(upgrade, f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}")
        # the migration's engine may keep a connection a moment: a template must have none
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        dbs = {}
        for mode in ("triggers", "foreign keys"):
            scratch = f"{name}_{'t' if mode == 'triggers' else 'f'}"
            await admin.execute(f'CREATE DATABASE "{scratch}" TEMPLATE "{name}"')
            conn = await asyncpg.connect(f"{base}/{scratch}")
            await conn.execute(
                "INSERT INTO organisations (id, name, identifier, jurisdiction, roles, credential_types, created_at) "
                "VALUES (1, 'o', 'o', 'CN', '[]', '[]', now())"
            )
            await conn.execute(
                "INSERT INTO batches (id, issuer_org_id, credential_type, state, count, created_at, attempts, "
                "status, status_reason) VALUES (1, 1, 1, 'sealed', 1, now(), 0, 1, 0)"
            )
            if mode == "foreign keys":
                await _swap_to_foreign_keys(conn)
            dbs[mode] = (scratch, conn)
        times: dict[str, list[float]] = {m: [] for m in dbs}
        for p in range(args.passes):
            for mode, (_scratch, conn) in dbs.items():
                times[mode].append(await _copy(conn, _rows(args.rows, 1 + p * args.rows, 1)))
        for _scratch, conn in dbs.values():
            await conn.close()
        for scratch, _conn in dbs.values():
            await admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    per_row = {m: statistics.median(t) / args.rows * 1e6 for m, t in times.items()}
    print(
        f"COPY of {args.rows:,} credential rows, median of {args.passes} passes each, alternating (PostgreSQL):\n"
    )
    print("| references checked by | µs per row (median) | passes (s) |")
    print("|---|---:|---|")
    for m, t in times.items():
        print(f"| {m} | {per_row[m]:.1f} | {', '.join(f'{x:.3f}' for x in t)} |")
    print(f"\nforeign keys / triggers: {per_row['foreign keys'] / per_row['triggers']:.2f}×")
    print(
        f"Command: `.venv/bin/python scripts/bench_fk_triggers.py --rows {args.rows} --passes {args.passes}`"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--url",
        default=os.environ.get(
            "CERTLEDGER_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's maintenance database (a scratch database is created and dropped)",
    )
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--passes", type=int, default=7)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
