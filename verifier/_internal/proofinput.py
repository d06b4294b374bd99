"""Reading the members of a storage proof someone handed us (anchor proofs, pledge proofs): 0x-hex
bytes and lists of RLP trie nodes, each refusal raised as the caller's own error type and naming
the member (``anchorProof.blockHeader must be 0x-hex``)."""

from __future__ import annotations

from typing import Any


def hex_member(value: Any, what: str, error: type[Exception]) -> bytes:
    """``value`` as bytes if it is a 0x-hex string; ``error("{what} must be 0x-hex")`` otherwise."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise error(f"{what} must be 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise error(f"{what} must be 0x-hex") from None


def trie_nodes(value: Any, what: str, error: type[Exception], limit: int = 64) -> list[Any]:
    """``value``'s trie nodes, RLP-decoded: a list of at most ``limit`` 0x-hex RLP items."""
    import rlp  # here, not at the top: see verifier/_proof_package.py

    if not isinstance(value, list) or len(value) > limit:
        raise error(f"{what} must be a list of trie nodes")
    try:
        return [rlp.decode(hex_member(n, what, error)) for n in value]
    except rlp.exceptions.DecodingError:
        raise error(f"{what} holds a node that is not RLP") from None
