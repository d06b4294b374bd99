#!/usr/bin/env python3
"""Scale figures: N credentials (default 1,000,000) issued into the registry (SQLite, batches of
10,000) on a fresh anvil; reports proof size, holder-copy size, DB bytes per credential, the
trust bundle's size, and extrapolates to 100,000,000. The service's memory (this process, which
runs the registry in-process, and its worker processes) is sampled every 50 ms: its peak, and its
resident size after each tenth of the run, to show whether it grows with the count (issue 23).

    python scripts/bench_scale.py [--count 1000000] [--batch 10000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchlib import fresh_chain, issuer_in_process  # noqa: E402


class MemorySampler:
    """Resident memory of this process and its children (the issuance workers), sampled every
    ``every`` seconds in a thread: the peak of the sum, and the largest process."""

    def __init__(self, every: float = 0.05) -> None:
        import threading

        import psutil

        self.me, self.every = psutil.Process(), every
        self.peak_total = self.peak_process = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> tuple[int, int]:
        """(resident bytes of the tree, of the largest process) right now."""
        import psutil

        sizes = []
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                sizes.append(p.memory_info().rss)
            except psutil.Error:  # a worker that just ended
                pass
        return sum(sizes), max(sizes, default=0)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            total, largest = self.now()
            self.peak_total, self.peak_process = max(self.peak_total, total), max(self.peak_process, largest)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def run(rpc_url: str, manifest: Path, work: Path, count: int, batch: int, cache_mib: int = 8) -> dict:
    from sqlalchemy import select

    from registry.db.models import Credential
    from registry.services.bundle import export_bundle
    from registry.services.records import holder_copy
    from scripts.samples import business_licence_record

    url = f"sqlite+aiosqlite:///{work / 'registry.db'}"
    async with issuer_in_process(rpc_url, manifest, url, work, batch, sqlite_cache_mib=cache_mib) as (
        ctx,
        principal,
        issuance,
        pipeline,
    ):
        # uploads as JSON Lines records, handed to the workers as text, as the bulk route does
        template = [json.dumps(business_licence_record(), ensure_ascii=False) for _ in range(20_000)]
        t0 = time.perf_counter()
        done = 0
        checkpoints: list[tuple[int, int]] = []  # (credentials issued, resident bytes of the tree)
        step = max(20_000, count // 10)
        with MemorySampler() as memory:
            while done < count:
                n = min(20_000, count - done)
                await issuance.accept(
                    principal, "BusinessLicence", texts=template[:n], atomic=False, request_id="scale"
                )
                done += n
                await pipeline.drain(timeout=600)
                if done % step == 0 or done == count:
                    checkpoints.append((done, memory.now()[0]))
                print(f"  {done:,} issued, {done / (time.perf_counter() - t0):,.0f}/s", file=sys.stderr)
        elapsed = time.perf_counter() - t0
        async with ctx.sessions() as s:
            cred = (await s.execute(select(Credential).limit(1))).scalar()
            copy = await holder_copy(s, ctx, cred)
        bundle = await export_bundle(ctx)
    db_bytes = sum(p.stat().st_size for p in work.glob("registry.db*"))
    layout = _layout(work / "registry.db")
    copy_bytes = len(json.dumps(copy, ensure_ascii=False).encode())
    proof = copy["proof"]
    proof_bytes = len(proof["merkleProof"]) * 32
    bundle_bytes = len(json.dumps(bundle).encode())
    return {
        "credentials": count,
        "batch": batch,
        "seconds": round(elapsed, 1),
        "rate_per_s": round(count / elapsed),
        "db_bytes": db_bytes,
        "db_bytes_per_credential": round(db_bytes / count),
        "proof_depth": len(proof["merkleProof"]),
        "proof_bytes": proof_bytes,
        "holder_copy_bytes": copy_bytes,
        "bundle_bytes": bundle_bytes,
        "anchors": math.ceil(count / batch),
        "peak_memory_bytes": memory.peak_total,
        "peak_process_bytes": memory.peak_process,
        "memory_checkpoints": checkpoints,
        "layout": layout,
    }


def _layout(path: Path) -> list[tuple[str, int]]:
    """Where the database's bytes are: each table and index with its pages' bytes (SQLite's dbstat),
    largest first, and the free pages and the write-ahead log beside them."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        free = (
            con.execute("PRAGMA freelist_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
        )
    finally:
        con.close()
    wal = path.with_name(path.name + "-wal")
    return [*rows, ("(free pages)", free), ("(write-ahead log)", wal.stat().st_size if wal.exists() else 0)]


def extrapolate(r: dict, target: int = 100_000_000) -> dict:
    anchors = math.ceil(target / r["batch"])
    return {
        "credentials": target,
        "db_bytes": r["db_bytes_per_credential"] * target,
        "anchors": anchors,
        "anchor_gas": anchors * 58_516,
        "bundle_status_list_bytes": target // 8,
        "bundle_anchor_bytes": round((r["bundle_bytes"] / max(1, r["anchors"])) * anchors),
        "issuance_hours": round(target / r["rate_per_s"] / 3600, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument(
        "--sqlite-cache-mib", type=int, default=8, help="the service's SQLite page cache per connection"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with fresh_chain(tmp) as (rpc_url, manifest):
            r = asyncio.run(
                run(rpc_url, manifest, tmp / "work", args.count, args.batch, args.sqlite_cache_mib)
            )
    x = extrapolate(r)
    if args.json:
        print(json.dumps({"measured": r, "extrapolated": x}))
        return 0
    gib = 1024**3
    print(f"| measured: {r['credentials']:,} credentials, batches of {r['batch']:,} | |\n|---|---:|")
    print(
        f"| issuance (accept → anchored, in-process, SQLite, page cache {args.sqlite_cache_mib} MiB per connection)"
        f" | {r['rate_per_s']:,}/s ({r['seconds']} s) |"
    )
    print(
        f"| DB bytes per credential (SQLite file incl. indexes and batch trees) | {r['db_bytes_per_credential']:,} |"
    )
    for name, size in r["layout"]:
        if size * 100 >= r["db_bytes"]:  # (what holds 1 % or more)
            print(f"| … {name} | {size / r['credentials']:,.0f} per credential |")
    print(f"| Merkle proof | {r['proof_depth']} hashes = {r['proof_bytes']} bytes |")
    print(f"| holder copy (JSON, business licence) | {r['holder_copy_bytes']:,} bytes |")
    print(f"| trust bundle ({r['anchors']} anchors, status lists) | {r['bundle_bytes']:,} bytes |")
    mib = 1024**2
    print(
        f"| service memory, peak (this process and its workers; largest process) | "
        f"{r['peak_memory_bytes'] / mib:,.0f} MiB ({r['peak_process_bytes'] / mib:,.0f} MiB) |"
    )
    marks = ", ".join(f"{n // 1000:,}k: {b / mib:,.0f}" for n, b in r["memory_checkpoints"])
    print(f"| service memory after each tenth (MiB) | {marks} |")
    print(f"\n| extrapolated to {x['credentials']:,} | |\n|---|---:|")
    print(f"| database | {x['db_bytes'] / gib:,.0f} GiB |")
    print(f"| anchors / total anchor gas | {x['anchors']:,} / {x['anchor_gas']:,} |")
    print(
        f"| status lists (one bit per credential, before gzip) | {x['bundle_status_list_bytes'] / 1024**2:,.1f} MiB |"
    )
    print(f"| trust bundle anchor list | {x['bundle_anchor_bytes'] / 1024**2:,.1f} MiB |")
    print(f"| issuance time at the measured rate | {x['issuance_hours']} h |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
