"""The fast Keccak-256 equals eth_hash's, also across threads."""

from __future__ import annotations

import threading

from eth_hash.auto import keccak as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier._internal.keccak import BACKEND, FAST, _build_pycryptodome, _build_pysha3, keccak256

PATHS = {"default": keccak256, "safe-pysha3": _build_pysha3(), "pycryptodome": _build_pycryptodome()}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_every_path_equals_eth_hash(data):
    for name, fn in PATHS.items():
        assert fn is not None, f"the {name} path is unavailable"
        assert fn(data) == reference(data), name


def test_fastest_path_is_active():
    assert FAST and BACKEND == "safe-pysha3"


def test_threads_do_not_share_state():
    errors = []

    def work(seed: int) -> None:
        for i in range(2000):
            data = f"{seed}:{i}".encode()
            for fn in PATHS.values():
                if fn(data) != reference(data):
                    errors.append(data)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_the_known_digests_a_fast_path_must_give_are_eth_hashs():
    """A fast path is used only if it gives these digests at import; they are the reference's own."""
    from verifier._internal.keccak import _KNOWN, _agrees

    assert all(reference(data).hex() == digest for data, digest in _KNOWN.items())
    assert not _agrees(lambda data: reference(data + b"!"))
