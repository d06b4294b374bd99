"""The fast Keccak-256 equals eth_hash's, also across threads."""

from __future__ import annotations

import threading

from eth_hash.auto import keccak as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier._internal.keccak import FAST, keccak256


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_equals_eth_hash(data):
    assert keccak256(data) == reference(data)


def test_fast_path_is_active():
    assert FAST


def test_threads_do_not_share_state():
    errors = []

    def work(seed: int) -> None:
        for i in range(2000):
            data = f"{seed}:{i}".encode()
            if keccak256(data) != reference(data):
                errors.append(data)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
