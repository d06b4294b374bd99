"""Validator-sealed block headers (docs/FORMAT.md §14): a Hyperledger Besu QBFT header is final when
its ``extraData`` carries committed seals over the QBFT commit hash from at least ⌈2n/3⌉ distinct
validators. With the chain's validator set pinned (:class:`ValidatorSet`), a sealed header is
evidence that no single party — not the registry operator, not one bureau — can forge.

The layout and the rule follow Besu's ``QbftExtraDataCodec`` and ``BftBlockHashing`` and are checked
against a real header of a live 4-validator Besu QBFT network (``tests/assets/besu-qbft-block-7528.json``).
:func:`seal_qbft_header` makes such headers for the development chain (anvil seals nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from verifier._internal.keccak import keccak256 as keccak
from verifier._internal.suites import eth_address, recover_address, sign_digest_secp256k1
from verifier.errors import InvalidSealedHeader, InvalidValidatorSet

__all__ = [
    "VALIDATORS_FILE_TYPE",
    "QbftHeader",
    "ValidatorHeaderTrust",
    "ValidatorSet",
    "follow_validator_changes",
    "parse_qbft_header",
    "qbft_extra_data",
    "quorum",
    "seal_qbft_header",
    "verify_sealed_header",
]

VALIDATORS_FILE_TYPE = "certledger-validators"
_VERSION = 1
#: Index of ``extraData`` in an RLP block header (after parentHash … timestamp).
_EXTRA = 12
_HEADER_NAMES = (
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
_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def quorum(n: int) -> int:
    """Seals needed to finalise a block with ``n`` validators: ⌈2n/3⌉, as Besu's
    ``BftHelpers.calculateRequiredValidatorQuorum`` (``Util.fastDivCeiling(2 * n, 3)``)."""
    return -(-2 * n // 3)


@dataclass(frozen=True, slots=True)
class QbftHeader:
    """A parsed QBFT block header. ``fields`` are the raw RLP header items with the full
    ``extraData``; ``commit_hash`` is what each committed seal signs; ``block_hash`` is Besu's
    on-chain hash (seals and round excluded)."""

    parent_hash: bytes
    state_root: bytes
    number: int
    timestamp: int
    block_hash: bytes
    commit_hash: bytes
    vanity: bytes
    validators: tuple[str, ...]
    vote: tuple[bytes, ...]
    round: int
    seals: tuple[bytes, ...]
    fields: tuple[bytes, ...]

    def state_root_hex(self) -> str:
        return "0x" + self.state_root.hex()


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """The pinned QBFT validators of one chain: lower-case 0x addresses, sorted, distinct."""

    chain_id: int
    validators: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int) or self.chain_id <= 0:
            raise InvalidValidatorSet("chainId must be a positive integer")
        if not self.validators:
            raise InvalidValidatorSet("the validator set is empty")
        normal = []
        for v in self.validators:
            if not isinstance(v, str) or len(v) != 42 or not v.startswith("0x"):
                raise InvalidValidatorSet(f"validator {v!r} is not a 0x address of 20 bytes")
            try:
                bytes.fromhex(v[2:])
            except ValueError:
                raise InvalidValidatorSet(f"validator {v!r} is not a 0x address of 20 bytes") from None
            normal.append(v.lower())
        if len(set(normal)) != len(normal):
            raise InvalidValidatorSet("the validator set lists a validator twice")
        object.__setattr__(self, "validators", tuple(sorted(normal)))

    @property
    def threshold(self) -> int:
        """⌈2n/3⌉ distinct seals (:func:`quorum`)."""
        return quorum(len(self.validators))

    @classmethod
    def from_json(cls, doc: Any) -> ValidatorSet:
        """From the validators-file object (docs/FORMAT.md §14.2)."""
        if not isinstance(doc, dict):
            raise InvalidValidatorSet("a validators file is a JSON object")
        if doc.get("type") != VALIDATORS_FILE_TYPE:
            raise InvalidValidatorSet(f'not a validators file (type must be "{VALIDATORS_FILE_TYPE}")')
        if doc.get("version") != _VERSION:
            raise InvalidValidatorSet(f"validators file version {doc.get('version')!r} is not supported (1)")
        validators = doc.get("validators")
        if not isinstance(validators, list):
            raise InvalidValidatorSet("validators must be a list of addresses")
        return cls(chain_id=doc.get("chainId"), validators=tuple(validators))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> ValidatorSet:
        """Read a validators file; :class:`InvalidValidatorSet` saying what is wrong."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidValidatorSet(f"cannot read the validators file {path}: {exc.strerror}") from None
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise InvalidValidatorSet(f"the validators file {path} is not valid JSON") from None
        return cls.from_json(doc)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": VALIDATORS_FILE_TYPE,
            "version": _VERSION,
            "chainId": self.chain_id,
            "validators": list(self.validators),
        }


def _int(raw: bytes, what: str) -> int:
    if not isinstance(raw, bytes) or (raw[:1] == b"\x00"):
        raise InvalidSealedHeader(f"header: {what} is not a canonical RLP integer")
    return int.from_bytes(raw, "big")


def qbft_extra_data(
    validators: Sequence[str],
    round: int,
    seals: Sequence[bytes] | None,
    *,
    vanity: bytes = bytes(32),
    vote: Sequence[bytes] = (),
) -> bytes:
    """QBFT ``extraData``: ``RLP([vanity, [validator…], [vote?], round, [seal…]])``. ``seals=None``
    leaves the seal list empty (the commit-hash form)."""
    import rlp

    return bytes(
        rlp.encode(
            [
                vanity,
                [bytes.fromhex(v[2:]) for v in validators],
                [list(vote)] if vote else [],
                round,
                list(seals or ()),
            ]
        )
    )


def parse_qbft_header(header_rlp: bytes) -> QbftHeader:
    """Parse a QBFT block header; :class:`InvalidSealedHeader` naming what is malformed.

    Nothing is verified here beyond the shape: see :func:`verify_sealed_header`.
    """
    import rlp

    try:
        fields = rlp.decode(header_rlp, strict=True)
    except (rlp.exceptions.DecodingError, TypeError):
        raise InvalidSealedHeader("header: not an RLP block header") from None
    if not isinstance(fields, list) or len(fields) < 15 or not all(isinstance(f, bytes) for f in fields):
        raise InvalidSealedHeader("header: not an RLP list of at least 15 byte strings")
    for i, size in ((0, 32), (3, 32)):
        if len(fields[i]) != size:
            raise InvalidSealedHeader(f"header: {_HEADER_NAMES[i]} is not 32 bytes")
    try:
        extra = rlp.decode(fields[_EXTRA], strict=True)
    except rlp.exceptions.DecodingError:
        raise InvalidSealedHeader("header: extraData is not QBFT extra data (not RLP)") from None
    if not isinstance(extra, list) or len(extra) != 5:
        raise InvalidSealedHeader(
            "header: extraData is not QBFT extra data (want [vanity, validators, vote, round, seals])"
        )
    vanity, validators, vote, round_raw, seals = extra
    if not isinstance(vanity, bytes) or len(vanity) != 32:
        raise InvalidSealedHeader("header: extraData vanity is not 32 bytes")
    if not isinstance(validators, list) or not all(isinstance(v, bytes) and len(v) == 20 for v in validators):
        raise InvalidSealedHeader("header: extraData validators is not a list of 20-byte addresses")
    if not isinstance(vote, list) or len(vote) > 1:
        raise InvalidSealedHeader("header: extraData vote is not an empty or one-item list")
    if vote and not (
        isinstance(vote[0], list)
        and len(vote[0]) == 2
        and isinstance(vote[0][0], bytes)
        and len(vote[0][0]) == 20
        and isinstance(vote[0][1], bytes)
    ):
        raise InvalidSealedHeader("header: extraData vote is not [recipient, type]")
    if not isinstance(round_raw, bytes) or len(round_raw) > 4:
        raise InvalidSealedHeader("header: extraData round is not a 32-bit integer")
    round_ = _int(round_raw, "extraData round")
    if not isinstance(seals, list) or not all(isinstance(s, bytes) for s in seals):
        raise InvalidSealedHeader("header: extraData committed seals is not a list of byte strings")
    # Commit hash: the header with the seal list emptied (round kept); on-chain hash: round 0 too
    # (Besu QbftExtraDataCodec EXCLUDE_COMMIT_SEALS / EXCLUDE_COMMIT_SEALS_AND_ROUND_NUMBER).
    commit_extra = rlp.encode([vanity, validators, vote, round_raw, []])
    hash_extra = rlp.encode([vanity, validators, vote, b"", []])
    commit_hash = keccak(rlp.encode([*fields[:_EXTRA], commit_extra, *fields[_EXTRA + 1 :]]))
    block_hash = keccak(rlp.encode([*fields[:_EXTRA], hash_extra, *fields[_EXTRA + 1 :]]))
    return QbftHeader(
        parent_hash=fields[0],
        state_root=fields[3],
        number=_int(fields[8], "number"),
        timestamp=_int(fields[11], "timestamp"),
        block_hash=block_hash,
        commit_hash=commit_hash,
        vanity=vanity,
        validators=tuple("0x" + v.hex() for v in validators),
        vote=tuple(vote[0]) if vote else (),
        round=round_,
        seals=tuple(seals),
        fields=tuple(fields),
    )


def _seal_signer(commit_hash: bytes, seal: bytes, index: int) -> str:
    if len(seal) != 65:
        raise InvalidSealedHeader(f"committed seal {index}: {len(seal)} bytes, not 65 (r ‖ s ‖ v)")
    if seal[64] not in (0, 1):
        raise InvalidSealedHeader(f"committed seal {index}: recovery id {seal[64]} is not 0 or 1")
    if int.from_bytes(seal[32:64], "big") > _SECP256K1_HALF_N:
        raise InvalidSealedHeader(f"committed seal {index}: high-s signature (a malleated copy)")
    signer = recover_address(commit_hash, seal[:64] + bytes([seal[64] + 27]))
    if signer is None:
        raise InvalidSealedHeader(f"committed seal {index}: not a valid secp256k1 signature")
    return signer


def verify_sealed_header(header_rlp: bytes, validators: ValidatorSet) -> QbftHeader:
    """The parsed header if sealed by a quorum of ``validators`` (see :func:`_verify_sealed_header`).

    A pure function of its two arguments, so accepted headers are memoised (credentials issued
    together carry the same header): 4,096 entries keyed by the exact header bytes and validator set.
    """
    return _verify_cached(bytes(header_rlp), validators)


def _verify_sealed_header(header_rlp: bytes, validators: ValidatorSet) -> QbftHeader:
    """The parsed header if its committed seals come from at least ``validators.threshold``
    distinct pinned validators; else :class:`InvalidSealedHeader` naming the failing check.

    Like Besu's committer validation, every seal must recover to a pinned validator and no
    validator may seal twice. The header's own validator list (the set for the next block) must
    equal the pinned set; a change is refused naming it — follow it with
    :func:`follow_validator_changes`.
    """
    header = parse_qbft_header(header_rlp)
    _check_seals(header, validators)
    if set(header.validators) != set(validators.validators):
        raise InvalidSealedHeader(_change_message(header, validators))
    return header


_verify_cached = lru_cache(maxsize=4096)(_verify_sealed_header)


def _check_seals(header: QbftHeader, validators: ValidatorSet) -> None:
    pinned = set(validators.validators)
    seen: dict[str, int] = {}
    for i, seal in enumerate(header.seals):
        signer = _seal_signer(header.commit_hash, seal, i)
        if signer not in pinned:
            raise InvalidSealedHeader(
                f"committed seal {i} recovers to {signer}, which is not a pinned validator "
                "(the seal or a header field was changed, or the validator set is not the pinned one)"
            )
        if signer in seen:
            raise InvalidSealedHeader(
                f"committed seals {seen[signer]} and {i} are both from validator {signer} (duplicate seal)"
            )
        seen[signer] = i
    if len(seen) < validators.threshold:
        raise InvalidSealedHeader(
            f"only {len(seen)} distinct validator seals on block {header.number}; "
            f"{validators.threshold} of {len(validators.validators)} are needed (quorum)"
        )


def _change_message(header: QbftHeader, validators: ValidatorSet) -> str:
    added = sorted(set(header.validators) - set(validators.validators))
    removed = sorted(set(validators.validators) - set(header.validators))
    parts = [f"added {', '.join(added)}"] if added else []
    parts += [f"removed {', '.join(removed)}"] if removed else []
    return (
        f"validator set change at block {header.number}: {'; '.join(parts)} — the pinned set is out "
        "of date; follow the change with sealed headers or pin the new set"
    )


def _check_change(header: QbftHeader, trusted: ValidatorSet, listed: ValidatorSet) -> None:
    """A header whose validator list differs from the trusted set (docs/FORMAT.md §14.3): its seals
    must come from the trusted or the listed validators, with ⌈2n/3⌉ of the trusted set (the set in
    force before endorses the header that names its successor) and ⌈2m/3⌉ of the listed set (the
    header is final under its own set, as Besu seals it)."""
    old, new = set(trusted.validators), set(listed.validators)
    seen: dict[str, int] = {}
    for i, seal in enumerate(header.seals):
        signer = _seal_signer(header.commit_hash, seal, i)
        if signer not in old and signer not in new:
            raise InvalidSealedHeader(
                f"committed seal {i} recovers to {signer}, which is neither a trusted validator nor one the "
                "header lists (the seal or a header field was changed)"
            )
        if signer in seen:
            raise InvalidSealedHeader(
                f"committed seals {seen[signer]} and {i} are both from validator {signer} (duplicate seal)"
            )
        seen[signer] = i
    change = _change_words(header, trusted)
    by_old = len(old.intersection(seen))
    if by_old < trusted.threshold:
        raise InvalidSealedHeader(
            f"the validator set change at block {header.number} ({change}) is sealed by {by_old} of the "
            f"{len(old)} trusted validators; {trusted.threshold} are needed to accept it"
        )
    by_new = len(new.intersection(seen))
    if by_new < listed.threshold:
        raise InvalidSealedHeader(
            f"the validator set change at block {header.number} ({change}) is sealed by {by_new} of the "
            f"{len(new)} validators it lists; {listed.threshold} are needed (quorum of the new set)"
        )


def _change_words(header: QbftHeader, validators: ValidatorSet) -> str:
    added = sorted(set(header.validators) - set(validators.validators))
    removed = sorted(set(validators.validators) - set(header.validators))
    parts = [f"added {', '.join(added)}"] if added else []
    parts += [f"removed {', '.join(removed)}"] if removed else []
    return "; ".join(parts)


def follow_validator_changes(headers: Sequence[bytes], validators: ValidatorSet) -> ValidatorSet:
    """Follow validator-set changes from the pinned set (docs/FORMAT.md §14.3).

    In strictly increasing block order, each header must be sealed by a quorum of the set trusted
    so far — and, when it lists a different set (a change), also by a quorum of the set it lists
    (:func:`_check_change`); its listed set then becomes the trusted set. Returns the last set;
    :class:`InvalidSealedHeader` naming the header, its block and the change otherwise.
    """
    trusted = validators
    last = -1
    for k, raw in enumerate(headers):
        where = f"validator-change header {k}"
        try:
            header = parse_qbft_header(raw)
            where += f" (block {header.number})"
            if header.number <= last:
                raise InvalidSealedHeader(
                    f"block {header.number} does not follow block {last} (headers must be in increasing order)"
                )
            try:
                listed = ValidatorSet(chain_id=trusted.chain_id, validators=header.validators)
            except InvalidValidatorSet as exc:
                raise InvalidSealedHeader(f"its validator list is not a validator set: {exc}") from None
            if set(listed.validators) == set(trusted.validators):
                _check_seals(header, trusted)
            else:
                _check_change(header, trusted, listed)
        except InvalidSealedHeader as exc:
            raise InvalidSealedHeader(f"{where}: {exc}") from None
        last = header.number
        trusted = listed
    return trusted


def _block_field(block: dict[str, Any], name: str) -> Any:
    v = block[name]
    if isinstance(v, str):
        if name in {
            "difficulty",
            "number",
            "gasLimit",
            "gasUsed",
            "timestamp",
            "baseFeePerGas",
            "blobGasUsed",
            "excessBlobGas",
        }:
            return int(v, 16)
        return bytes.fromhex(v.removeprefix("0x"))
    return v if isinstance(v, int) else bytes(v)


_OPTIONAL = (
    "baseFeePerGas",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
    "requestsHash",
)


def seal_qbft_header(block: dict[str, Any], validator_keys: Sequence[bytes], *, round: int = 0) -> bytes:
    """Development chain only (docs/FORMAT.md §14.5): the RLP header of ``block`` (an
    ``eth_getBlockByNumber`` result from anvil — its real parentHash, stateRoot, number, timestamp …)
    with ``extraData`` replaced by QBFT extra data listing the validators of ``validator_keys``
    (sorted, as Besu lists them) and sealed by every one of those keys."""
    import rlp

    validators = sorted(eth_address(k) for k in validator_keys)
    fields: list[Any] = [_block_field(block, n) for n in _HEADER_NAMES]
    for name in _OPTIONAL:
        if block.get(name) is None:
            break
        fields.append(_block_field(block, name))
    fields[_EXTRA] = qbft_extra_data(validators, round, None)
    commit_hash = keccak(rlp.encode(fields))
    seals = []
    for key in validator_keys:
        sig = sign_digest_secp256k1(commit_hash, key)
        seals.append(sig[:64] + bytes([sig[64] - 27]))
    fields[_EXTRA] = qbft_extra_data(validators, round, seals)
    return bytes(rlp.encode(fields))


class ValidatorHeaderTrust:
    """A proof package's header is trusted when a quorum of the pinned validators sealed it
    (FORMAT.md §14.2, §14): the verifier's root of trust is the validator set, not an operator."""

    def __init__(self, validators: ValidatorSet, *, not_before: int | None = None) -> None:
        """``not_before`` (unix seconds): refuse a package whose sealed header is older — its status
        may predate a revocation (docs/FORMAT.md §15; the CLI passes the verification time minus
        ``--max-age``)."""
        self.validators = validators
        self.not_before = not_before

    def prove_header(self, package: Any, header: bytes, chain_id: int) -> Any:
        from verifier._proof_package import ProvenHeader
        from verifier.errors import InvalidProofPackage

        if chain_id != self.validators.chain_id:
            raise InvalidProofPackage(
                f"blockHeader: the package is for chain {chain_id}, the pinned validators "
                f"for chain {self.validators.chain_id}"
            )
        try:
            sealed = verify_sealed_header(header, self.validators)
        except InvalidSealedHeader as exc:
            raise InvalidProofPackage(f"blockHeader: {exc}") from None
        from verifier._internal.keccak import keccak256

        if self.not_before is not None and sealed.timestamp < self.not_before:
            from datetime import UTC, datetime

            def utc(ts: int) -> str:
                return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

            raise InvalidProofPackage(
                f"blockHeader: the sealed state is as of block {sealed.number} ({utc(sealed.timestamp)}), older than "
                f"the maximum age allows (not before {utc(self.not_before)}): its status may predate a revocation; "
                "get a fresh proof package (GET /v1/credentials/{id}/proof)"
            )
        return ProvenHeader(
            keccak256(header),
            sealed.state_root,
            sealed.number,
            sealed.timestamp,
            f"{len(sealed.seals)} of {len(self.validators.validators)} pinned validators",
        )
