"""Keccak-256 (Ethereum's, not SHA3-256), 5–10× faster than ``eth_hash`` for short inputs.

Verification hashes three times per credential plus once per proof step, and a Merkle tree twice
per leaf, so the per-call cost matters more than the throughput. In order of preference:

0. The C accelerator's own (``_leaves.c``, ``keccak256``): one call, ~0.48 µs for 64 bytes where
   ``safe-pysha3`` takes ~0.67 µs on the same machine (its hash object and ``digest()`` call cost
   more than the hashing), and no call at all where the accelerator hashes a Merkle path or tree
   itself. ``safe-pysha3`` has no C interface the accelerator could call instead. Not with
   ``CERTLEDGER_PURE_PYTHON=1``.
1. ``safe-pysha3`` (a C extension, the maintained fork of ``pysha3``): one call.
2. pycryptodome's raw Keccak library through ctypes, one state per thread reused with
   ``keccak_reset`` (three ctypes calls, ~1.3 µs) — ``eth_hash``'s pycryptodome backend builds a
   new hash object per call (four ctypes calls plus Python objects, ~4.6 µs).
3. ``eth_hash``.

``tests/verifier/test_keccak.py`` checks every path against ``eth_hash``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["BACKEND", "FAST", "keccak256"]

#: Known digests each fast path must give before it is used (eth_hash's, checked by the tests; the
#: reference itself is imported only if no fast path works: it costs ~25 ms at start).
_KNOWN = {
    b"": "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
    b"abc": "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
    b"abc" * 100: "0b4690e744c6ff5f43ac16817124efeaa0b3b3ff9bc26d092984bbb14badeaf5",
}


def _agrees(keccak256: Callable[[bytes], bytes]) -> bool:
    return all(keccak256(data).hex() == digest for data, digest in _KNOWN.items())


def _build_pysha3() -> Callable[[bytes], bytes] | None:
    try:
        from sha3 import keccak_256  # safe-pysha3
    except ImportError:  # pragma: no cover - it is a dependency
        return None

    def keccak256(data: bytes) -> bytes:
        out: bytes = keccak_256(data).digest()
        return out

    return keccak256 if _agrees(keccak256) else None


def _build_pycryptodome() -> Callable[[bytes], bytes] | None:
    try:
        from Crypto.Hash.keccak import _raw_keccak_lib as lib  # type: ignore[attr-defined]
        from Crypto.Util._raw_api import (  # type: ignore[attr-defined]
            SmartPointer,
            VoidPointer,
            c_size_t,
            c_ubyte,
            create_string_buffer,
        )
    except Exception:  # noqa: BLE001  # pragma: no cover - depends on the installed pycryptodome
        return None
    size32, padding = c_size_t(32), c_ubyte(0x01)  # Keccak padding (SHA-3 would be 0x06)
    absorb, digest, reset = lib.keccak_absorb, lib.keccak_digest, lib.keccak_reset
    local = threading.local()

    def state() -> tuple[object, object]:
        holder = VoidPointer()
        if lib.keccak_init(holder.address_of(), c_size_t(64), c_ubyte(24)) != 0:
            raise RuntimeError("keccak_init failed")
        owner = SmartPointer(holder.get(), lib.keccak_destroy)  # frees the state with the thread
        local.state = (owner, owner.get(), create_string_buffer(32))  # type: ignore[call-arg]
        return local.state[1], local.state[2]

    def keccak256(data: bytes) -> bytes:
        try:
            _, ptr, buf = local.state
        except AttributeError:
            ptr, buf = state()
        if absorb(ptr, data, c_size_t(len(data))) or digest(ptr, buf, size32, padding):
            reset(ptr)
            raise RuntimeError("keccak failed")
        out: bytes = buf.raw
        reset(ptr)
        return out

    try:
        if not _agrees(keccak256):
            return None
    except Exception:  # noqa: BLE001  # pragma: no cover
        return None
    return keccak256


def _build_accelerator() -> Callable[[bytes], bytes] | None:
    from verifier._internal.accelerator import module

    if module is None:
        return None
    keccak256: Callable[[bytes], bytes] = module.keccak256
    return keccak256 if _agrees(keccak256) else None


_native = _build_accelerator()
_pysha3 = _build_pysha3()
_fast = _native or _pysha3 or _build_pycryptodome()
#: Whether a fast path is in use (else ``eth_hash``), and which.
FAST = _fast is not None
BACKEND = (
    "accelerator"
    if _native is not None
    else "safe-pysha3"
    if _pysha3 is not None
    else "pycryptodome"
    if _fast is not None
    else "eth_hash"
)
keccak256: Callable[[bytes], bytes]
if _fast is not None:
    keccak256 = _fast
else:  # pragma: no cover - safe-pysha3 is a dependency
    from eth_hash.auto import keccak as keccak256
