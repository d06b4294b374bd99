"""Validator-sealed block headers: Hyperledger Besu QBFT committed seals (docs/FORMAT.md §14).

A QBFT header's ``extraData`` is ``RLP([vanity (32 bytes), validators (20-byte addresses), vote
(empty list, or [address, type]), round (RLP integer), committed seals (65-byte signatures)])``.
Each committed seal is a secp256k1 signature ``r ‖ s ‖ v`` (v ∈ {0, 1}) over the *commit hash*:

    commitHash = keccak256(RLP(header with extraData = RLP([vanity, validators, vote, round, []])))

A header is trusted when seals from at least ⌈2n/3⌉ distinct validators of the pinned set (n of
them) recover from it. The rule and the real header that proves it are in
``tests/assets/besu-qbft-block-7528.json`` (a live 4-validator Besu network, 3 seals).

The validator set a header names must be the pinned one. When the network changes its validators,
:func:`follow_validator_changes` walks a chain of sealed headers from the pinned set: each header
must be sealed by a quorum of the set trusted so far, and then its own list becomes the trusted set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from coincurve import PrivateKey, PublicKey

from verifier._internal.keccak import keccak256 as keccak
from verifier.errors import InvalidSealedHeader

__all__ = [
    "QbftHeader",
    "ValidatorHeaderTrust",
    "ValidatorSet",
    "follow_validator_changes",
    "parse_qbft_header",
    "quorum",
    "seal_qbft_header",
    "verify_sealed_header",
]

EXTRA_DATA_INDEX = 12
#: The mixHash every BFT block carries ("ctical byzantine fault tolerance"), Besu's BftHelpers.
BFT_MIX_HASH = bytes.fromhex("63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365")
_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
VALIDATOR_SET_TYPE = "CertledgerValidatorSet"


def quorum(n: int) -> int:
    """⌈2n/3⌉ — Besu's ``BftHelpers.calculateRequiredValidatorQuorum``."""
    return -(-2 * n // 3)


def _int(value: bytes) -> int:
    return int.from_bytes(value, "big")


@dataclass(frozen=True)
class QbftHeader:
    """A parsed QBFT header: what a verifier uses of it, and its raw fields."""

    parent_hash: bytes
    state_root: bytes
    number: int
    timestamp: int
    block_hash: bytes  # keccak256 of the whole sealed RLP header
    commit_hash: bytes
    vanity: bytes
    validators: tuple[str, ...]
    vote: tuple[bytes, ...]
    round: int
    seals: tuple[bytes, ...]
    fields: tuple[bytes, ...]


def parse_qbft_header(header_rlp: bytes) -> QbftHeader:
    """Decode an RLP block header and its QBFT ``extraData``; InvalidSealedHeader naming what is wrong."""
    try:
        fields = rlp.decode(header_rlp)
    except Exception as exc:  # noqa: BLE001 - rlp raises several kinds of DecodingError
        raise InvalidSealedHeader(f"the header is not RLP: {exc}") from None
    if not isinstance(fields, list) or len(fields) < 15 or not all(isinstance(f, bytes) for f in fields):
        raise InvalidSealedHeader("the header is not an RLP list of at least 15 byte strings")
    if len(fields[0]) != 32 or len(fields[3]) != 32:
        raise InvalidSealedHeader("the header's parentHash and stateRoot must be 32 bytes")
    try:
        extra = rlp.decode(fields[EXTRA_DATA_INDEX])
    except Exception as exc:  # noqa: BLE001
        raise InvalidSealedHeader(f"extraData is not RLP: {exc}") from None
    if not isinstance(extra, list) or len(extra) != 5:
        raise InvalidSealedHeader("extraData is not QBFT's [vanity, validators, vote, round, seals]")
    vanity, validators, vote, round_, seals = extra
    if not isinstance(vanity, bytes) or len(vanity) != 32:
        raise InvalidSealedHeader("extraData's vanity must be 32 bytes")
    if not isinstance(validators, list) or not validators or not all(
            isinstance(v, bytes) and len(v) == 20 for v in validators):
        raise InvalidSealedHeader("extraData's validators must be a non-empty list of 20-byte addresses")
    if not isinstance(vote, list) or not all(isinstance(v, bytes) for v in vote) or len(vote) not in (0, 2):
        raise InvalidSealedHeader("extraData's vote must be empty or [address, type]")
    if not isinstance(round_, bytes) or len(round_) > 4 or round_[:1] == b"\0":
        raise InvalidSealedHeader("extraData's round must be an RLP integer of at most 4 bytes")
    if not isinstance(seals, list) or not all(isinstance(s, bytes) for s in seals):
        raise InvalidSealedHeader("extraData's committed seals must be a list of signatures")
    unsealed = list(fields)
    unsealed[EXTRA_DATA_INDEX] = rlp.encode([vanity, validators, vote, round_, []])
    addresses = tuple("0x" + v.hex() for v in validators)
    if len(set(addresses)) != len(addresses):
        raise InvalidSealedHeader("extraData lists a validator twice")
    return QbftHeader(parent_hash=fields[0], state_root=fields[3], number=_int(fields[8]),
                      timestamp=_int(fields[11]), block_hash=keccak(header_rlp),
                      commit_hash=keccak(rlp.encode(unsealed)), vanity=vanity, validators=addresses,
                      vote=tuple(vote), round=_int(round_), seals=tuple(seals), fields=tuple(fields))


@dataclass(frozen=True)
class ValidatorSet:
    """The validators a verifier pins (exported by docker/generate-network.py or the registry)."""

    chain_id: int
    validators: tuple[str, ...]

    @property
    def threshold(self) -> int:
        return quorum(len(self.validators))

    @classmethod
    def from_json(cls, data: Any) -> ValidatorSet:
        if not isinstance(data, Mapping) or data.get("type") != VALIDATOR_SET_TYPE:
            raise InvalidSealedHeader(f'a validator set file is a JSON object with "type": "{VALIDATOR_SET_TYPE}"')
        chain_id, validators = data.get("chainId"), data.get("validators")
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id < 1:
            raise InvalidSealedHeader("the validator set's chainId must be a positive integer")
        if not isinstance(validators, list) or not validators or not all(
                isinstance(v, str) and _ADDRESS.fullmatch(v) for v in validators):
            raise InvalidSealedHeader("the validator set's validators must be lower-case 0x addresses")
        if len(set(validators)) != len(validators):
            raise InvalidSealedHeader("the validator set names a validator twice")
        return cls(chain_id, tuple(validators))

    @classmethod
    def load(cls, path: str | Path) -> ValidatorSet:
        try:
            data = json.loads(Path(path).read_bytes())
        except OSError as exc:
            raise InvalidSealedHeader(f"cannot read the validator set {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise InvalidSealedHeader(f"the validator set {path} is not JSON: {exc}") from None
        return cls.from_json(data)

    def to_json(self) -> dict[str, Any]:
        return {"type": VALIDATOR_SET_TYPE, "chainId": self.chain_id, "validators": list(self.validators)}


def _recover(commit_hash: bytes, seal: bytes) -> str | None:
    if len(seal) != 65 or seal[64] not in (0, 1):
        return None
    if not 0 < _int(seal[32:64]) <= _SECP256K1_HALF_N:
        return None  # high-s: a malleated copy of a seal
    try:
        public = PublicKey.from_signature_and_message(seal, commit_hash, hasher=None)
    except Exception:  # noqa: BLE001
        return None
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()


def _check_seals(header: QbftHeader, trusted: Sequence[str]) -> None:
    signers: list[str] = []
    for i, seal in enumerate(header.seals):
        signer = _recover(header.commit_hash, seal)
        if signer is None:
            raise InvalidSealedHeader(f"committed seal {i} of block {header.number} is not a valid signature")
        if signer not in trusted:
            raise InvalidSealedHeader(f"committed seal {i} of block {header.number} is by {signer}, "
                                      "not a pinned validator")
        if signer in signers:
            raise InvalidSealedHeader(f"committed seal {i} of block {header.number} repeats {signer}'s seal")
        signers.append(signer)
    need = quorum(len(trusted))
    if len(signers) < need:
        raise InvalidSealedHeader(f"block {header.number} has {len(signers)} committed seal(s) of "
                                  f"{len(trusted)} validators; a quorum is {need}")


def verify_sealed_header(header_rlp: bytes, validators: ValidatorSet) -> QbftHeader:
    """The header, once at least ⌈2n/3⌉ distinct pinned validators' committed seals recover from its
    commit hash and it names exactly the pinned set; InvalidSealedHeader naming the failed check."""
    header = parse_qbft_header(header_rlp)
    if set(header.validators) != set(validators.validators):
        added = sorted(set(header.validators) - set(validators.validators))
        removed = sorted(set(validators.validators) - set(header.validators))
        raise InvalidSealedHeader(
            f"block {header.number} names another validator set than the pinned one (added: "
            f"{', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'}): give the chain of "
            "sealed headers from the pinned set to the change, or pin the new set")
    _check_seals(header, validators.validators)
    return header


def follow_validator_changes(pinned: ValidatorSet, headers: Sequence[bytes]) -> ValidatorSet:
    """Walk sealed headers in block order from ``pinned``: each must be sealed by a quorum of the set
    trusted so far; its own validator list is trusted after it. Returns the last trusted set."""
    trusted, last = pinned.validators, -1
    for header_rlp in headers:
        header = parse_qbft_header(header_rlp)
        if header.number <= last:
            raise InvalidSealedHeader(f"the validator-change headers are not in block order (block {header.number})")
        _check_seals(header, trusted)
        trusted, last = header.validators, header.number
    return ValidatorSet(pinned.chain_id, trusted)


def seal_qbft_header(block: Mapping[str, Any], validator_keys: Sequence[bytes], *, round: int = 0,
                     sealers: int | None = None) -> bytes:
    """A QBFT header around a development block (anvil seals nothing): the block's real fields and
    stateRoot, QBFT ``extraData`` naming the validators of ``validator_keys``, and committed seals by
    the first ``sealers`` of them (all by default). Development and tests only: the format is the one
    the Besu vector proves, the seals are made here."""
    from verifier._anchor_proof import header_fields_from_block

    fields = header_fields_from_block(block)
    addresses = [keccak(PrivateKey(k).public_key.format(compressed=False)[1:])[-20:] for k in validator_keys]
    vanity = b"\0" * 32
    fields[EXTRA_DATA_INDEX] = rlp.encode([vanity, addresses, [], round, []])
    fields[13] = BFT_MIX_HASH
    commit_hash = keccak(rlp.encode(fields))
    seals = []
    for key in validator_keys[: len(validator_keys) if sealers is None else sealers]:
        sig = PrivateKey(key).sign_recoverable(commit_hash, hasher=None)
        seals.append(sig)
    fields[EXTRA_DATA_INDEX] = rlp.encode([vanity, addresses, [], round, seals])
    return rlp.encode(fields)


class ValidatorHeaderTrust:
    """A proof package's header is trusted when a quorum of the pinned validators sealed it
    (FORMAT.md §12.2, §14): the verifier's root of trust is the validator set, not an operator."""

    def __init__(self, validators: ValidatorSet) -> None:
        self.validators = validators

    def prove_header(self, package: Mapping[str, Any], header: bytes, chain_id: int) -> Any:
        from verifier._proof_package import ProvenHeader
        from verifier.errors import InvalidProofPackage

        if chain_id != self.validators.chain_id:
            raise InvalidProofPackage(f"blockHeader: the package is for chain {chain_id}, the pinned validators "
                                      f"for chain {self.validators.chain_id}")
        try:
            sealed = verify_sealed_header(header, self.validators)
        except InvalidSealedHeader as exc:
            raise InvalidProofPackage(f"blockHeader: {exc}") from None
        return ProvenHeader(sealed.block_hash, sealed.state_root, sealed.number, sealed.timestamp,
                            f"{len(sealed.seals)} of {len(self.validators.validators)} pinned validators")
