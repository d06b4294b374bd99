#!/usr/bin/env python3
"""End-to-end issuance rate: accept (validate, canonicalise, salt, hash, persist) → batch →
Merkle tree → issuer signature → anchor tx → confirmation, proofs stored (the batch's tree).

    python scripts/bench_issuance.py [--count 20000] [--batch 1000 --batch 10000] [--clients 1 --clients 2]
                                     [--passes 3] [--postgres URL] [--remote-signer] [--json]

Runs the registry's own services in-process (no HTTP) against a fresh anvil it starts: uploads
of 10,000 records (JSON Lines bodies, handled as the bulk route handles them) from 1 or 2
concurrent clients while the service's background pipeline
anchors, timed from the first upload until the last credential is anchored (checked by count).
Each configuration runs `--passes` times, each pass on a fresh database; the table gives the
pass with the median rate and lists every pass's rate (the machine's speed drifts from one
second to the next, and one pass of 20,000 credentials lasts about a second).

``--remote-signer``: the issuer keeps its key in its own signer, a real `certledger signer` process
(fresh keys per pass) that the pipeline asks once per batch for the root's signature and the
signed anchor transaction, after the signer rebuilt the tree from the batch's leaves.
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
from _benchlib import fresh_chain, issuer_in_process, own_signer, scratch_database, service_cpu  # noqa: E402


async def run_one(
    rpc_url: str,
    manifest: Path,
    database_url: str,
    batch: int,
    count: int,
    workdir: Path,
    clients: int = 1,
    signer: dict | None = None,
) -> dict:
    """Uploads of 10,000 records from `clients` concurrent clients while the service's own
    background pipeline anchors (as `certledger serve` runs it); done when every credential is
    anchored with its proof stored."""
    from registry.services.jsonl import jsonl_records
    from scripts.samples import business_licence_record

    async with issuer_in_process(rpc_url, manifest, database_url, workdir, batch, signer) as (
        ctx,
        principal,
        issuance,
        pipeline,
    ):
        # each upload as the JSON Lines body a client sends, taken apart in the timed part as the
        # route does (records decoded from text are fresh objects, which cost their full price
        # wherever they are copied; business_licence_record() shares its strings between records)
        bodies = [
            "\n".join(
                json.dumps(business_licence_record(), ensure_ascii=False)
                for _ in range(min(10_000, count - i))
            ).encode()
            for i in range(0, count, 10_000)
        ]
        for _ in range(2):  # start and warm both worker processes
            await issuance.accept(
                principal,
                "BusinessLicence",
                [business_licence_record() for _ in range(2500)],
                atomic=False,
                request_id="warm-up",
            )
        await pipeline.drain()
        await ctx.checkpoint_wal()  # (an idle service has done this after the warm-up's uploads)
        accepted = 0

        async def client(mine: list[str]) -> None:
            nonlocal accepted
            for body in mine:
                texts, lines = jsonl_records(body)
                res = await issuance.accept(
                    principal, "BusinessLicence", texts=texts, lines=lines, atomic=False, request_id="bench"
                )
                accepted += len(res.accepted)

        background = asyncio.create_task(pipeline.run_forever())
        try:
            cpu0 = service_cpu()
            t0 = time.perf_counter()
            await asyncio.gather(*[client(bodies[k::clients]) for k in range(clients)])
            t1 = time.perf_counter()
            await pipeline.drain(timeout=600)
            t2 = time.perf_counter()
            cpu1 = service_cpu()
        finally:
            background.cancel()
            await asyncio.gather(background, return_exceptions=True)  # (before the engine closes)
        async with ctx.sessions() as s:
            from sqlalchemy import func, select

            from registry.db.models import Batch, Credential

            anchored = (
                await s.execute(
                    select(func.count()).select_from(Credential).join(Batch).where(Batch.state == "anchored")
                )
            ).scalar_one()
        if anchored != accepted + 5000:
            raise SystemExit(f"only {anchored - 5000} of {accepted} credentials were anchored")
    return {
        "database": database_url.split(":")[0].split("+")[0],
        "batch": batch,
        "clients": clients,
        "signer": "remote" if signer else "custodial",
        "credentials": accepted,
        "accept_s": round(t1 - t0, 3),
        "anchor_s": round(t2 - t1, 3),
        "rate_per_s": round(accepted / (t2 - t0)),
        "accept_rate_per_s": round(accepted / (t1 - t0)),
        "cpu_us": {k: round((cpu1[k] - cpu0[k]) / accepted * 1e6, 1) for k in cpu1},
    }


def one_pass(
    kind: str,
    admin: str | None,
    rpc_url: str,
    manifest: Path,
    batch: int,
    count: int,
    clients: int,
    work: Path,
    remote_signer: bool = False,
) -> dict:
    """One run of :func:`run_one` on a fresh database (a SQLite file in `work`, or a scratch
    PostgreSQL database, dropped afterwards), with a fresh signer process if `remote_signer`."""
    from contextlib import nullcontext

    work.mkdir(parents=True, exist_ok=True)
    with own_signer(work, manifest) if remote_signer else nullcontext() as signer:
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{work / 'registry.db'}"
            return asyncio.run(run_one(rpc_url, manifest, url, batch, count, work, clients, signer))
        with scratch_database(admin) as url:
            return asyncio.run(run_one(rpc_url, manifest, url, batch, count, work, clients, signer))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument(
        "--clients", type=int, action="append", help="concurrent uploading clients (default: 1 and 2)"
    )
    ap.add_argument(
        "--passes", type=int, default=3, help="runs of each configuration, each on a fresh database"
    )
    ap.add_argument(
        "--postgres", help="an admin PostgreSQL URL (postgresql://...); a scratch database is made"
    )
    ap.add_argument(
        "--remote-signer",
        action="store_true",
        help="the issuer signs with its own `certledger signer` process (one call per batch)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    batches = args.batch or [1000, 10_000]
    client_counts = args.clients or [1, 2]

    if args.passes < 1 or args.count < 1:
        ap.error("--passes and --count must be at least 1")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with fresh_chain(tmp) as (rpc_url, manifest):
            dbs = [("sqlite", None)] + ([("postgres", args.postgres)] if args.postgres else [])
            for kind, admin in dbs:
                for batch, clients in [(b, c) for b in batches for c in client_counts]:
                    passes = [
                        one_pass(
                            kind,
                            admin,
                            rpc_url,
                            manifest,
                            batch,
                            args.count,
                            clients,
                            tmp / f"{kind}-{batch}-{clients}-{k}",
                            args.remote_signer,
                        )
                        for k in range(args.passes)
                    ]
                    median = sorted(passes, key=lambda r: r["rate_per_s"])[len(passes) // 2]
                    results.append({**median, "passes": [r["rate_per_s"] for r in passes]})
    if args.json:
        print(json.dumps(results))
    else:
        print(
            f"Median of {args.passes} passes; the times are the median pass's"
            f"{'; the issuer signs with its own certledger signer process' if args.remote_signer else ''}.\n"
        )
        print(
            "| database | batch | clients | credentials | all accepted (s) | then all anchored (s) "
            "| end-to-end /s (every pass) | CPU per credential (µs): service / workers |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in results:
            every = ", ".join(f"{x:,}" for x in r["passes"])
            print(
                f"| {r['database']} | {r['batch']:,} | {r['clients']} | {r['credentials']:,} | {r['accept_s']} "
                f"| {r['anchor_s']} | **{r['rate_per_s']:,}** ({every}) "
                f"| {r['cpu_us']['service']:.0f} / {r['cpu_us']['workers']:.0f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
