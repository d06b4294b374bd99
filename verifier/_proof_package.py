"""Proof packages (docs/FORMAT.md §12): a credential's anchor **and** status proven from chain state.

A package is one block header (and the evidence that makes it trusted), one ``eth_getProof``
account proof of the AnchorRegistry, and a pool of storage-trie nodes from ``eth_getProof``
storage proofs. For a credential ``(root, leaf)`` the verifier derives two storage keys itself —
``_anchors[root]`` and ``_credentialStatus[root][leaf]`` — and walks the storage trie from the
proven storage root through the pool: every node is looked up by its keccak-256, so a node that
was altered or left out breaks the walk and nothing unproven is ever read. One package can
serve one holder copy (the nodes of two paths) or a whole trust bundle (the union of many
paths: the header, the account proof and the upper storage-trie nodes are shared).

Which headers are trusted is a seam (:class:`HeaderTrust`): :class:`OperatorHeaderTrust` accepts
a header signed by a trusted operator (FORMAT.md §9 step 2); a validator-set mode plugs in the
same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

# rlp and trie (they import eth_utils and pydantic: ~0.2 s) are imported in the functions that use
# them here and in _anchor_proof, _pledge_proof, _proof_bundle, _qbft and proofinput: verifying a
# credential without a proof package never needs them, and certledger-verify starts without them.
from verifier._anchor_proof import (
    CONTRACTS_DATA,
    anchor_storage_key,
    contract_data,
    decode_anchor_word,
    header_message,
    header_rlp_from_block,
    sign_header,
)
from verifier._internal.keccak import keccak256 as keccak
from verifier._internal.suites import recover_address
from verifier._trust import AnchorRecord, StatusRecord, TrustSource
from verifier.errors import InvalidProofPackage

__all__ = [
    "PACKAGE_TYPE",
    "HeaderTrust",
    "OperatorHeaderTrust",
    "ProvenHeader",
    "ProvenState",
    "StorageWalk",
    "build_proof_package",
    "credential_status_slot",
    "decode_credential_status_word",
    "fetch_proof_package",
    "status_storage_key",
]

PACKAGE_TYPE = "CertledgerProofPackage"
PACKAGE_VERSION = 1
_MAX_NODES = 1 << 24  # a bundle-wide pool may be large; a holder copy's has ~20
_MEMBERS = frozenset(
    {
        "type",
        "version",
        "chainId",
        "anchorRegistry",
        "blockHeader",
        "headerSignature",
        "accountProof",
        "storageProof",
    }
)


@cache
def credential_status_slot() -> int:
    """The storage slot of ``AnchorRegistry._credentialStatus``, from the committed storage layout."""
    try:
        layout = contract_data("AnchorRegistry")["storageLayout"]
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidProofPackage(
            f"cannot read the AnchorRegistry storage layout in {CONTRACTS_DATA}: {exc}"
        ) from None
    for entry in layout["storage"]:
        if entry["label"] == "_credentialStatus":
            return int(entry["slot"])
    raise InvalidProofPackage("the AnchorRegistry storage layout has no _credentialStatus mapping")


_INNER: dict[bytes, bytes] = {}


def status_storage_key(root: bytes, leaf: bytes) -> bytes:
    """Slot of ``_credentialStatus[root][leaf]``: ``keccak256(leaf ‖ keccak256(root ‖ uint256(p)))``."""
    inner = _INNER.get(root)
    if inner is None:
        if len(_INNER) > 65_536:
            _INNER.clear()
        inner = _INNER[root] = keccak(root + credential_status_slot().to_bytes(32, "big"))
    return keccak(leaf + inner)


def decode_credential_status_word(word: int) -> tuple[int, int, int]:
    """Unpack ``CredentialStatus {uint8 status; uint8 reason; uint64 timestamp}`` (low-order bytes up)."""
    return word & 0xFF, (word >> 8) & 0xFF, (word >> 16) & 0xFFFFFFFFFFFFFFFF


# -- header trust (the seam) -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProvenHeader:
    """A block header that a :class:`HeaderTrust` accepted."""

    block_hash: bytes
    state_root: bytes
    number: int
    timestamp: int
    attested_by: str  # in words: "operator 0x…", "3 of 4 pinned validators"


class HeaderTrust(Protocol):
    """Decides whether the header of a package is trusted (FORMAT.md §12.2)."""

    def prove_header(self, package: Mapping[str, Any], header: bytes, chain_id: int) -> ProvenHeader:
        """The header's fields if it is trusted; :class:`InvalidProofPackage` naming why not."""
        ...


def _header_fields(header: bytes) -> tuple[bytes, int, int]:
    import rlp

    try:
        fields = rlp.decode(header)
        state_root = bytes(fields[3])
        number, timestamp = int.from_bytes(fields[8], "big"), int.from_bytes(fields[11], "big")
    except (rlp.exceptions.DecodingError, IndexError, TypeError):
        raise InvalidProofPackage("blockHeader: not an RLP block header") from None
    if len(state_root) != 32:
        raise InvalidProofPackage("blockHeader: its stateRoot is not 32 bytes")
    return state_root, number, timestamp


class OperatorHeaderTrust:
    """A header is trusted when ``headerSignature`` (FORMAT.md §9 step 2) is by a trusted operator."""

    def __init__(self, trusts_signer: Callable[[str], bool]) -> None:
        self._trusts = trusts_signer

    @classmethod
    def of(cls, trust: TrustSource) -> OperatorHeaderTrust:
        return cls(trust.trusts_header_signer)

    def prove_header(self, package: Mapping[str, Any], header: bytes, chain_id: int) -> ProvenHeader:
        block_hash = keccak(header)
        state_root, number, timestamp = _header_fields(header)
        signature = package.get("headerSignature")
        if type(signature) is not dict:
            raise InvalidProofPackage("headerSignature: missing (an operator-attested package needs one)")
        signer = recover_address(
            header_message(chain_id, block_hash), _hex(signature.get("value"), "headerSignature.value")
        )
        if signer is None or signer != str(signature.get("signer", "")).lower():
            raise InvalidProofPackage("headerSignature: the block header's signature does not verify")
        if not self._trusts(signer):
            raise InvalidProofPackage(f"headerSignature: signed by {signer}, who is not a trusted operator")
        return ProvenHeader(block_hash, state_root, number, timestamp, f"operator {signer}")


# -- parsing and verification -------------------------------------------------------------------


class _MissingNode(Exception):
    """A node the walk needs is not in the pool."""


_NIBBLE = {c: i for i, c in enumerate("0123456789abcdef")}
_BLANK_ROOT = keccak(b"\x80")  # the root of an empty trie: keccak of RLP("")


class StorageWalk:
    """Look-ups in a Merkle Patricia trie (Ethereum Yellow Paper, appendix D) whose nodes come
    from a pool keyed by their keccak-256, each node decoded once and kept: the fast path of
    ``trie.HexaryTrie.get`` for many keys under one root (tests check it against ``HexaryTrie``).
    Paths and hex-prefix keys are compared as hex text."""

    def __init__(self, pool: Mapping[bytes, bytes], root: bytes) -> None:
        self._pool = pool
        self._root = root
        self._decoded: dict[bytes, Any] = {}

    def _node(self, ref: Any) -> Any:
        import rlp

        if type(ref) is list:  # a node shorter than 32 bytes, embedded in its parent
            return ref
        node = self._decoded.get(ref)
        if node is None:
            raw = self._pool.get(ref)
            if raw is None:
                raise _MissingNode(ref)
            node = self._decoded[ref] = rlp.decode(raw)
        return node

    def get(self, trie_key: bytes) -> bytes:
        """The value at ``trie_key`` (already hashed, for a secure trie), ``b""`` if proven absent;
        :class:`_MissingNode` if the path needs a node the pool lacks. Malformed nodes raise
        ``ValueError`` / ``TypeError`` / ``rlp`` errors."""
        if self._root == _BLANK_ROOT:
            return b""
        path = trie_key.hex()
        node = self._node(self._root)
        i = 0
        while True:
            if type(node) is not list:
                raise ValueError("a trie node is not an RLP list")
            if len(node) == 17:
                if i == len(path):
                    return bytes(node[16])
                child = node[_NIBBLE[path[i]]]
                i += 1
                if child == b"":
                    return b""
                if type(child) is not list and len(child) != 32:
                    raise ValueError("a branch child is neither a hash nor an embedded node")
                node = self._node(child)
            elif len(node) == 2:
                hp = bytes(node[0]).hex()
                if not hp:
                    raise ValueError("an empty hex-prefix key")
                flag = _NIBBLE[hp[0]]
                if flag > 3:
                    raise ValueError("a hex-prefix flag above 3")
                part = hp[1:] if flag & 1 else hp[2:]
                if path[i : i + len(part)] != part:
                    return b""
                i += len(part)
                if flag & 2:  # leaf
                    return bytes(node[1]) if i == len(path) else b""
                child = node[1]
                if type(child) is not list and len(child) != 32:
                    raise ValueError("an extension child is neither a hash nor an embedded node")
                node = self._node(child)
            else:
                raise ValueError(f"a trie node of {len(node)} items")


def _hex(value: Any, what: str) -> bytes:
    if type(value) is not str or not value.startswith("0x"):
        raise InvalidProofPackage(f"{what}: must be 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InvalidProofPackage(f"{what}: must be 0x-hex") from None


def _node_list(value: Any, what: str, limit: int) -> list[bytes]:
    if type(value) is not list or len(value) > limit:
        raise InvalidProofPackage(f"{what}: must be a list of at most {limit} trie nodes")
    return [_hex(n, what) for n in value]


class ProvenState:
    """The AnchorRegistry's storage as of one trusted header, read through a package's proofs.

    Construction checks the package's shape, the header (through ``header_trust``) and the
    account proof; :meth:`anchor` and :meth:`status` then walk the storage trie per credential,
    caching decoded nodes, so verifying many credentials of one package shares all common work.
    """

    def __init__(
        self,
        package: Mapping[str, Any],
        *,
        chain_id: int,
        anchor_registry: str,
        header_trust: HeaderTrust,
        verified: dict[tuple[Any, ...], tuple[ProvenHeader, bytes]] | None = None,
    ) -> None:
        """``verified``: a cache of headers + account proofs already checked (keyed by their exact
        text), so many holder packages of one block cost one signature check between them."""
        # 1. Shape: type, version, chain and registry are the trust source's.
        if not isinstance(package, Mapping):
            raise InvalidProofPackage("the proof package must be an object")
        if package.get("type") != PACKAGE_TYPE:
            raise InvalidProofPackage(f"type: must be {PACKAGE_TYPE!r}")
        if package.get("version") != PACKAGE_VERSION or type(package.get("version")) is not int:
            raise InvalidProofPackage(f"version: this verifier reads version {PACKAGE_VERSION}")
        extra = set(package) - _MEMBERS
        if extra:
            raise InvalidProofPackage(f"unknown member(s): {', '.join(sorted(extra))}")
        if package.get("chainId") != chain_id or type(package.get("chainId")) is not int:
            raise InvalidProofPackage(
                f"chainId: the package is for chain {package.get('chainId')!r}, not {chain_id}"
            )
        if (
            str(package.get("anchorRegistry", "")).lower() != anchor_registry.lower()
            or type(package.get("anchorRegistry")) is not str
        ):
            raise InvalidProofPackage(
                f"anchorRegistry: the package proves {package.get('anchorRegistry')!r}, not {anchor_registry}"
            )
        account_text = package.get("accountProof")
        signature = package.get("headerSignature")
        key = (
            package.get("blockHeader"),
            json.dumps(signature, sort_keys=True),
            tuple(account_text) if type(account_text) is list else account_text,
            chain_id,
            anchor_registry,
        )
        hit = verified.get(key) if verified is not None else None
        if hit is None:
            self.header, self.storage_root = self._prove_account(
                package, chain_id, anchor_registry, header_trust
            )
            if verified is not None:
                if len(verified) > 1024:
                    verified.clear()
                verified[key] = (self.header, self.storage_root)
        else:
            self.header, self.storage_root = hit
        # 4. The storage-node pool, keyed by hash: a node can only be reached by its own hash.
        pool = _node_list(package.get("storageProof"), "storageProof", _MAX_NODES)
        self._trie = StorageWalk({keccak(n): n for n in pool}, self.storage_root)
        self._anchors: dict[bytes, AnchorRecord | None] = {}

    @staticmethod
    def _prove_account(
        package: Mapping[str, Any], chain_id: int, anchor_registry: str, header_trust: HeaderTrust
    ) -> tuple[ProvenHeader, bytes]:
        # 2. The header, trusted by the seam (operator signature or validator seals).
        import rlp
        from trie import HexaryTrie  # type: ignore[attr-defined]
        from trie.exceptions import BadTrieProof

        header_rlp = _hex(package.get("blockHeader"), "blockHeader")
        header = header_trust.prove_header(package, header_rlp, chain_id)
        # 3. The account proof: AnchorRegistry's account in that state → its storage root.
        registry = bytes.fromhex(anchor_registry[2:])
        account_nodes = _node_list(package.get("accountProof"), "accountProof", 64)
        try:
            account = HexaryTrie.get_from_proof(  # type: ignore[no-untyped-call]
                header.state_root, keccak(registry), [rlp.decode(n) for n in account_nodes]
            )
        except (BadTrieProof, ValueError, TypeError, KeyError, rlp.exceptions.DecodingError) as exc:
            raise InvalidProofPackage(
                f"accountProof: does not match the header's state root ({exc})"
            ) from None
        if not account:
            raise InvalidProofPackage("accountProof: the anchor registry has no account in that block")
        try:
            return header, bytes(rlp.decode(account)[2])
        except (rlp.exceptions.DecodingError, IndexError, TypeError):
            raise InvalidProofPackage("accountProof: the account is not an RLP account") from None

    def _word(self, key: bytes, what: str) -> int:
        import rlp

        try:
            raw = self._trie.get(keccak(key))
        except _MissingNode:
            raise InvalidProofPackage(
                f"storageProof: the {what} slot's path leaves the proven storage trie (a node is missing or altered)"
            ) from None
        except (ValueError, TypeError, IndexError, KeyError, rlp.exceptions.DecodingError) as exc:
            raise InvalidProofPackage(
                f"storageProof: a node on the {what} slot's path is malformed ({exc})"
            ) from None
        if not raw:
            return 0
        try:
            return int.from_bytes(rlp.decode(raw), "big")
        except (rlp.exceptions.DecodingError, TypeError):
            raise InvalidProofPackage(f"storageProof: the {what} slot's value is not RLP") from None

    def anchor(self, root: bytes) -> AnchorRecord | None:
        """The anchor of ``root`` as of the header, or ``None`` if the slot is proven empty."""
        if root in self._anchors:
            return self._anchors[root]
        record: AnchorRecord | None = decode_anchor_word(self._word(anchor_storage_key(root), "anchor"), root)
        assert record is not None
        if record.status == 0:
            record = None
        elif record.block_number > self.header.number:
            raise InvalidProofPackage("storageProof: the anchor claims a block after the proven header")
        self._anchors[root] = record
        return record

    def status(self, root: bytes, leaf: bytes) -> StatusRecord:
        """The credential's own status override as of the header (valid when none is set)."""
        status, reason, timestamp = decode_credential_status_word(
            self._word(status_storage_key(root, leaf), "status")
        )
        if status == 0:
            return StatusRecord(1)
        return StatusRecord(status, reason, timestamp)


# -- building (registry side and tests) -------------------------------------------------------


def build_proof_package(
    *,
    chain_id: int,
    anchor_registry: str,
    header: bytes,
    account_proof: Iterable[str],
    storage_proofs: Iterable[Iterable[str]],
    header_signature: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A package from ``eth_getProof`` output: the storage proofs' nodes pooled, each node once."""
    pool: dict[str, None] = {}
    for proof in storage_proofs:
        for node in proof:
            pool.setdefault(str(node).lower(), None)
    package: dict[str, Any] = {
        "type": PACKAGE_TYPE,
        "version": PACKAGE_VERSION,
        "chainId": chain_id,
        "anchorRegistry": anchor_registry.lower(),
        "blockHeader": "0x" + header.hex(),
        "accountProof": [str(n).lower() for n in account_proof],
        "storageProof": list(pool),
    }
    if header_signature is not None:
        package["headerSignature"] = dict(header_signature)
    return package


def fetch_proof_package(
    w3: Any,
    anchor_registry: str,
    credentials: Iterable[tuple[bytes, bytes]],
    *,
    operator_key: bytes | None = None,
    block: int | str = "latest",
    chunk: int = 1000,
) -> dict[str, Any]:
    """A package proving the anchor and status of every ``(root, leaf)`` at ``block``, from
    ``eth_getBlockByNumber`` + ``eth_getProof`` (``chunk`` slots per call), the header signed
    by ``operator_key`` when given."""
    raw_block = w3.provider.make_request(
        "eth_getBlockByNumber", [hex(block) if isinstance(block, int) else block, False]
    )["result"]
    header = header_rlp_from_block(raw_block)
    keys: dict[bytes, None] = {}
    for root, leaf in credentials:
        keys.setdefault(anchor_storage_key(root), None)
        keys.setdefault(status_storage_key(root, leaf), None)
    slots = ["0x" + k.hex() for k in keys]
    address = w3.to_checksum_address(anchor_registry)
    account_proof: list[str] = []
    storage: list[list[str]] = []
    for i in range(0, max(len(slots), 1), chunk):
        reply = w3.provider.make_request("eth_getProof", [address, slots[i : i + chunk], raw_block["number"]])
        if "result" not in reply:
            raise InvalidProofPackage(f"eth_getProof failed: {reply.get('error')}")
        account_proof = list(reply["result"]["accountProof"])
        storage.extend(list(s["proof"]) for s in reply["result"]["storageProof"])
    chain_id = int(w3.eth.chain_id)
    signature = sign_header(chain_id, keccak(header), operator_key) if operator_key is not None else None
    return build_proof_package(
        chain_id=chain_id,
        anchor_registry=anchor_registry,
        header=header,
        account_proof=account_proof,
        storage_proofs=storage,
        header_signature=signature,
    )
