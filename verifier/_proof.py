"""Parsing the ``proof`` object of a holder copy (docs/FORMAT.md §5) into typed values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from verifier._holder import PROOF_TYPE
from verifier._internal.accelerator import module as accelerator
from verifier._internal.disclosure import KEPT_PATHS, SUITE_HASHES
from verifier.errors import InvalidDocument

__all__ = ["ParsedProof", "parse_proof"]

MAX_PROOF_DEPTH = 64


class ParsedProof(NamedTuple):
    """Immutable; a named tuple rather than a frozen dataclass, which costs 3.5 µs to build (one
    ``object.__setattr__`` per field) against 0.5 µs — on a path run once per credential."""

    suite: str
    salts: dict[str, Any]
    redacted: dict[str, Any]
    target_hash: bytes
    subject_hash: bytes
    root: bytes
    path: tuple[bytes, ...]
    credential_type: int
    batch_count: int
    issuer_id: int
    key_version: int
    signature: bytes
    chain_id: int
    anchor_registry: str
    tx_hash: str
    block_number: int
    anchor_proof: dict[str, Any] | None
    proof_package: dict[str, Any] | None = None
    subject_salt: bytes | None = None


#: The C accelerator's parse (verifier/_internal/accelerator.py), or None without it.
_fast_parse: Callable[[Any, type[ParsedProof], str], ParsedProof | None] | None = (
    accelerator.parse_proof if accelerator is not None else None
)

#: The members of ``proof`` and of ``proof.anchor`` (FORMAT.md §5); any other is refused (``format``):
#: a member nothing checks would be a place to smuggle a claim.
PROOF_MEMBERS = frozenset(
    {
        "type",
        "suite",
        "salts",
        "redactedDigests",
        "targetHash",
        "subjectHash",
        "subjectSalt",
        "merkleRoot",
        "merkleProof",
        "credentialType",
        "batchCount",
        "issuerId",
        "keyVersion",
        "signature",
        "anchor",
        "anchorProof",
        "proofPackage",
    }
)
ANCHOR_MEMBERS = frozenset({"chainId", "anchorRegistry", "txHash", "blockNumber"})


def _unknown(members: Any, allowed: frozenset[str], where: str) -> None:
    extra = sorted(str(k) for k in members if k not in allowed)
    raise InvalidDocument(
        f"{where} has a member the format does not define ({', '.join(extra[:3])}): "
        "a verifier refuses what it cannot check"
    )


def _hex(value: Any, what: str, size: int | None = 32) -> bytes:
    # Hex is lower-case (§5): "0x…".islower() is true exactly when no digit is upper-case.
    if type(value) is str and value.startswith("0x") and value.islower():
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raw = None
        if raw is not None and (size is None or len(raw) == size):
            return raw
    raise InvalidDocument(f"proof.{what} must be {size or 'some'} bytes of lower-case 0x-hex")


_PATH_ERROR = "proof.merkleProof must be a list of 32-byte lower-case 0x-hex hashes"
#: Most recently decoded Merkle siblings, shared by every parse: a sibling k levels up is shared by
#: 2^(k+1) credentials of a batch, so verifying a batch decodes about one new sibling per credential.
_SIBLINGS: dict[str, bytes] = {}
_SIBLINGS_LIMIT = 65_536


def _sibling(item: Any) -> bytes:
    """Decode one sibling (a memo miss) and remember it."""
    if type(item) is str and len(item) == 66 and item.startswith("0x") and item.islower():
        try:
            raw = bytes.fromhex(item[2:])
        except ValueError:
            raw = b""
        if len(raw) == 32:  # (fromhex skips spaces, so 64 characters may hold fewer bytes)
            if len(_SIBLINGS) >= _SIBLINGS_LIMIT:
                _SIBLINGS.clear()
            _SIBLINGS[item] = raw
            return raw
    raise InvalidDocument(_PATH_ERROR)


def _path(items: list[Any]) -> tuple[bytes, ...]:
    get = _SIBLINGS.get
    try:  # a hit is a string decoded before: checked then
        return tuple([get(item) or _sibling(item) for item in items])
    except TypeError:  # an unhashable item (a list or object)
        raise InvalidDocument(_PATH_ERROR) from None


_HEX_MEMO: dict[str, bytes] = {}


def _hex_shared(value: Any, what: str, size: int) -> bytes:
    """:func:`_hex` for values a whole batch shares (root, signature, addresses): memoised."""
    raw = _HEX_MEMO.get(value) if type(value) is str else None
    if raw is None:
        raw = _hex(value, what, size)
        if len(_HEX_MEMO) > 10_000:
            _HEX_MEMO.clear()
        _HEX_MEMO[value] = raw
    elif len(raw) != size:
        raise InvalidDocument(f"proof.{what} must be {size} bytes of lower-case 0x-hex")
    return raw


def _uint(value: Any, what: str, bits: int) -> int:
    if type(value) is not int or not 0 <= value < 2**bits:
        raise InvalidDocument(f"proof.{what} must be an integer from 0 to 2^{bits}−1")
    return value


def parse_proof(proof: Any) -> ParsedProof:
    """Typed view of ``proof``; :class:`InvalidDocument` naming the first malformed member.

    The C accelerator answers the plain case (every member well formed, nothing redacted) with
    the same value; anything else is decided here (tests/verifier/test_leaves_accelerator.py)."""
    if _fast_parse is not None:
        parsed = _fast_parse(proof, ParsedProof, PROOF_TYPE)
        if parsed is not None:
            return parsed
    return reference_parse_proof(proof)


def reference_parse_proof(proof: Any) -> ParsedProof:
    """:func:`parse_proof` in Python alone (the reference)."""
    if type(proof) is not dict:
        raise InvalidDocument(
            "the credential has no proof: it was not issued through certledger, or the proof was removed"
        )
    if proof.get("type") != PROOF_TYPE:
        raise InvalidDocument(f"proof.type must be {PROOF_TYPE!r}")
    if not proof.keys() <= PROOF_MEMBERS:
        _unknown(proof, PROOF_MEMBERS, "proof")
    suite = proof.get("suite")
    if type(suite) is not str or suite not in SUITE_HASHES:  # (a list or object is unhashable)
        raise InvalidDocument(
            f"proof.suite {suite!r} is not a certledger signature suite (secp256k1, sm2-sm3)"
        )
    salts = proof.get("salts")
    redacted = proof.get("redactedDigests", {})
    if type(salts) is not dict or type(redacted) is not dict:
        raise InvalidDocument("proof.salts and proof.redactedDigests must be objects (path → hex)")
    for path in redacted:
        if not path.startswith("/credentialSubject/") or path in KEPT_PATHS:
            raise InvalidDocument(
                f"field {path} is listed as redacted, but only fields inside credentialSubject "
                f"other than {', '.join(p.rsplit('/', 1)[1] for p in KEPT_PATHS)} may be redacted"
            )
    merkle = proof.get("merkleProof")
    if type(merkle) is not list or len(merkle) > MAX_PROOF_DEPTH:
        raise InvalidDocument(f"proof.merkleProof must be a list of at most {MAX_PROOF_DEPTH} hashes")
    anchor = proof.get("anchor")
    if type(anchor) is not dict:
        raise InvalidDocument("proof.anchor must be an object {chainId, anchorRegistry, txHash, blockNumber}")
    if not anchor.keys() <= ANCHOR_MEMBERS:
        _unknown(anchor, ANCHOR_MEMBERS, "proof.anchor")
    _hex_shared(anchor.get("anchorRegistry"), "anchor.anchorRegistry", 20)
    tx_hash = anchor.get("txHash")
    _hex_shared(tx_hash, "anchor.txHash", 32)
    sig_size = 65 if suite == "secp256k1" else 64
    anchor_proof = proof.get("anchorProof")
    if anchor_proof is not None and type(anchor_proof) is not dict:
        raise InvalidDocument("proof.anchorProof must be an object")
    proof_package = proof.get("proofPackage")
    if proof_package is not None and type(proof_package) is not dict:
        raise InvalidDocument("proof.proofPackage must be an object")
    ctype: Any
    count: Any
    issuer_id: Any
    key_version: Any
    chain_id: Any
    block_number: Any
    ctype, count, issuer_id, key_version = (
        proof.get("credentialType"),
        proof.get("batchCount"),
        proof.get("issuerId"),
        proof.get("keyVersion"),
    )
    chain_id, block_number = anchor.get("chainId"), anchor.get("blockNumber")
    if not (
        type(ctype) is int
        and type(count) is int
        and type(issuer_id) is int
        and type(key_version) is int
        and type(chain_id) is int
        and type(block_number) is int
        and 0 <= ctype < 2**16
        and 0 <= count < 2**32
        and 0 <= issuer_id < 2**32
        and 0 <= key_version < 2**16
        and 0 <= chain_id < 2**64
        and 0 <= block_number < 2**64
    ):
        _uint(ctype, "credentialType", 16)
        _uint(count, "batchCount", 32)
        _uint(issuer_id, "issuerId", 32)
        _uint(key_version, "keyVersion", 16)
        _uint(chain_id, "anchor.chainId", 64)
        _uint(block_number, "anchor.blockNumber", 64)
    return ParsedProof(
        suite,
        salts,
        redacted,
        _hex(proof.get("targetHash"), "targetHash"),
        _hex(proof.get("subjectHash"), "subjectHash"),
        _hex_shared(proof.get("merkleRoot"), "merkleRoot", 32),
        _path(merkle),
        ctype,
        count,
        issuer_id,
        key_version,
        _hex_shared(proof.get("signature"), "signature", sig_size),
        chain_id,
        anchor["anchorRegistry"],
        str(tx_hash),
        block_number,
        anchor_proof,
        proof_package,
        None if proof.get("subjectSalt") is None else _hex(proof["subjectSalt"], "subjectSalt"),
    )
