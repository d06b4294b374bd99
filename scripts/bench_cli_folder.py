#!/usr/bin/env python3
"""``certledger-verify`` on a folder of credential files, the whole process (issue 23).

Issues N business licences offline (batches of 10,000: prepare → Merkle tree → issuer signature →
holder copies, as scripts/bench_verifier.py does), writes each holder copy to its own file and a
signed trust bundle beside them, then times the real command, start to exit, reading every file:

    certledger-verify FOLDER --bundle bundle.json --at … --max-age none --json --jobs J  > /dev/null

for each ``--jobs`` value, checking that every line says valid. Peak memory is sampled every 20 ms
over the command's whole process tree (psutil): the total resident size of all its processes, and
the largest single one.

    .venv/bin/python scripts/bench_cli_folder.py [--count 100000] [--jobs 1 --jobs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_verifier as bv  # noqa: E402  (the benchmark's documents, shared)

from verifier import (  # noqa: E402
    AnchorRecord,
    IssuerKeyRecord,
    IssuerRecord,
    build_trust_bundle,
    eth_address,
    sign_trust_bundle,
)

BATCH = 10_000


def write_inputs(folder: Path, count: int) -> Path:
    """``count`` holder copies as files in ``folder``/creds and the signed bundle; returns the bundle."""
    name, issuer_uscc = "广东省市场监督管理局", bv._uscc(9_999_999)
    key = secrets.token_bytes(32)
    creds = folder / "creds"
    creds.mkdir()
    roots = []
    for first in range(0, count, BATCH):
        n = min(BATCH, count - first)
        _, _, _, root, copies, _ = bv._batch(n, "secp256k1", key, name, issuer_uscc, first)
        roots.append((root, n))
        for i, c in enumerate(copies):
            (creds / f"{first + i:07d}.json").write_text(json.dumps(c, ensure_ascii=False), encoding="utf-8")
    operator = secrets.token_bytes(32)
    bundle = sign_trust_bundle(
        build_trust_bundle(
            chain_id=bv.CHAIN_ID,
            contracts={
                "issuerRegistry": "0x" + "01" * 20,
                "anchorRegistry": bv.REGISTRY,
                "dataFlowLedger": "0x" + "02" * 20,
            },
            block={
                "number": 20,
                "hash": "0x" + "cd" * 32,
                "timestamp": bv.T_ANCHOR + 60,
                "stateRoot": "0x" + "ef" * 32,
            },
            issuers=[
                IssuerRecord(
                    1,
                    name,
                    issuer_uscc,
                    "secp256k1",
                    "active",
                    0,
                    0,
                    frozenset({1, 2, 3}),
                    {1: IssuerKeyRecord(1, eth_address(key), 0, 0, b"")},
                )
            ],
            anchors=[AnchorRecord(root, 1, 1, 1, n, 10, bv.T_ANCHOR, 1) for root, n in roots],
        ),
        operator,
    )
    path = folder / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def _sample(proc: subprocess.Popen, peaks: dict[str, int], stop: threading.Event) -> None:
    import psutil

    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            tree = [root, *root.children(recursive=True)]
            sizes = []
            for p in tree:
                try:
                    sizes.append(p.memory_info().rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        peaks["total"] = max(peaks["total"], sum(sizes))
        peaks["largest"] = max(peaks["largest"], max(sizes, default=0))
        stop.wait(0.02)


def run_cli(folder: Path, bundle: Path, jobs: int, count: int) -> dict:
    cmd = [
        str(Path(sys.executable).parent / "certledger-verify"),
        str(folder / "creds"),
        "--bundle",
        str(bundle),
        "--at",
        bv.AT,
        "--max-age",
        "none",
        "--json",
        "--jobs",
        str(jobs),
    ]
    peaks, stop = {"total": 0, "largest": 0}, threading.Event()
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        sampler = threading.Thread(target=_sample, args=(proc, peaks, stop), daemon=True)
        sampler.start()
        _, stderr = proc.communicate()
        seconds = time.perf_counter() - t
        stop.set()
        sampler.join()
        out.seek(0)
        lines = out.read().splitlines()
    if proc.returncode != 0 or len(lines) != count or not all(json.loads(x)["valid"] for x in lines):
        raise SystemExit(
            f"--jobs {jobs}: exit {proc.returncode}, {len(lines)} lines: {stderr.decode()[-500:]}"
        )
    return {
        "jobs": jobs,
        "seconds": seconds,
        "perSecond": count / seconds,
        "peakTotalMiB": peaks["total"] / 2**20,
        "peakLargestMiB": peaks["largest"] / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, action="append", help="--jobs values to time (default 1 and 2)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="certledger-cli-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        bundle = write_inputs(folder, args.count)
        made = time.perf_counter() - t
        rows = [run_cli(folder, bundle, j, args.count) for j in (args.jobs or [1, 2])]
    if args.json:
        print(json.dumps({"count": args.count, "inputSeconds": made, "runs": rows}, indent=2))
        return
    print(
        f"{args.count:,} holder copies (business licences, one file each) and a signed bundle, "
        f"written in {made:.0f} s\n"
    )
    print(
        "| --jobs | whole process (s) | credentials/s | peak memory, all processes (MiB) | largest process (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['jobs']} | {r['seconds']:.1f} | **{r['perSecond']:,.0f}** | {r['peakTotalMiB']:.0f} | "
            f"{r['peakLargestMiB']:.0f} |"
        )


if __name__ == "__main__":
    main()
