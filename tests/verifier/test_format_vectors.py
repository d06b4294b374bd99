"""docs/FORMAT.md's worked example (tests/assets/format_vectors.json) recomputed with the verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from verifier import (
    StandardMerkleTree,
    batch_digest,
    leaf_hash,
    prepare_credential,
    subject_hash,
    subject_salt_for,
)
from verifier._internal.disclosure import SUITE_HASHES, recompute_target_hash
from verifier._internal.keccak import keccak256
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
    code = VECTORS["document"]["credentialSubject"]["unifiedSocialCreditCode"]
    salt = _b(VECTORS["subjectSalt"])
    assert subject_salt_for(_b(VECTORS["subjectSaltKey"]), code) == salt  # the registry's derivation
    assert _b(VECTORS["subjectHashPreimage"]) == salt + code.encode("utf-8")
    assert subject_hash(code, salt) == keccak256(salt + code.encode()) == _b(VECTORS["subjectHash"])
    assert subject_hash(code, salt) != keccak256(code.encode())  # not the bare hash a dictionary finds
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


def test_format_md_worked_example_quotes_the_vectors():
    """Every hash, key and signature FORMAT.md §10 prints is one of the vectors (so the text cannot
    drift from what the verifier computes)."""
    import re

    text = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    section = text[text.index("## 10. Worked example") : text.index("## 11.")]
    quoted = set(re.findall(r"0x[0-9a-f]{40,}", section))
    vectors = json.dumps(VECTORS)
    assert len(quoted) >= 15
    missing = sorted(q for q in quoted if q not in vectors)
    assert missing == []
    leaves = VECTORS["suites"]["secp256k1"]["leaves"]
    assert f"all {len(leaves)} leaves" in section and leaves[0]["path"] == ""
    assert f"{len(leaves[0]['jcs'].encode()):,} bytes beginning `{leaves[0]['jcs'][:60]}" in section


def test_salts_derived_from_a_seed_are_reproducible_and_distinct():
    """The registry keeps one seed per credential (FORMAT.md §3.2): the salts it hands out later
    are the ones the digests were made with, every leaf's differs, and another seed gives others."""
    import hashlib
    import json

    from verifier._internal.disclosure import leaves_of, salt_and_digest, salts_from_seed, target_hash_of

    doc = VECTORS["document"]
    seed = bytes(range(32))
    salts, digests = salt_and_digest(doc, hashlib.sha256, seed=seed)
    stored = json.loads(json.dumps(doc, ensure_ascii=False))  # as the registry's document column
    assert salts_from_seed(stored, seed) == salts
    assert list(salts) == [path for path, _ in leaves_of(doc)] and list(salts)[0] == ""
    assert len(set(salts.values())) == len(salts)
    assert salts_from_seed(stored, bytes(31) + b"\x01") != salts
    again, digests_again = salt_and_digest(doc, hashlib.sha256, seed=seed)
    assert again == salts and target_hash_of(hashlib.sha256, digests_again) == target_hash_of(
        hashlib.sha256, digests
    )
    fresh, _ = salt_and_digest(doc, hashlib.sha256)
    assert fresh.keys() == salts.keys() and fresh != salts
    with pytest.raises(ValueError, match="32 bytes"):
        salt_and_digest(doc, hashlib.sha256, seed=b"short")


def test_target_hash_preimage_is_the_sorted_path_entries():
    """§3.3: the vectors' preimage is the entries uint32_be(len(path)) ‖ path ‖ digest in sorted
    order, and hashing it gives targetHash — in both suites."""
    for suite, expected in VECTORS["suites"].items():
        h = SUITE_HASHES[suite]
        entries = sorted(
            len(x["path"].encode()).to_bytes(4, "big") + x["path"].encode() + _b(x["digest"])
            for x in expected["leaves"]
        )
        assert _b(expected["targetHashPreimage"]) == b"".join(entries)
        assert h(b"".join(entries)).digest() == _b(expected["targetHash"])
        by_order = [e[4 : 4 + int.from_bytes(e[:4], "big")].decode() for e in entries]
        assert by_order == expected["targetHashOrder"]


def test_every_fast_path_equals_the_reference_target_hash():
    """The issuer's and the verifier's fast paths (seeded parts, salt_and_digest, the verifier's walk,
    the slow recompute) give the §3.3 reference value over (path, digest) pairs."""
    import hashlib

    from verifier._internal.canon import jcs
    from verifier._internal.disclosure import (
        digests_from_walk,
        envelope_of,
        leaf_digest,
        leaves_of,
        reference_target_hash,
        salt_and_digest,
        salts_from_seed,
        seeded_target_hash,
        seeded_target_hash_of_parts,
        target_hash_of,
        walk_document,
    )

    doc = VECTORS["document"]
    seed = bytes(range(32))
    for suite in ("secp256k1", "sm2-sm3"):
        h = SUITE_HASHES[suite]
        salts = salts_from_seed(doc, seed)
        reference = reference_target_hash(
            h, [(path, leaf_digest(h, _b(salts[path]), path, value)) for path, value in leaves_of(doc)]
        )
        assert seeded_target_hash(doc, h, seed) == reference
        assert seeded_target_hash(doc, h, seed, schema_valid=True) == reference
        assert (
            seeded_target_hash_of_parts(jcs(envelope_of(doc)), doc["credentialSubject"], h, seed) == reference
        )
        assert target_hash_of(h, salt_and_digest(doc, h, seed=seed)[1]) == reference
        assert recompute_target_hash(doc, salts, {}, h) == reference
        salt_hexes: list = []
        tails: list[bytes] = []
        walk_document(doc, salts.get, frozenset(), salt_hexes, tails)
        assert target_hash_of(h, digests_from_walk(salt_hexes, tails, h)) == reference
        # A change of one leaf's path (same salt, same value) changes the reference value.
        moved = [
            (("/credentialSubject/x" if p == "/credentialSubject/address" else p), d)
            for p, d in ((p, leaf_digest(h, _b(salts[p]), p, v)) for p, v in leaves_of(doc))
        ]
        assert reference_target_hash(h, moved) != reference
    assert hashlib.sha256 is SUITE_HASHES["secp256k1"]


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end)]


def test_format_md_proof_example_and_table_name_exactly_the_allowed_members():
    """§5: the example proof and the member table list exactly what parse_proof accepts (every
    other member is refused), and the anchor object's members likewise."""
    import re

    from verifier._proof import ANCHOR_MEMBERS, PROOF_MEMBERS

    text = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    section = _section(text, "## 5. The holder's copy", "## 6.")
    example = section[section.index("```json") : section.index("```", section.index("```json") + 7)]
    top = set(re.findall(r'^\s*"(\w+)":|, "(\w+)":', example, re.MULTILINE))
    names = {a or b for a, b in top} - ANCHOR_MEMBERS - {"…", "proof"}
    assert names == PROOF_MEMBERS
    anchor_line = next(line for line in example.splitlines() if '"anchor":' in line)
    assert set(re.findall(r'"(\w+)":', anchor_line)) - {"anchor"} == ANCHOR_MEMBERS
    table = set(re.findall(r"^\| `([\w`, ]+)` \|", section, re.MULTILINE))
    listed = {n.strip(" `") for row in table for n in row.split(",")}
    assert listed == PROOF_MEMBERS


def test_format_md_bundle_example_has_the_members_the_exporter_writes():
    """§8: the example bundle's issuer and anchor entries have exactly the members build_trust_bundle
    writes (statusBlock / statusTimestamp included)."""
    import re

    from tests.support.factory import World

    text = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    section = _section(text, "## 8. Trust bundle", "## 9.")
    example = section[section.index("```json") : section.index("```", section.index("```json") + 7)]
    issuers = example[example.index('"issuers"') : example.index('"anchors"')]
    anchors = example[example.index('"anchors"') : example.index('"statusLists"')]
    w = World()
    issuer = w.add_issuer()
    w.issue(issuer, [w.document(issuer) for _ in range(2)])
    data = w.bundle(signed=False)
    key_members = set(data["issuers"][0]["keys"][0])
    assert set(re.findall(r'"(\w+)":', issuers)) - {"issuers", "keys"} - key_members == set(
        data["issuers"][0]
    ) - {"keys"}
    assert key_members <= set(re.findall(r'"(\w+)":', issuers))
    assert set(re.findall(r'"(\w+)":', anchors)) - {"anchors"} == set(data["anchors"][0])
    assert set(re.findall(r'"(\w+)":', example[: example.index('"issuers"')])) - {"contracts", "block"} >= {
        "type",
        "version",
        "chainId",
    }


def test_the_natural_person_example_recomputes():
    """§2.4's worked example: the citizen ID leaf's salted digest, the subjectHash it gives (not
    keccak of the number), and the targetHash — recomputed with the verifier."""
    import hashlib

    from verifier._holder import subject_hash_of
    from verifier._internal.disclosure import recompute_target_hash
    from verifier._schema import holder_problems, schema_errors

    v = VECTORS["naturalPerson"]
    doc = v["document"]
    assert schema_errors(doc, "DataAssetCertificate") == [] and holder_problems(doc) == []
    assert "0x" + subject_hash_of(doc, v["salts"], {}, hashlib.sha256, None).hex() == v["subjectHash"]
    assert v["subjectHash"] != "0x" + keccak256(doc["credentialSubject"]["citizenIdNumber"].encode()).hex()
    redacted = {"/credentialSubject/citizenIdNumber": v["citizenIdDigest"]}
    assert (
        "0x"
        + subject_hash_of(
            {"credentialSubject": {"holderCodeType": "citizenId"}}, {}, redacted, hashlib.sha256, None
        ).hex()
        == v["subjectHash"]
    )
    assert "0x" + recompute_target_hash(doc, v["salts"], {}, hashlib.sha256).hex() == v["targetHash"]
