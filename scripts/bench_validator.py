#!/usr/bin/env python3
"""Validator mode beside bundle mode, in the same run (docs/BENCHMARKS.md "Validator-sealed headers").

1. bundle mode: ``scripts/bench_verifier.py``'s offline verification of N credentials (fresh
   Verifier per pass, median of 3 passes);
2. the QBFT seal check alone (:func:`verifier.verify_sealed_header`): the real Besu header of
   ``tests/assets/besu-qbft-block-7528.json`` (3 seals of 4) and a development header sealed by
   the 4 dev validators;
3. validator mode per credential = the same N verifications, each followed by the seal check of its
   own carried header (what a credential carrying its own sealed header costs on top). The
   account/storage proofs of a full proof package are not in this figure.

    .venv/bin/python scripts/bench_validator.py [--count 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_verifier  # noqa: E402

from ledger_node.node import DEV_VALIDATOR_KEYS  # noqa: E402
from verifier import ValidatorSet, eth_address, seal_qbft_header, verify_sealed_header  # noqa: E402
from verifier._qbft import _verify_sealed_header  # noqa: E402 - the uncached check


def _seal_rate(header: bytes, validators: ValidatorSet, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        _verify_sealed_header(header, validators)
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bench_verifier._pin()
    vector = json.loads((ROOT / "tests/assets/besu-qbft-block-7528.json").read_text())
    besu = bytes.fromhex(vector["sealedHeaderRlp"][2:])
    besu_set = ValidatorSet(1, tuple(vector["expected"]["validators"]))
    dev_set = ValidatorSet(31337, tuple(eth_address(k) for k in DEV_VALIDATOR_KEYS))
    block = {
        "parentHash": "0x" + "11" * 32,
        "sha3Uncles": "0x" + "1d" * 32,
        "miner": "0x" + "00" * 20,
        "stateRoot": "0x" + "22" * 32,
        "transactionsRoot": "0x" + "56" * 32,
        "receiptsRoot": "0x" + "56" * 32,
        "logsBloom": "0x" + "00" * 256,
        "difficulty": "0x0",
        "number": "0x1d68",
        "gasLimit": "0x1c9c380",
        "gasUsed": "0x0",
        "timestamp": "0x6640618b",
        "extraData": "0x",
        "mixHash": "0x" + "00" * 32,
        "nonce": "0x0000000000000000",
        "baseFeePerGas": "0x0",
    }
    dev = seal_qbft_header(block, DEV_VALIDATOR_KEYS)

    bundle, _ = bench_verifier.run_python(args.count, "secp256k1")
    besu_rates = [_seal_rate(besu, besu_set, 2000) for _ in range(3)]
    dev_rates = [_seal_rate(dev, dev_set, 2000) for _ in range(3)]
    # Validator mode per credential, measured: each verification followed by the seal check of the
    # credential's own carried header, in the same timed loop — (a) one header shared by the batch
    # (the real Besu one; memoised after the first), (b) a distinct dev header per credential.
    validator, _ = bench_verifier.run_python(
        args.count, "secp256k1", per_credential=lambda: verify_sealed_header(besu, besu_set)
    )
    distinct = []
    for k in range(3):
        headers = iter(
            [
                seal_qbft_header({**block, "number": hex(10_000_000 * (k + 1) + i)}, DEV_VALIDATOR_KEYS)
                for i in range(args.count)
            ]
        )
        r, _ = bench_verifier.run_python(
            args.count,
            "secp256k1",
            passes=1,
            per_credential=lambda h=headers: verify_sealed_header(next(h), dev_set),
        )
        distinct.append(r["verifyPerSecond"])
    out = {
        "count": args.count,
        "bundleVerifyPerSecond": bundle["verifyPerSecond"],
        "bundleVerifyPerSecondPasses": bundle["verifyPerSecondPasses"],
        "besuSealCheckPerSecond": statistics.median(besu_rates),
        "devSealCheckPerSecond": statistics.median(dev_rates),
        "validatorModePerSecond": validator["verifyPerSecond"],
        "validatorModePerSecondPasses": validator["verifyPerSecondPasses"],
        "validatorModeDistinctHeadersPerSecond": statistics.median(distinct),
    }
    if args.json:
        print(json.dumps(out))
        return
    print(
        f"| bundle mode: verify {args.count:,} credentials (median of 3) | {out['bundleVerifyPerSecond']:,.0f}/s |"
    )
    print(f"| seal check, real Besu header (3 of 4 seals) | {out['besuSealCheckPerSecond']:,.0f}/s |")
    print(f"| seal check, dev header (4 of 4 seals) | {out['devSealCheckPerSecond']:,.0f}/s |")
    print(
        f"| validator mode: verify + sealed header, one header per batch | {out['validatorModePerSecond']:,.0f}/s |"
    )
    print(
        "| validator mode: verify + a distinct 4-seal header per credential "
        f"| {out['validatorModeDistinctHeadersPerSecond']:,.0f}/s |"
    )


if __name__ == "__main__":
    main()
