"""The fast trie walk of proof packages (StorageWalk) against the reference, ``trie.HexaryTrie``."""

from __future__ import annotations

import random

import pytest
import rlp
from trie import HexaryTrie
from trie.exceptions import MissingTrieNode

from verifier import StorageWalk, keccak256
from verifier._proof_package import _MissingNode


@pytest.mark.parametrize("size", [0, 1, 2, 17, 300, 3000])
def test_the_walk_answers_as_hexarytrie(size):
    rng = random.Random(size)
    db: dict[bytes, bytes] = {}
    t = HexaryTrie(db)
    keys = [rng.randbytes(32) for _ in range(size)]
    with t.squash_changes() as batch:
        for i, k in enumerate(keys):
            # short values make embedded (< 32 byte) leaf nodes too
            batch[k] = rlp.encode(rng.randbytes(1 + i % 40))
    walk = StorageWalk(db, t.root_hash)
    probes = keys + [rng.randbytes(32) for _ in range(500)] + [k[:31] + bytes([k[31] ^ 1]) for k in keys[:50]]
    for k in probes:
        assert walk.get(k) == t.get(k)


def test_a_missing_node_is_missing_for_both():
    rng = random.Random(7)
    db: dict[bytes, bytes] = {}
    t = HexaryTrie(db)
    keys = [rng.randbytes(32) for _ in range(400)]
    with t.squash_changes() as batch:
        for k in keys:
            batch[k] = rlp.encode(rng.randbytes(30))
    for victim in rng.sample(sorted(db), 20):
        pool = {h: n for h, n in db.items() if h != victim}
        walk, ref = StorageWalk(pool, t.root_hash), HexaryTrie(pool, root_hash=t.root_hash)
        for k in keys[:100] + [rng.randbytes(32) for _ in range(100)]:
            try:
                expected = ref.get(k)
            except MissingTrieNode:
                with pytest.raises(_MissingNode):
                    walk.get(k)
            else:
                assert walk.get(k) == expected


def test_the_walk_refuses_malformed_nodes():
    bad = rlp.encode([b"\x00" * 5])  # one item: neither branch nor leaf/extension
    with pytest.raises(ValueError, match="a trie node of 1 items"):
        StorageWalk({keccak256(bad): bad}, keccak256(bad)).get(b"\x01" * 32)
    flag = rlp.encode([b"\x51\x23", b"x"])  # hex-prefix flag 5
    with pytest.raises(ValueError, match="flag above 3"):
        StorageWalk({keccak256(flag): flag}, keccak256(flag)).get(b"\x01" * 32)
