"""Types of the C accelerator ``_leaves.c`` (see its header comment)."""

from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

native_sha256: int

def target_hash(
    h: Callable[[bytes], Any],
    salts: dict[str, Any] | bytes,
    envelope_jcs: bytes | dict[str, Any],
    subject: Any,
    /,
) -> bytes | None: ...
def sha256(data: bytes, /) -> bytes | None: ...
def shake256(data: bytes | bytearray | memoryview, n: int, /) -> bytes: ...
def keccak256(data: bytes | bytearray | memoryview, /) -> bytes: ...
def merkle_tree(leaves: bytes, /) -> bytes: ...
def parse_proof(proof: Any, parsed_proof: Callable[..., _T], proof_type: str, /) -> _T | None: ...
def keys_unique(data: bytes, /) -> bool: ...
def merkle_root(
    leaf: bytes,
    path: tuple[bytes, ...],
    nodes: dict[bytes, bytes],
    keccak: Callable[[bytes], bytes],
    limit: int,
    /,
) -> bytes | None: ...
def mod37_36_run(p: int, text: str, /) -> int: ...
def subject_leaf(
    key_block: bytes, label: bytes, identifier: str, target_hash: bytes, /
) -> tuple[bytes, bytes] | None: ...
