#!/usr/bin/env python3
"""How fast this machine is right now, against the planning figures in DESIGN ("Targets").

    python scripts/bench_machine.py [--json]

The development machine is a shared 2-core VM whose speed drifts by tens of per cent from one
minute to the next. `scripts/bench` runs this first and last, so every other figure of a run can
be read against the speed the machine had at the time. Each probe is the best of five rounds of at
least 0.2 s (the best round is the least disturbed one); keccak goes through eth_hash's
pycryptodome backend, as DESIGN's figure does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import timeit

#: DESIGN's "Known speeds on this machine, for planning" (operations per second).
PLANNING = {
    "keccak-256 via eth_hash, 32 bytes": 200_000,
    "hashlib.sha256, 32 bytes": 2_500_000,
    'hashlib.new("sm3"), 32 bytes': 700_000,
    "coincurve sign + verify": 14_000,
}


def _rate(stmt: str, env: dict[str, object], rounds: int = 5) -> float:
    timer = timeit.Timer(stmt, globals=env)
    n, _ = timer.autorange()  # a count that takes at least 0.2 s
    return n / min(timer.repeat(repeat=rounds, number=n))


def probes() -> dict[str, float]:
    import coincurve
    from eth_hash.backends.pycryptodome import CryptodomeBackend

    key = coincurve.PrivateKey(b"\x01" * 32)
    env = {
        "d": b"\x5a" * 32,
        "keccak": CryptodomeBackend().keccak256,
        "sha256": hashlib.sha256,
        "new": hashlib.new,
        "key": key,
        "pub": key.public_key,
        "digest": hashlib.sha256(b"x").digest(),
    }
    return {
        "keccak-256 via eth_hash, 32 bytes": _rate("keccak(d)", env),
        "hashlib.sha256, 32 bytes": _rate("sha256(d).digest()", env),
        'hashlib.new("sm3"), 32 bytes': _rate('new("sm3", d).digest()', env),
        "coincurve sign + verify": _rate(
            "pub.verify(key.sign(digest, hasher=None), digest, hasher=None)", env
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rates = probes()
    ratios = {k: rates[k] / PLANNING[k] for k in rates}
    if args.json:
        print(json.dumps({"rates": rates, "ofPlanning": ratios}))
        return 0
    print("| probe | now (/s) | DESIGN's planning figure (/s) | now ÷ planning |")
    print("|---|---:|---:|---:|")
    for k, r in rates.items():
        print(f"| {k} | {r:,.0f} | {PLANNING[k]:,} | {ratios[k]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
