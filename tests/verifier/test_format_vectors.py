"""docs/FORMAT.md's worked example (tests/assets/format_vectors.json) recomputed with the verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from verifier import StandardMerkleTree, batch_digest, leaf_hash, prepare_credential, subject_hash
from verifier._internal.disclosure import SUITE_HASHES, recompute_target_hash
from verifier._internal.suites import recover_address, verify_sm2
from verifier._schema import schema_errors

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "assets" / "format_vectors.json").read_text(encoding="utf-8"))


def _b(h: str) -> bytes:
    return bytes.fromhex(h[2:])


def test_the_example_document_is_schema_valid():
    assert schema_errors(VECTORS["document"], "BusinessLicence") == []


def test_digests_and_target_hash_in_both_suites():
    doc = VECTORS["document"]
    for suite, expected in VECTORS["suites"].items():
        h = SUITE_HASHES[suite]
        for leaf in expected["leaves"]:
            assert h(_b(leaf["preimage"])).digest() == _b(leaf["digest"])
        salts = {leaf["path"]: leaf["salt"] for leaf in expected["leaves"]}
        assert recompute_target_hash(doc, salts, {}, h) == _b(expected["targetHash"])
        assert set(salts) == set(prepare_credential(doc, suite=suite).salts)  # same leaf paths as issuance


def test_subject_hash_leaf_tree_and_proof():
    assert subject_hash(VECTORS["document"]["credentialSubject"]["unifiedSocialCreditCode"]) == _b(
        VECTORS["subjectHash"]
    )
    target = _b(VECTORS["suites"]["secp256k1"]["targetHash"])
    assert leaf_hash(target, _b(VECTORS["subjectHash"])) == _b(VECTORS["leaf"])
    batch = VECTORS["batch"]
    tree = StandardMerkleTree.of([(_b(t), _b(s)) for t, s in batch["pairs"]])
    assert tree.root == _b(batch["root"]) and [_b(x) for x in batch["tree"]] == tree.tree
    assert StandardMerkleTree.verify(tree.root, _b(VECTORS["leaf"]), [_b(x) for x in batch["proof0"]])


def test_eip712_digest_and_signatures():
    e = VECTORS["eip712"]
    digest = batch_digest(
        _b(e["root"]),
        e["credentialType"],
        e["count"],
        chain_id=e["chainId"],
        anchor_registry=e["anchorRegistry"],
    )
    assert digest == _b(e["digest"])
    assert recover_address(digest, _b(e["secp256k1"]["signature"])) == e["secp256k1"]["account"]
    assert verify_sm2(digest, _b(e["sm2-sm3"]["signature"]), _b(e["sm2-sm3"]["publicKey"]))


def test_vectors_regenerate_identically():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "assets" / "make_format_vectors.py")],
        capture_output=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    fresh = json.loads(out.stdout)
    fresh["eip712"]["sm2-sm3"]["signature"] = VECTORS["eip712"]["sm2-sm3"]["signature"]  # SM2 is randomised
    assert fresh == VECTORS
