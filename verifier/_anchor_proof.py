"""Proof-carrying anchors (docs/FORMAT.md §9): a credential carries an ``eth_getProof`` account +
storage proof that its root's slot in ``AnchorRegistry._anchors`` is set, against the
``stateRoot`` of a block header signed by the operator. Checked here with ``trie`` + ``rlp``; the
only thing trusted is the header signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from verifier._internal.keccak import keccak256 as keccak
from verifier._internal.proofinput import hex_member, trie_nodes
from verifier._internal.suites import eth_address, personal_digest, recover_address, sign_digest_secp256k1
from verifier._qbft import ValidatorSet, seal_qbft_header, verify_sealed_header
from verifier._trust import AnchorRecord, TrustSource
from verifier.errors import InvalidAnchorProof, InvalidSealedHeader

__all__ = [
    "CONTRACTS_DATA",
    "ValidatorPinnedTrust",
    "anchor_storage_key",
    "anchors_slot",
    "decode_anchor_word",
    "fetch_anchor_proof",
    "header_fields_from_block",
    "header_message",
    "header_rlp_from_block",
    "sign_header",
    "verify_anchor_proof",
]

#: Each contract's ABI and storage layout from the committed compiler artifacts (package data,
#: written by scripts/compile_contracts.py).
CONTRACTS_DATA = Path(str(files("verifier") / "_data" / "contracts.json"))
_HEADER_DOMAIN = b"certledger:header:v1"


@cache
def contract_data(name: str) -> dict[str, Any]:
    """``{"abi", "storageLayout"}`` of contract ``name``; ``OSError``/``KeyError``/``ValueError`` if
    the package data is missing or damaged."""
    data: dict[str, Any] = json.loads(CONTRACTS_DATA.read_text("utf-8"))[name]
    return data


@cache
def anchors_slot() -> int:
    """The storage slot of ``AnchorRegistry._anchors``, from the committed storage layout."""
    try:
        layout = contract_data("AnchorRegistry")["storageLayout"]
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidAnchorProof(
            f"cannot read the AnchorRegistry storage layout in {CONTRACTS_DATA}: {exc}"
        ) from None
    for entry in layout["storage"]:
        if entry["label"] == "_anchors":
            return int(entry["slot"])
    raise InvalidAnchorProof("the AnchorRegistry storage layout has no _anchors mapping")


def anchor_storage_key(root: bytes) -> bytes:
    """Solidity mapping slot of ``_anchors[root]``: ``keccak256(root ‖ uint256(slot))``."""
    return keccak(root + anchors_slot().to_bytes(32, "big"))


def decode_anchor_word(word: int, root: bytes) -> AnchorRecord:
    """Unpack the one-slot ``Anchor`` struct (fields packed from the low-order bytes up)."""
    return AnchorRecord(
        root=root,
        issuer_id=word & 0xFFFFFFFF,
        key_version=(word >> 32) & 0xFFFF,
        credential_type=(word >> 48) & 0xFFFF,
        count=(word >> 64) & 0xFFFFFFFF,
        block_number=(word >> 96) & 0xFFFFFFFFFFFFFFFF,
        timestamp=(word >> 160) & 0xFFFFFFFFFFFFFFFF,
        status=(word >> 224) & 0xFF,
        reason=(word >> 232) & 0xFF,
    )


def header_message(chain_id: int, block_hash: bytes) -> bytes:
    """What the operator signs for a header: EIP-191 of
    ``keccak256("certledger:header:v1" ‖ uint256(chainId) ‖ blockHash)``."""
    return personal_digest(keccak(_HEADER_DOMAIN + chain_id.to_bytes(32, "big") + block_hash))


def sign_header(chain_id: int, block_hash: bytes, private_key: bytes) -> dict[str, str]:
    """The ``headerSignature`` object ``{signer, value}``."""
    value = sign_digest_secp256k1(header_message(chain_id, block_hash), private_key)
    return {"signer": eth_address(private_key), "value": "0x" + value.hex()}


_HEADER_FIELDS = (
    "parentHash",
    "sha3Uncles",
    "miner",
    "stateRoot",
    "transactionsRoot",
    "receiptsRoot",
    "logsBloom",
    "difficulty",
    "number",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "extraData",
    "mixHash",
    "nonce",
)
_OPTIONAL_FIELDS = (
    "baseFeePerGas",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
    "requestsHash",
)
_INT_FIELDS = {
    "difficulty",
    "number",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "baseFeePerGas",
    "blobGasUsed",
    "excessBlobGas",
}


def header_fields_from_block(block: Mapping[str, Any]) -> list[Any]:
    """The RLP items of a block header from ``eth_getBlockByNumber`` fields (London … Prague)."""

    def value(name: str) -> Any:
        v = block[name]
        if isinstance(v, str):
            if name in _INT_FIELDS:
                return int(v, 16)  # JSON-RPC quantities: "0x0", "0x1c9c380"
            return bytes.fromhex(v.removeprefix("0x"))
        if isinstance(v, int):
            return v
        return bytes(v)

    items = [value(n) for n in _HEADER_FIELDS]
    for name in _OPTIONAL_FIELDS:
        if block.get(name) is None:
            break
        items.append(value(name))
    return items


def header_rlp_from_block(block: dict[str, Any]) -> bytes:
    """The RLP block header rebuilt from ``eth_getBlockByNumber`` fields (London … Prague).

    Raises :class:`InvalidAnchorProof` if its keccak is not the block's hash.
    """
    import rlp

    encoded: bytes = rlp.encode(header_fields_from_block(block))
    expected = block["hash"]
    expected = bytes.fromhex(expected[2:]) if isinstance(expected, str) else bytes(expected)
    if keccak(encoded) != expected:
        raise InvalidAnchorProof(
            "the rebuilt block header does not hash to the block hash (unknown header layout)"
        )
    return encoded


def _hex(value: Any, what: str) -> bytes:
    return hex_member(value, f"anchorProof.{what}", InvalidAnchorProof)


def _nodes(value: Any, what: str) -> list[Any]:
    return trie_nodes(value, f"anchorProof.{what}", InvalidAnchorProof)


class ValidatorPinnedTrust:
    """A trust source whose proof-carrying anchors must stand on a validator-sealed header
    (docs/FORMAT.md §14.4): ``blockHeader`` is a QBFT header with a quorum of seals from
    ``validators``; an operator-signed header is not trusted. Everything else is asked of ``inner``."""

    def __init__(self, inner: TrustSource, validators: ValidatorSet) -> None:
        if validators.chain_id != inner.chain_id:
            raise InvalidAnchorProof(
                f"the validators file is for chain {validators.chain_id}, the trust source for chain {inner.chain_id}"
            )
        self._inner = inner
        self.validator_set = validators

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def trusts_header_signer(self, address: str) -> bool:
        return False


def verify_anchor_proof(proof: dict[str, Any], *, root: bytes, trust: TrustSource) -> AnchorRecord:
    """The anchor record of ``root`` proven by ``proof``; :class:`InvalidAnchorProof` if it proves nothing."""
    import rlp

    header = _hex(proof.get("blockHeader"), "blockHeader")
    validators: ValidatorSet | None = getattr(trust, "validator_set", None)
    if validators is not None:
        # 1'. Validator mode: the header's committed seals (a quorum of the pinned validators).
        try:
            sealed = verify_sealed_header(header, validators)
        except InvalidSealedHeader as exc:
            raise InvalidAnchorProof(
                f"the block header is not sealed by the pinned validators: {exc}"
            ) from None
        return _prove_anchor(proof, root, trust, sealed.state_root, sealed.number)
    # 1. The header, and the operator's signature over its hash (the one trusted input).
    block_hash = keccak(header)
    try:
        fields = rlp.decode(header)
        state_root, number = fields[3], int.from_bytes(fields[8], "big")
    except (rlp.exceptions.DecodingError, IndexError, TypeError):
        raise InvalidAnchorProof("anchorProof.blockHeader is not an RLP block header") from None
    signature = proof.get("headerSignature")
    if not isinstance(signature, dict):
        raise InvalidAnchorProof("anchorProof.headerSignature is missing")
    signer = recover_address(
        header_message(trust.chain_id, block_hash), _hex(signature.get("value"), "headerSignature.value")
    )
    if signer is None or signer != str(signature.get("signer", "")).lower():
        raise InvalidAnchorProof("the block header's signature does not verify")
    if not trust.trusts_header_signer(signer):
        raise InvalidAnchorProof(f"the block header was signed by {signer}, who is not a trusted operator")
    return _prove_anchor(proof, root, trust, state_root, number)


def _prove_anchor(
    proof: dict[str, Any], root: bytes, trust: TrustSource, state_root: bytes, number: int
) -> AnchorRecord:
    # 2. Account proof: AnchorRegistry's account in that state → its storage root.
    import rlp
    from trie import HexaryTrie  # type: ignore[attr-defined]
    from trie.exceptions import BadTrieProof

    registry = bytes.fromhex(trust.anchor_registry[2:])
    try:
        account = HexaryTrie.get_from_proof(  # type: ignore[no-untyped-call]
            state_root, keccak(registry), _nodes(proof.get("accountProof"), "accountProof")
        )
    except (BadTrieProof, ValueError, TypeError, KeyError) as exc:
        raise InvalidAnchorProof(
            f"the account proof does not match the header's state root ({exc})"
        ) from None
    if not account:
        raise InvalidAnchorProof("the anchor registry has no account in that block")
    storage_root = rlp.decode(account)[2]
    # 3. Storage proof: the slot of _anchors[root] → the packed Anchor word.
    try:
        raw = HexaryTrie.get_from_proof(  # type: ignore[no-untyped-call]
            storage_root, keccak(anchor_storage_key(root)), _nodes(proof.get("storageProof"), "storageProof")
        )
    except (BadTrieProof, ValueError, TypeError, KeyError) as exc:
        raise InvalidAnchorProof(
            f"the storage proof does not match the registry's storage root ({exc})"
        ) from None
    word = int.from_bytes(rlp.decode(raw), "big") if raw else 0
    record = decode_anchor_word(word, root)
    if record.status == 0:
        raise InvalidAnchorProof(f"the root is not anchored as of block {number}")
    if record.block_number > number:
        raise InvalidAnchorProof("the anchor claims a block after the proven header")
    return record


def fetch_anchor_proof(
    w3: Any,
    anchor_registry: str,
    root: bytes,
    operator_key: bytes | None,
    block: int | str = "latest",
    *,
    validator_keys: Any = None,
) -> dict[str, Any]:
    """Build an ``anchorProof`` for ``root`` from a web3 connection (``eth_getBlockByNumber`` +
    ``eth_getProof``), signed by ``operator_key`` — or, on the development chain, with the block's
    real fields and stateRoot wrapped in a QBFT header sealed by ``validator_keys`` (§14.5).
    Used by the registry and the tests."""
    raw_block = w3.provider.make_request(
        "eth_getBlockByNumber", [hex(block) if isinstance(block, int) else block, False]
    )
    header_block = raw_block["result"]
    header = header_rlp_from_block(header_block)
    sealed = seal_qbft_header(header_block, validator_keys) if validator_keys else None
    slot = "0x" + anchor_storage_key(root).hex()
    proof = w3.provider.make_request(
        "eth_getProof", [w3.to_checksum_address(anchor_registry), [slot], header_block["number"]]
    )
    result = proof["result"]
    out: dict[str, Any] = {
        "blockHeader": "0x" + (sealed or header).hex(),
        "accountProof": list(result["accountProof"]),
        "storageProof": list(result["storageProof"][0]["proof"]),
    }
    if operator_key is not None:
        out["headerSignature"] = sign_header(int(w3.eth.chain_id), keccak(header), operator_key)
    return out
