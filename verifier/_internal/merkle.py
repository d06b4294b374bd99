"""OpenZeppelin StandardMerkleTree (``@openzeppelin/merkle-tree`` 1.0.x), leaf encoding
``["bytes32", "bytes32"]`` — the tree the AnchorRegistry checks on-chain with ``MerkleProof``.

* leaf  = keccak256(keccak256(abi.encode(targetHash, subjectHash)))   (double hash: a leaf can
  never be mistaken for an internal node, whose preimage is 64 bytes of two hashes)
* node  = keccak256(min(a, b) ‖ max(a, b))                           (sorted pairs: no left/right
  bits in proofs)
* layout: a complete binary tree in an array of 2n−1 hashes; the leaves, sorted ascending by hash,
  fill the array from the end backwards (``tree[2n−2−i] = leaves[i]``); ``tree[i]`` has children
  ``2i+1`` and ``2i+2``; the root is ``tree[0]``; a proof lists siblings from the leaf upwards.

``tests/assets/merkle_vectors.json`` (made by the JS library itself) pins all of this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from verifier._internal.accelerator import module as _accelerator
from verifier._internal.keccak import keccak256 as keccak
from verifier.errors import MerkleError

#: the accelerator's whole-tree builder, or None without it
_merkle_tree: Callable[[bytes], bytes] | None = _accelerator.merkle_tree if _accelerator is not None else None

__all__ = [
    "StandardMerkleTree",
    "hash_pair",
    "leaf_hash",
    "process_proof",
    "proof_in_tree",
    "tree_bytes",
    "tree_of_leaves",
]


def leaf_hash(target_hash: bytes, subject_hash: bytes) -> bytes:
    """StandardMerkleTree leaf of ``(bytes32 targetHash, bytes32 subjectHash)``."""
    if len(target_hash) != 32 or len(subject_hash) != 32:
        raise MerkleError("targetHash and subjectHash must be 32 bytes each")
    return keccak(keccak(target_hash + subject_hash))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """``keccak256`` of the two 32-byte hashes in ascending order (OZ ``Hashes.commutativeKeccak256``)."""
    return keccak(a + b if a < b else b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` (OZ ``MerkleProof.processProof``)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def tree_of_leaves(leaves: Sequence[bytes]) -> list[bytes]:
    """The tree array over leaf hashes (sorted here), as :meth:`StandardMerkleTree.of` lays it out."""
    if not leaves:
        raise MerkleError("a Merkle tree needs at least one credential")
    ordered = sorted(leaves)
    n = len(ordered)
    return _fill([b""] * (n - 1) + ordered[::-1], n)


def tree_bytes(leaves: bytes) -> bytes:
    """``b"".join(tree_of_leaves(...))`` of leaf hashes given concatenated, 32 bytes each (as a batch
    stores them): by the C accelerator where there is one (10,000 leaves in ~6 ms, where the loop
    here takes ~10 ms)."""
    if len(leaves) % 32 or not leaves:
        raise MerkleError("a Merkle tree needs at least one credential, 32 bytes a leaf")
    if _merkle_tree is not None:
        tree: bytes = _merkle_tree(leaves)
        return tree
    return b"".join(tree_of_leaves([leaves[i : i + 32] for i in range(0, len(leaves), 32)]))


def _fill(tree: list[bytes], n: int) -> list[bytes]:
    """Hash the ``n − 1`` internal nodes of ``tree`` (its last ``n`` entries are the leaves), from
    the last one up to the root: the one place a tree's pairs are hashed (``hash_pair``, inlined)."""
    for i in range(n - 2, -1, -1):
        a, b = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = keccak(a + b if a < b else b + a)
    return tree


def _siblings(i: int) -> list[int]:
    """The array positions of the siblings of node ``i``, from it up to (excluding) the root."""
    path: list[int] = []
    while i > 0:
        path.append(i + 1 if i % 2 else i - 1)
        i = (i - 1) // 2
    return path


def proof_in_tree(tree: bytes, leaf: bytes) -> list[bytes]:
    """The proof of ``leaf`` read from a tree array stored as bytes (``b"".join(tree_of_leaves(...))``,
    32 bytes a node); ``MerkleError`` if ``leaf`` is not one of its leaves."""
    n_nodes = len(tree) // 32
    n_leaves = (n_nodes + 1) // 2
    start = (n_nodes - n_leaves) * 32
    pos = tree.find(leaf, start)
    while pos != -1 and pos % 32:
        pos = tree.find(leaf, pos + 1)
    if pos == -1 or len(leaf) != 32:
        raise MerkleError("that credential's leaf is not in this tree")
    return [tree[32 * j : 32 * j + 32] for j in _siblings(pos // 32)]


class StandardMerkleTree:
    """A built tree over ``(targetHash, subjectHash)`` pairs, laid out as the JS library does.

    >>> t = StandardMerkleTree.of([(b"\\x01" * 32, b"\\x02" * 32), (b"\\x03" * 32, b"\\x04" * 32)])
    >>> StandardMerkleTree.verify(t.root, t.leaf(0), t.proof(0))
    True
    """

    __slots__ = ("_by_leaf", "tree", "tree_index", "values")

    def __init__(self, tree: list[bytes], values: list[tuple[bytes, bytes]], tree_index: list[int]) -> None:
        self.tree = tree
        self.values = values
        self.tree_index = tree_index
        self._by_leaf = {tree[ti]: i for i, ti in enumerate(tree_index)}

    @classmethod
    def of(cls, pairs: Sequence[tuple[bytes, bytes]], *, sort_leaves: bool = True) -> StandardMerkleTree:
        """Build the tree over ``pairs`` (value index = position in ``pairs``)."""
        if not pairs:
            raise MerkleError("a Merkle tree needs at least one credential")
        values = [(bytes(t), bytes(s)) for t, s in pairs]
        hashed = [(leaf_hash(t, s), i) for i, (t, s) in enumerate(values)]
        if sort_leaves:
            hashed.sort()
        n = len(hashed)
        size = 2 * n - 1
        tree: list[bytes] = [b""] * size
        tree_index = [0] * n
        for position, (h, value_index) in enumerate(hashed):
            tree[size - 1 - position] = h
            tree_index[value_index] = size - 1 - position
        return cls(_fill(tree, n), values, tree_index)

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def leaf(self, index: int) -> bytes:
        """The leaf hash of value ``index``."""
        return self.tree[self.tree_index[self._check(index)]]

    def leaf_index(self, target_hash: bytes, subject_hash: bytes) -> int:
        """The value index of the pair ``(target_hash, subject_hash)``; ``MerkleError`` if absent."""
        try:
            return self._by_leaf[leaf_hash(target_hash, subject_hash)]
        except KeyError:
            raise MerkleError("that credential is not in this tree") from None

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from the leaf of value ``index`` up to (excluding) the root."""
        tree = self.tree
        return [tree[j] for j in _siblings(self.tree_index[self._check(index)])]

    def proofs(self) -> list[list[bytes]]:
        """Every value's proof, in value order."""
        return [self.proof(i) for i in range(len(self.values))]

    @staticmethod
    def verify(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
        """Whether ``proof`` leads from ``leaf`` to ``root``."""
        return process_proof(leaf, proof) == root

    def _check(self, index: int) -> int:
        if not 0 <= index < len(self.values):
            raise MerkleError(f"value index {index} is out of range (the tree has {len(self.values)})")
        return index
