#!/usr/bin/env python3
"""Presentation verification benchmark (docs/FORMAT.md §13): a bank verifies presentations of one
business licence each, bound to its request and signed by the holder's key, on one core.

Issues N holder-bound business licences as one batch offline (each with its own holder key), signs
a trust bundle, has each holder answer the bank's request with a presentation, then verifies every
presentation with :func:`verifier.verify_presentation`: every check of a plain verification plus
the holder signature, nonce, audience and expiry. Each pass verifies the presentations parsed anew
(untimed), so none is served by what an earlier pass cached. The same credentials verified plainly
in the same run give the cost of the holder check. Prints a markdown fragment for
docs/BENCHMARKS.md.

    .venv/bin/python scripts/bench_presentation.py [--count 10000] [--sm2-count 100]
"""

from __future__ import annotations

import argparse
import gc
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_verifier as bv  # noqa: E402  (the benchmark's documents and bundle, shared)

from verifier import (  # noqa: E402
    AnchorRecord,
    HolderKey,
    IssuerKeyRecord,
    IssuerRecord,
    PresentationRequest,
    StandardMerkleTree,
    TrustBundle,
    Verifier,
    assemble_holder_copy,
    build_trust_bundle,
    eth_address,
    prepare_credential,
    present,
    sign_batch,
    sign_trust_bundle,
    verify_presentation,
)
from verifier._schema import parse_datetime  # noqa: E402

BANK = bv._uscc(8_888_888)


def run(count: int, holder_suite: str, passes: int = 3) -> dict:
    name, issuer_uscc = "广东省市场监督管理局", bv._uscc(9_999_999)
    issuer_key = secrets.token_bytes(32)
    holders = [HolderKey.generate(holder_suite) for _ in range(count)]  # type: ignore[arg-type]
    docs = []
    for i, holder in enumerate(holders):
        doc = bv.licence(i, name, issuer_uscc)
        doc["credentialSubject"] = {"id": holder.holder_id, **doc["credentialSubject"]}
        docs.append(doc)
    prepared = [prepare_credential(d, suite="secp256k1") for d in docs]
    tree = StandardMerkleTree.of([(p.target_hash, p.subject_hash) for p in prepared])
    signature = sign_batch(
        "secp256k1", issuer_key, tree.root, 1, count, chain_id=bv.CHAIN_ID, anchor_registry=bv.REGISTRY
    )
    copies = [
        assemble_holder_copy(
            d,
            p,
            merkle_root=tree.root,
            merkle_proof=tree.proof(i),
            batch_count=count,
            issuer_id=1,
            key_version=1,
            signature=signature,
            chain_id=bv.CHAIN_ID,
            anchor_registry=bv.REGISTRY,
            tx_hash="0x" + "ab" * 32,
            block_number=10,
        )
        for i, (d, p) in enumerate(zip(docs, prepared))
    ]
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
                    {1: IssuerKeyRecord(1, eth_address(issuer_key), 0, 0, b"")},
                )
            ],
            anchors=[AnchorRecord(tree.root, 1, 1, 1, count, 10, bv.T_ANCHOR, 1)],
        ),
        operator,
    )
    trust = TrustBundle.load(json.dumps(bundle).encode(), operators=[eth_address(operator)])
    at = parse_datetime(bv.AT)
    request = PresentationRequest.new(BANK, "credit-assessment", at=at)
    texts = [json.dumps(present(request, [c], h, at=at), ensure_ascii=False) for c, h in zip(copies, holders)]

    def fresh() -> list:
        """The presentations parsed anew, untimed: each timed loop meets documents nothing has read
        before, as a bank meets a presentation (no memo, no cached UTF-8 form from an earlier pass)."""
        parsed = [json.loads(t) for t in texts]
        gc.collect()
        return parsed

    rates, plain_rates = [], []
    for _ in range(passes):
        presentations = fresh()
        verifier = Verifier(trust=trust)
        t = time.perf_counter()
        results = [verify_presentation(p, request, verifier=verifier, at=at) for p in presentations]
        rates.append(count / (time.perf_counter() - t))
        if not all(r.valid for r in results):
            raise SystemExit(
                f"presentations failed: {next(r for r in results if not r.valid).results[0].failed}"
            )
        del presentations, results
        credentials = [p["verifiableCredential"][0] for p in fresh()]
        verifier = Verifier(trust=trust)
        t = time.perf_counter()
        plain = [verifier.verify(c, at=at) for c in credentials]
        plain_rates.append(count / (time.perf_counter() - t))
        assert all(r.valid for r in plain)
        del credentials, plain
    return {"suite": holder_suite, "count": count, "rates": rates, "plain": plain_rates}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10_000, help="presentations with a secp256k1 holder key")
    ap.add_argument(
        "--sm2-count", type=int, default=100, help="presentations with an SM2 holder key (gmssl: slow)"
    )
    args = ap.parse_args()
    rows = [run(args.count, "secp256k1"), run(args.sm2_count, "sm2")]
    print(
        "Target: ≥ 8,000 presentations/s on one core (one business licence each, secp256k1 holder key), "
        "with the SM2 rate beside it.\n"
    )
    print(
        "| holder key | presentations | verify_presentation (/s), median of 3 "
        "| plain verify of the same credentials (/s) |"
    )
    print("|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['suite']} | {r['count']:,} | **{statistics.median(r['rates']):,.0f}** "
            f"({', '.join(f'{x:,.0f}' for x in r['rates'])}) | {statistics.median(r['plain']):,.0f} |"
        )
    print(
        "\nEach presentation: one redaction-free business licence (16 leaves) bound to its own holder key, "
        "answering one request; every check of a plain verification plus `holder`."
    )


if __name__ == "__main__":
    main()
