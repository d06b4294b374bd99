#!/usr/bin/env python3
"""Offline verification benchmark, beside OpenAttestation on the same documents.

Issues N business licences as one batch offline (prepare → Merkle tree → issuer signature →
holder copies), exports a signed trust bundle, then verifies every credential on one core with
:class:`verifier.Verifier`. Runs ``scripts/oa_bench.mjs`` (``@tradetrust-tt/tradetrust``
``wrapDocuments`` + ``verifySignature``) on the same N documents and prints both rates, the
ratio, and OA's wrap rate, as a markdown fragment for docs/BENCHMARKS.md (or JSON with --json).

    .venv/bin/python scripts/bench_verifier.py [--count 10000] [--suite secp256k1] [--json] [--no-oa]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verifier import (  # noqa: E402 - after the path insertion above
    AnchorRecord,
    IssuerKeyRecord,
    IssuerRecord,
    StandardMerkleTree,
    TrustBundle,
    Verifier,
    assemble_holder_copy,
    build_trust_bundle,
    eth_address,
    prepare_credential,
    sign_batch,
    sign_trust_bundle,
    sm2_public_key,
)
from verifier.issuance import with_licence_metadata  # noqa: E402 - after the path insertion above
from verifier.uscc import check_character  # noqa: E402

CHAIN_ID = 31337
REGISTRY = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
T_ANCHOR = 1_767_571_200
AT = "2026-06-01T00:00:00Z"


def _uscc(i: int) -> str:
    body = f"91440101MA{i:07d}"
    return body + check_character(body)


def licence(i: int, issuer_name: str, issuer_uscc: str) -> dict[str, Any]:
    """An 18-field-ish business licence (33 leaves), the benchmark's document."""
    base = f"urn:certledger:{CHAIN_ID}:{REGISTRY}:status:"
    cid = f"urn:uuid:{uuid.uuid4()}"
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://certledger.example/ns/v1"],
        "id": cid,
        "type": ["VerifiableCredential", "BusinessLicence"],
        "issuer": {
            "id": f"did:certledger:{CHAIN_ID}:issuer:1",
            "name": issuer_name,
            "unifiedSocialCreditCode": issuer_uscc,
        },
        "validFrom": "2026-01-01T00:00:00Z",
        "validUntil": "2031-01-01T00:00:00Z",
        # with the national identifier and metadata the registry fills in (FORMAT.md §2.3)
        "credentialSubject": with_licence_metadata(
            {
                "unifiedSocialCreditCode": _uscc(i),
                "licenceNumber": f"440101{i:09d}",
                "enterpriseName": f"广州市穗云数据科技有限公司{i}",
                "enterpriseType": "有限责任公司（自然人投资或控股）",
                "legalRepresentative": "陈志明",
                "registeredCapital": {"amount": "1000000.00", "currency": "CNY"},
                "dateOfEstablishment": "2015-06-18",
                "businessScope": "软件开发；信息技术咨询服务；数据处理和存储支持服务",
                "address": "广州市天河区珠江新城华夏路10号",
                "registrationAuthority": "广州市天河区市场监督管理局",
            },
            "BusinessLicence",
            issuer_uscc,
            cid,
            "2026-01-01T00:00:00Z",
        ),
        "credentialSchema": {
            "id": "https://certledger.example/schemas/v1/BusinessLicence.json",
            "type": "JsonSchema",
        },
        "credentialStatus": [
            {
                "id": f"{base}{p}#{i}",
                "type": "BitstringStatusListEntry",
                "statusPurpose": p,
                "statusListIndex": str(i),
                "statusListCredential": base + p,
            }
            for p in ("revocation", "suspension")
        ],
    }


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _batch(count: int, suite: str, key: bytes, name: str, issuer_uscc: str, first: int):
    """``count`` fresh documents issued as one batch: (docs, prepare seconds, tree seconds, root, holder copies)."""
    docs = [licence(first + i, name, issuer_uscc) for i in range(count)]
    t = time.perf_counter()
    prepared = [prepare_credential(d, suite=suite) for d in docs]
    prepare_s = time.perf_counter() - t
    t = time.perf_counter()
    tree = StandardMerkleTree.of([(p.target_hash, p.subject_hash) for p in prepared])
    tree_s = time.perf_counter() - t
    signature = sign_batch(suite, key, tree.root, 1, count, chain_id=CHAIN_ID, anchor_registry=REGISTRY)
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
            chain_id=CHAIN_ID,
            anchor_registry=REGISTRY,
            tx_hash="0x" + "ab" * 32,
            block_number=10,
        )
        for i, (d, p) in enumerate(zip(docs, prepared))
    ]
    # What a bank does: the holder copies arrive as JSON text; parse them outside the timed loop
    # (parsing is the same for any verifier).
    copies = [json.loads(json.dumps(c, ensure_ascii=False)) for c in copies]
    return docs, prepare_s, tree_s, tree.root, copies, len(prepared[0].salts)


def run_python(
    count: int, suite: str, passes: int = 3, per_credential: Any = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``passes`` batches of ``count`` credentials; each pass verifies one batch it has not seen, with
    a fresh :class:`Verifier` (so no cache carries over from an earlier pass). ``per_credential``,
    if given, is called after each verification inside the timed loop (scripts/bench_validator.py)."""
    name, issuer_uscc = "广东省市场监督管理局", _uscc(9_999_999)
    if suite == "sm2-sm3":
        key = (secrets.randbelow(2**255) + 1).to_bytes(32, "big")
        account, sm2 = eth_address(secrets.token_bytes(32)), sm2_public_key(key)
    else:
        key = secrets.token_bytes(32)
        account, sm2 = eth_address(key), b""
    batches = [_batch(count, suite, key, name, issuer_uscc, k * count) for k in range(passes)]
    operator = secrets.token_bytes(32)
    bundle = sign_trust_bundle(
        build_trust_bundle(
            chain_id=CHAIN_ID,
            contracts={
                "issuerRegistry": "0x" + "01" * 20,
                "anchorRegistry": REGISTRY,
                "dataFlowLedger": "0x" + "02" * 20,
            },
            block={
                "number": 20,
                "hash": "0x" + "cd" * 32,
                "timestamp": T_ANCHOR + 60,
                "stateRoot": "0x" + "ef" * 32,
            },
            issuers=[
                IssuerRecord(
                    1,
                    name,
                    issuer_uscc,
                    suite,
                    "active",
                    0,
                    0,
                    frozenset({1, 2, 3}),
                    {1: IssuerKeyRecord(1, account, 0, 0, sm2)},
                )
            ],
            anchors=[AnchorRecord(b[3], 1, 1, 1, count, 10, T_ANCHOR, 1) for b in batches],
        ),
        operator,
    )
    trust = TrustBundle.load(json.dumps(bundle).encode(), operators=[eth_address(operator)])
    # The inputs (every pass's parsed copies) live through the whole run; a bank's verifier holds
    # one document at a time. Freeze them out of the cyclic GC's scans, which would otherwise grow
    # with the benchmark's own input size rather than with anything the verifier does.
    gc.collect()
    gc.freeze()
    rates, cpu_rates = [], []
    for _, _, _, _, copies, _ in batches:
        verifier = Verifier(trust=trust)
        t, c = time.perf_counter(), time.process_time()
        if per_credential is None:
            results = [verifier.verify(copy_, at=AT) for copy_ in copies]
        else:
            results = []
            for copy_ in copies:
                results.append(verifier.verify(copy_, at=AT))
                per_credential()
        verify_s, verify_cpu = time.perf_counter() - t, time.process_time() - c
        if not all(r.valid for r in results):
            bad = next(r for r in results if not r.valid)
            raise SystemExit(f"benchmark credentials failed to verify: {bad.failed}")
        rates.append(_rate(count, verify_s))
        cpu_rates.append(_rate(count, verify_cpu))
    prepare_rates = [_rate(count, b[1]) for b in batches]
    return {
        "count": count,
        "passes": passes,
        "suite": suite,
        "leavesPerCredential": batches[0][5],
        "preparePerSecond": statistics.median(prepare_rates),
        "treeSeconds": statistics.median(b[2] for b in batches),
        "verifyPerSecondPasses": rates,
        "verifyPerSecond": statistics.median(rates),
        "verifyPerSecondBest": max(rates),
        "verifyPerCpuSecond": statistics.median(cpu_rates),
    }, batches[0][0]


def run_oa(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@tradetrust-tt" / "tradetrust").is_dir():
        print(
            "OpenAttestation skipped: node or node_modules/@tradetrust-tt/tradetrust missing (npm ci)",
            file=sys.stderr,
        )
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
        path = f.name
    try:
        proc = subprocess.run(  # noqa: PLW1510 - the return code is checked below
            [node, str(ROOT / "scripts" / "oa_bench.mjs"), path],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=1800,
            preexec_fn=_pin,
        )
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise SystemExit(f"oa_bench.mjs failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--suite", choices=["secp256k1", "sm2-sm3"], default="secp256k1")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of markdown")
    parser.add_argument("--no-oa", action="store_true", help="skip the OpenAttestation run")
    args = parser.parse_args()
    _pin()
    ours, docs = run_python(args.count, args.suite)
    oa = None if args.no_oa else run_oa(docs)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "certledger": ours,
        "openattestation": oa,
    }
    if oa:
        report["ratioVerify"] = ours["verifyPerSecond"] / oa["verifyPerSecond"]
    if args.json:
        print(json.dumps(report))
        return
    n = ours["count"]
    print(
        f"Offline verification, {n:,} business licences in one batch ({ours['leavesPerCredential']} leaves each), "
        f"suite {ours['suite']}, one core:\n"
    )
    print(
        "| measure | certledger verifier | OpenAttestation (`@tradetrust-tt/tradetrust` "
        f"{oa['version'] if oa else '—'}) | ratio |"
    )
    print("|---|---:|---:|---:|")
    passes = ", ".join(f"{r:,.0f}" for r in ours["verifyPerSecondPasses"])
    if oa:
        oa_passes = ", ".join(f"{r:,.0f}" for r in oa["verifyPerSecondPasses"])
        print(
            f"| verify (credentials/s), median of {ours['passes']} passes | {ours['verifyPerSecond']:,.0f} "
            f"({passes}) | {oa['verifyPerSecond']:,.0f} ({oa_passes}; `verifySignature`, integrity only) "
            f"| {report['ratioVerify']:.1f}× |"
        )
        print(
            f"| prepare / wrap (credentials/s) | {ours['preparePerSecond']:,.0f} (`prepare_credential`) | "
            f"{oa['wrapPerSecond']:,.0f} (`wrapDocuments`) | {ours['preparePerSecond'] / oa['wrapPerSecond']:.1f}× |"
        )
    else:
        print(
            f"| verify (credentials/s), median of {ours['passes']} passes | {ours['verifyPerSecond']:,.0f} ({passes}) "
            "| — | — |"
        )
        print(f"| prepare (credentials/s) | {ours['preparePerSecond']:,.0f} | — | — |")
    print(
        f"\nEach pass verifies another {n:,}-credential batch with a fresh verifier; "
        f"verify on CPU time: {ours['verifyPerCpuSecond']:,.0f}/s; Merkle tree of {n:,}: "
        f"{ours['treeSeconds'] * 1000:.0f} ms; {report['machine']}."
    )
    print(
        "Command: `.venv/bin/python scripts/bench_verifier.py --count "
        f"{n}{' --suite ' + args.suite if args.suite != 'secp256k1' else ''}`"
    )


if __name__ == "__main__":
    main()
