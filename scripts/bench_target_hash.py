#!/usr/bin/env python3
"""targetHash and verification in CPU time, for A/B runs of a format change (docs/BENCHMARKS.md,
"targetHash with committed paths").

    .venv/bin/python scripts/bench_target_hash.py [--count 20000] [--verify-count 3000] [--passes 5]

Prints the issuer's hot path (`seeded_target_hash_of_parts` on the FORMAT.md §10 licence) and
offline verification of one batch, each the best of `--passes` in CPU time (less sensitive than
wall time to other work on a shared machine). To compare with another tree, run the same command
there with PYTHONPATH set to that tree.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--verify-count", type=int, default=3_000)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()

    from tests.support.factory import AT, World
    from verifier import Verifier
    from verifier._internal.canon import jcs
    from verifier._internal.disclosure import SUITE_HASHES, envelope_of, seeded_target_hash_of_parts

    doc = json.loads((ROOT / "tests" / "assets" / "format_vectors.json").read_text("utf-8"))["document"]
    env, subject, h = jcs(envelope_of(doc)), doc["credentialSubject"], SUITE_HASHES["secp256k1"]
    seeds = [os.urandom(32) for _ in range(args.count)]
    best = float("inf")
    for _ in range(args.passes):
        t = time.process_time()
        for seed in seeds:
            seeded_target_hash_of_parts(env, subject, h, seed)
        best = min(best, time.process_time() - t)
    print(f"issuer targetHash: {args.count / best:,.0f}/s (CPU time, best of {args.passes})")

    w = World()
    issuer = w.add_issuer()
    docs = w.issue(issuer, [w.document(issuer) for _ in range(args.verify_count)])
    trust = w.trust()
    best = float("inf")
    for _ in range(args.passes):
        v = Verifier(trust=trust)
        t = time.process_time()
        for d in docs:
            v.verify(d, at=AT)
        best = min(best, time.process_time() - t)
    assert all(Verifier(trust=trust).verify(d, at=AT).valid for d in docs[:10])
    print(f"offline verification: {len(docs) / best:,.0f}/s (CPU time, best of {args.passes})")


if __name__ == "__main__":
    main()
