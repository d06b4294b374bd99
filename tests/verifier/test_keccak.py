"""The fast Keccak-256 equals eth_hash's, also across threads."""

from __future__ import annotations

import threading

import pytest
from eth_hash.auto import keccak as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier._internal.accelerator import module as accelerator
from verifier._internal.keccak import (
    BACKEND,
    FAST,
    _build_accelerator,
    _build_pycryptodome,
    _build_pysha3,
    keccak256,
)

PATHS = {
    "default": keccak256,
    "safe-pysha3": _build_pysha3(),
    "pycryptodome": _build_pycryptodome(),
    **({"accelerator": _build_accelerator()} if accelerator is not None else {}),
}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_every_path_equals_eth_hash(data):
    for name, fn in PATHS.items():
        assert fn is not None, f"the {name} path is unavailable"
        assert fn(data) == reference(data), name


def test_fastest_path_is_active():
    assert FAST and BACKEND == ("accelerator" if accelerator is not None else "safe-pysha3")
    if accelerator is not None:  # the function itself: merkle_root and merkle_tree then hash natively
        assert keccak256 is accelerator.keccak256


def test_every_path_equals_eth_hash_at_every_length_around_the_rate():
    """Keccak-256 absorbs 136 bytes a block: every length up to three blocks and a half, each path."""
    data = bytes((7 * i + 3) % 256 for i in range(480))
    for n in range(len(data) + 1):
        for name, fn in PATHS.items():
            assert fn is not None and fn(data[:n]) == reference(data[:n]), (name, n)


def test_the_accelerators_keccak_takes_any_bytes_like_and_refuses_the_rest():
    if accelerator is None:
        pytest.skip("no C accelerator here")
    assert accelerator.keccak256(bytearray(b"abc")) == accelerator.keccak256(memoryview(b"xabc")[1:])
    assert accelerator.keccak256(b"abc") == reference(b"abc")
    for bad in ("abc", 3, None):
        with pytest.raises(TypeError):
            accelerator.keccak256(bad)


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
