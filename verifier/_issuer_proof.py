"""Issuer records proven from the IssuerRegistry's storage (docs/FORMAT.md §16.1), so that in validator
mode not even the issuer's name, credit code, key accounts or credential types are taken from what an
operator signed.

A bundle's ``issuerProof`` is ``{"accountProof": [...], "storageProof": [...]}`` against the header of
its ``proofPackage``: the IssuerRegistry's account, and the pooled storage-trie nodes of every slot
below, for every issuer. The verifier derives each slot from the committed storage layout
(``ledger_node/build/IssuerRegistry.json``, package data) and reads nothing unproven:

* ``_core[id]`` — one word: ``keyVersion`` (16 bits), ``suite`` (8), ``status`` (8), ``suspensionReason``
  (8), ``activeFrom`` (64), ``activeUntil`` (64), packed from the low-order bytes up;
* ``_info[id].name`` / ``.uscc`` — Solidity strings (short: in the slot; long: at ``keccak256(slot) + k``);
* ``_keys[id][v]`` for ``v`` = 1 … ``keyVersion`` — ``account`` (160) ‖ ``validFrom`` (64); ``validUntil``;
  ``sm2PublicKey`` (bytes, as a string);
* ``_allowed[id][t]`` for every credential type ``t``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from verifier._anchor_proof import contract_data
from verifier._internal.keccak import keccak256 as keccak
from verifier._proof_package import PACKAGE_TYPE, PACKAGE_VERSION, ProvenState
from verifier._schema import CREDENTIAL_TYPES
from verifier._trust import IssuerKeyRecord, IssuerRecord
from verifier.errors import InvalidProofPackage

__all__ = ["ProvenIssuerTrust", "ProvenIssuers", "issuer_slots"]

_SUITES = {0: "secp256k1", 1: "sm2-sm3"}
_STATUS = {1: "active", 2: "suspended"}
_MAX_STRING = 4096


@cache
def _layout() -> dict[str, int]:
    try:
        storage = contract_data("IssuerRegistry")["storageLayout"]["storage"]
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidProofPackage(f"cannot read the IssuerRegistry storage layout: {exc}") from None
    return {e["label"]: int(e["slot"]) for e in storage}


def _u(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _slot_int(key: bytes) -> int:
    return int.from_bytes(key, "big")


def _map(key: int, slot: int) -> int:
    return _slot_int(keccak(_u(key) + _u(slot)))


def core_slot(issuer_id: int) -> int:
    return _map(issuer_id, _layout()["_core"])


def info_slots(issuer_id: int) -> tuple[int, int]:
    base = _map(issuer_id, _layout()["_info"])
    return base, base + 1


def key_slots(issuer_id: int, version: int) -> tuple[int, int, int]:
    base = _map(version, _map(issuer_id, _layout()["_keys"]))
    return base, base + 1, base + 2


def allowed_slot(issuer_id: int, credential_type: int) -> int:
    return _map(credential_type, _map(issuer_id, _layout()["_allowed"]))


def _string_data_slots(slot: int, word: int) -> list[int]:
    """Data slots of a long Solidity string/bytes whose head slot holds ``word`` (none if short)."""
    if not word & 1:
        return []
    length = (word - 1) // 2
    if length > _MAX_STRING:
        raise InvalidProofPackage(f"issuerProof: a string of {length} bytes is longer than {_MAX_STRING}")
    start = _slot_int(keccak(_u(slot)))
    return [start + k for k in range((length + 31) // 32)]


def issuer_slots(issuer_ids: Iterable[int], known: Mapping[int, int]) -> set[int]:
    """Every slot the issuers' records need, as far as ``known`` (slot → value) lets us see: call again
    with the values of the slots returned until nothing new is asked (at most three rounds)."""
    out: set[int] = set()
    for i in issuer_ids:
        core = core_slot(i)
        out.add(core)
        for head in info_slots(i):
            out.add(head)
            if head in known:
                out.update(_string_data_slots(head, known[head]))
        out.update(allowed_slot(i, t) for t in CREDENTIAL_TYPES.values())
        if core in known:
            for v in range(1, (known[core] & 0xFFFF) + 1):
                a, b, sm2 = key_slots(i, v)
                out.update((a, b, sm2))
                if sm2 in known:
                    out.update(_string_data_slots(sm2, known[sm2]))
    return out


class ProvenIssuers:
    """The issuer records of a bundle's ``issuerProof``, read through its proofs against ``header``'s
    state (the same sealed header as the bundle's ``proofPackage``)."""

    def __init__(
        self, issuer_proof: Any, *, block_header: str, chain_id: int, issuer_registry: str, header_trust: Any
    ) -> None:
        if not isinstance(issuer_proof, Mapping) or set(issuer_proof) != {"accountProof", "storageProof"}:
            raise InvalidProofPackage(
                "issuerProof: must be an object with accountProof and storageProof, nothing else"
            )
        package = {
            "type": PACKAGE_TYPE,
            "version": PACKAGE_VERSION,
            "chainId": chain_id,
            "anchorRegistry": issuer_registry,
            "blockHeader": block_header,
            "accountProof": issuer_proof["accountProof"],
            "storageProof": issuer_proof["storageProof"],
        }
        try:
            self._state = ProvenState(
                package, chain_id=chain_id, anchor_registry=issuer_registry, header_trust=header_trust
            )
        except InvalidProofPackage as exc:
            raise InvalidProofPackage(f"issuerProof: {exc}") from None
        self._cache: dict[int, IssuerRecord | None] = {}

    def _word(self, slot: int, what: str) -> int:
        try:
            return self._state._word(_u(slot), what)
        except InvalidProofPackage as exc:
            raise InvalidProofPackage(f"issuerProof: {exc}") from None

    def _string(self, slot: int, what: str) -> bytes:
        word = self._word(slot, what)
        if not word & 1:
            length = (word & 0xFF) // 2
            return _u(word)[:length]
        data = b"".join(_u(self._word(s, what)) for s in _string_data_slots(slot, word))
        return data[: (word - 1) // 2]

    def issuer(self, issuer_id: int) -> IssuerRecord | None:
        """The issuer as proven, or ``None`` if its core slot is proven empty (never registered)."""
        if issuer_id in self._cache:
            return self._cache[issuer_id]
        core = self._word(core_slot(issuer_id), f"issuer {issuer_id} core")
        record = None
        if core:
            name_slot, uscc_slot = info_slots(issuer_id)
            keys = {}
            for v in range(1, (core & 0xFFFF) + 1):
                a, b, sm2 = key_slots(issuer_id, v)
                first = self._word(a, f"issuer {issuer_id} key {v}")
                keys[v] = IssuerKeyRecord(
                    v,
                    "0x" + (first & ((1 << 160) - 1)).to_bytes(20, "big").hex(),
                    (first >> 160) & 0xFFFFFFFFFFFFFFFF,
                    self._word(b, f"issuer {issuer_id} key {v}") & 0xFFFFFFFFFFFFFFFF,
                    self._string(sm2, f"issuer {issuer_id} key {v} SM2 key"),
                )
            try:
                name = self._string(name_slot, f"issuer {issuer_id} name").decode("utf-8")
                uscc = self._string(uscc_slot, f"issuer {issuer_id} uscc").decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidProofPackage(f"issuerProof: issuer {issuer_id}'s name is not UTF-8") from None
            types = frozenset(
                t
                for t in CREDENTIAL_TYPES.values()
                if self._word(allowed_slot(issuer_id, t), f"issuer {issuer_id} type {t}") & 0xFF
            )
            record = IssuerRecord(
                issuer_id,
                name,
                uscc,
                _SUITES.get((core >> 16) & 0xFF, "unknown"),
                _STATUS.get((core >> 24) & 0xFF, "suspended"),
                (core >> 40) & 0xFFFFFFFFFFFFFFFF,
                (core >> 104) & 0xFFFFFFFFFFFFFFFF,
                types,
                keys,
            )
        self._cache[issuer_id] = record
        return record


class ProvenIssuerTrust:
    """A trust source whose ``issuer`` answers come from :class:`ProvenIssuers`; all else from ``inner``."""

    def __init__(self, inner: Any, issuers: ProvenIssuers) -> None:
        self._inner = inner
        self._issuers = issuers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def issuer(self, issuer_id: int) -> IssuerRecord | None:
        """The proven record; ``None`` (the ``issuer`` check then fails) when the proof does not cover it."""
        try:
            return self._issuers.issuer(issuer_id)
        except InvalidProofPackage:
            return None
