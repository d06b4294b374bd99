"""StandardMerkleTree is the @openzeppelin/merkle-tree tree, byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from verifier import StandardMerkleTree, leaf_hash
from verifier._internal.merkle import hash_pair, process_proof, tree_of_leaves
from verifier.errors import MerkleError

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "assets" / "merkle_vectors.json"


def _b(h: str) -> bytes:
    return bytes.fromhex(h[2:])


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _vectors() -> list[dict]:
    return json.loads(VECTORS.read_text())["trees"]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: f"n={v['size']}")
def test_python_tree_matches_openzeppelin_vectors(vector):
    tree = StandardMerkleTree.of([(_b(t), _b(s)) for t, s in vector["values"]])
    assert _hex(tree.root) == vector["root"]
    assert [_hex(x) for x in tree.tree] == vector["tree"]
    for i, (t, s) in enumerate(vector["values"]):
        assert _hex(tree.leaf(i)) == vector["leaves"][i] == _hex(leaf_hash(_b(t), _b(s)))
        assert [_hex(p) for p in tree.proof(i)] == vector["proofs"][i]
        assert StandardMerkleTree.verify(tree.root, tree.leaf(i), tree.proof(i))
        assert tree.leaf_index(_b(t), _b(s)) == i
    # the registry builds a batch's tree from the leaf hashes alone, in any order
    assert [_hex(x) for x in tree_of_leaves([_b(x) for x in reversed(vector["leaves"])])] == vector["tree"]


def test_vectors_regenerate_identically_with_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot regenerate tests/assets/merkle_vectors.json")
    if not (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        pytest.skip("node_modules/@openzeppelin/merkle-tree is missing (run `npm ci`)")
    out = subprocess.run(
        [node, str(ROOT / "tests" / "assets" / "make_merkle_vectors.mjs")],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == json.loads(VECTORS.read_text())


def test_a_tampered_proof_or_leaf_does_not_verify():
    pairs = [(os.urandom(32), os.urandom(32)) for _ in range(9)]
    tree = StandardMerkleTree.of(pairs)
    proof = tree.proof(4)
    assert StandardMerkleTree.verify(tree.root, tree.leaf(4), proof)
    assert not StandardMerkleTree.verify(tree.root, tree.leaf(5), proof)
    assert not StandardMerkleTree.verify(tree.root, tree.leaf(4), proof[:-1])
    assert not StandardMerkleTree.verify(tree.root, tree.leaf(4), [proof[1], proof[0], *proof[2:]])


def test_internal_nodes_are_sorted_pairs_and_leaves_double_hashed():
    a, b = os.urandom(32), os.urandom(32)
    assert hash_pair(a, b) == hash_pair(b, a)
    from eth_hash.auto import keccak

    assert leaf_hash(a, b) == keccak(keccak(a + b))
    assert process_proof(a, [b]) == hash_pair(a, b)


def test_a_ten_thousand_leaf_tree_proves_every_leaf():
    pairs = [(os.urandom(32), os.urandom(32)) for _ in range(10_000)]
    tree = StandardMerkleTree.of(pairs)
    assert tree_of_leaves([leaf_hash(t, s) for t, s in pairs]) == tree.tree
    assert all(StandardMerkleTree.verify(tree.root, tree.leaf(i), tree.proof(i)) for i in range(0, 10_000, 7))
    assert len(tree.proof(1234)) in (13, 14)


def test_errors_are_merkle_errors():
    with pytest.raises(MerkleError):
        StandardMerkleTree.of([])
    with pytest.raises(MerkleError):
        tree_of_leaves([])
    tree = StandardMerkleTree.of([(b"\1" * 32, b"\2" * 32)])
    assert tree.proof(0) == [] and tree.root == tree.leaf(0)
    with pytest.raises(MerkleError):
        tree.proof(1)
    with pytest.raises(MerkleError):
        tree.leaf_index(b"\3" * 32, b"\2" * 32)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1001])
def test_proof_in_a_stored_tree_is_the_trees_own_proof(n):
    """proof_in_tree (the issuer's read path: a proof from the tree array stored as bytes) gives,
    for every leaf, the proof StandardMerkleTree.proof gives, and it verifies."""
    from verifier.issuance import proof_in_tree

    pairs = [(os.urandom(32), os.urandom(32)) for _ in range(n)]
    tree = StandardMerkleTree.of(pairs)
    stored = b"".join(tree_of_leaves([leaf_hash(t, s) for t, s in pairs]))
    assert stored == b"".join(tree.tree)
    for i in range(n):
        proof = proof_in_tree(stored, tree.leaf(i))
        assert proof == tree.proof(i)
        assert process_proof(tree.leaf(i), proof) == tree.root


def test_proof_in_tree_refuses_a_leaf_not_in_the_tree():
    from verifier.issuance import proof_in_tree

    pairs = [(os.urandom(32), os.urandom(32)) for _ in range(5)]
    stored = b"".join(StandardMerkleTree.of(pairs).tree)
    with pytest.raises(MerkleError, match="not in this tree"):
        proof_in_tree(stored, os.urandom(32))
    with pytest.raises(MerkleError, match="not in this tree"):  # an internal node is not a leaf
        proof_in_tree(stored, stored[:32])
    with pytest.raises(MerkleError, match="not in this tree"):  # nor a leaf's bytes across two nodes
        proof_in_tree(stored, stored[-48:-16])


@pytest.mark.parametrize("accelerated", [True, False], ids=["accelerator", "pure Python"])
def test_tree_bytes_is_the_tree_array_joined_on_both_paths(monkeypatch, accelerated):
    """``tree_bytes`` (the registry's signer and batch signing) gives the JS library's tree arrays of
    the vectors, by the accelerator or without it, and refuses leaves that are not 32 bytes each."""
    from verifier._internal import merkle

    if not accelerated:
        monkeypatch.setattr(merkle, "_merkle_tree", None)
    elif merkle._merkle_tree is None:
        pytest.skip("no C accelerator here")
    for vector in _vectors():
        leaves = b"".join(leaf_hash(_b(t), _b(s)) for t, s in vector["values"])  # (in the values' order)
        assert merkle.tree_bytes(leaves) == b"".join(_b(node) for node in vector["tree"])
    for bad in (b"", b"\x01" * 31, b"\x01" * 65):
        with pytest.raises(MerkleError, match="32 bytes a leaf"):
            merkle.tree_bytes(bad)


def test_the_accelerator_builds_a_tree_without_holding_the_gil():
    """While one thread builds a large tree in C, another runs Python (the service's event loop
    serves requests while the pipeline's thread builds a batch's tree), and trees built by several
    threads at once are each the reference's."""
    import threading
    import time

    from verifier._internal import merkle

    if merkle._merkle_tree is None:
        pytest.skip("no C accelerator here")
    leaves = os.urandom(32 * (1 << 19))  # ~0.3 s of hashing on this machine
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        time.sleep(0.01)
        start = time.perf_counter()
        merkle.tree_bytes(leaves)
        end = time.perf_counter()
    finally:
        done.set()
        ticker.join()
    inside = [t for t in ticks if start + 0.02 < t < end - 0.02]
    assert end - start > 0.1  # (long enough that a held GIL would have stopped the ticks)
    assert len(inside) > 5, f"the other thread ran {len(inside)} times in {end - start:.3f} s"

    from concurrent.futures import ThreadPoolExecutor

    small = [os.urandom(32 * n) for n in (1, 2, 3, 1000, 4097)]
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(merkle.tree_bytes, small * 3))
    reference = [b"".join(tree_of_leaves([x[i : i + 32] for i in range(0, len(x), 32)])) for x in small]
    assert built == reference * 3
