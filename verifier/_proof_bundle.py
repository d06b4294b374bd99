"""Trust bundles that carry proofs (docs/FORMAT.md §16): in validator mode the bank needs nothing but
the pinned validator set.

A bundle may carry ``proofPackage`` — one proof package (FORMAT.md §12) whose header is sealed by the
chain's validators (§14), with one account proof and the pooled storage-trie nodes of every anchored
batch's anchor slot and every credential's status slot — and ``validatorChanges``, the sealed headers
that lead from a pinned validator set to the one that sealed the package (§14.3). In validator mode
(``certledger-verify --bundle B --validators V``) every credential's anchor and status then come from
that sealed state; what the operator(s) signed — anchors, status lists, a fresh-looking block — is not
believed. A forged bundle can only drop the proofs (then every credential fails ``anchor``: nothing is
proven) or replace them with an older sealed package, which freshness (§15) bounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifier._anchor_proof import anchor_storage_key, header_fields_from_block
from verifier._proof_package import ProvenHeader, ProvenState, build_proof_package, status_storage_key
from verifier._qbft import (
    ValidatorHeaderTrust,
    ValidatorSet,
    _change_message,
    follow_validator_changes,
    parse_qbft_header,
    seal_qbft_header,
)
from verifier.errors import InvalidProofPackage, InvalidSealedHeader, MalformedBundle

__all__ = [
    "BundleProofs",
    "attach_bundle_proofs",
    "fetch_issuer_proof",
    "fetch_sealed_proof_package",
    "open_bundle_proofs",
    "sealed_header_from_block",
]

PROOFS_MEMBER = "proofPackage"
CHANGES_MEMBER = "validatorChanges"
ISSUERS_MEMBER = "issuerProof"
#: At most this many validator-change headers in one bundle.
MAX_CHANGES = 256


@dataclass(frozen=True)
class BundleProofs:
    """What a bundle's proofs establish, checked against the pinned validators."""

    #: The validator set in force for the package's header: the pinned set, or where the bundle's
    #: ``validatorChanges`` lead from it.
    validators: ValidatorSet
    #: Block numbers of the change headers followed (empty: the pinned set is current).
    followed: tuple[int, ...]
    #: The bundle's proof package (``None``: the bundle carries none) and its sealed header.
    package: Mapping[str, Any] | None
    header: ProvenHeader | None
    #: The issuer records proven from the IssuerRegistry's storage (``issuerProof``, §16.1), or ``None``.
    issuers: Any = None


def attach_bundle_proofs(
    bundle: Mapping[str, Any],
    package: Mapping[str, Any],
    *,
    validator_changes: Sequence[bytes] = (),
    issuer_proof: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An unsigned copy of ``bundle`` carrying ``package`` (and the change headers, oldest first, and the
    issuers' proof against the same header); sign it afterwards (:func:`~verifier.sign_trust_bundle`):
    the signatures cover the proofs too."""
    body = {k: v for k, v in bundle.items() if k not in ("signature", "signatures")}
    body[PROOFS_MEMBER] = dict(package)
    if issuer_proof is not None:
        body[ISSUERS_MEMBER] = dict(issuer_proof)
    if validator_changes:
        body[CHANGES_MEMBER] = ["0x" + bytes(h).hex() for h in validator_changes]
    else:
        body.pop(CHANGES_MEMBER, None)
    return body


def sealed_header_from_block(block: Mapping[str, Any]) -> bytes:
    """The sealed QBFT header of a Besu node's ``eth_getBlockByNumber`` result. Its ``extraData``
    carries the committed seals, which Besu's block hash leaves out (with the round set to 0,
    FORMAT.md §14.1), so the rebuilt RLP must hash to the block hash *that* way — not as
    :func:`~verifier.header_rlp_from_block` checks a plain Ethereum header."""
    import rlp

    encoded = rlp.encode(header_fields_from_block(dict(block)))
    expected = block["hash"]
    expected = bytes.fromhex(expected[2:]) if isinstance(expected, str) else bytes(expected)
    if parse_qbft_header(encoded).block_hash != expected:
        raise InvalidSealedHeader(
            "the rebuilt QBFT header does not hash to the block hash with its seals removed and round 0 "
            "(not a QBFT block, or an unknown header layout)"
        )
    return bytes(encoded)


def fetch_sealed_proof_package(
    w3: Any,
    anchor_registry: str,
    credentials: Iterable[tuple[bytes, bytes]],
    *,
    validator_keys: Sequence[bytes] | None,
    block: int | str = "latest",
    chunk: int = 1000,
) -> dict[str, Any]:
    """A package proving every ``(root, leaf)``'s anchor and status slots at ``block`` from
    ``eth_getBlockByNumber`` + ``eth_getProof`` (``chunk`` slots a call). With ``validator_keys``
    (the development chain only, FORMAT.md §14.5) the block's real fields are wrapped in a QBFT
    header they seal; without, the node's own header is used (:func:`sealed_header_from_block`:
    a Besu QBFT node's carries its validators' seals)."""
    raw = w3.provider.make_request(
        "eth_getBlockByNumber", [hex(block) if isinstance(block, int) else block, False]
    )
    raw_block = raw["result"]
    header = (
        seal_qbft_header(raw_block, validator_keys) if validator_keys else sealed_header_from_block(raw_block)
    )
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
    return build_proof_package(
        chain_id=int(w3.eth.chain_id),
        anchor_registry=anchor_registry,
        header=header,
        account_proof=account_proof,
        storage_proofs=storage,
    )


def fetch_issuer_proof(
    w3: Any, issuer_registry: str, issuer_ids: Iterable[int], block: int
) -> dict[str, Any]:
    """``issuerProof`` (§16.1) for ``issuer_ids`` at ``block``: ``eth_getProof`` of every slot their
    records need (found in up to three rounds: string lengths and key counts are read first)."""
    from verifier._issuer_proof import issuer_slots

    ids = list(issuer_ids)
    address = w3.to_checksum_address(issuer_registry)
    known: dict[int, int] = {}
    proofs: dict[int, list[str]] = {}
    account: list[str] = []
    for _ in range(4):
        wanted = sorted(issuer_slots(ids, known) - set(proofs))
        if not wanted:
            break
        for i in range(0, len(wanted), 1000):
            part = wanted[i : i + 1000]
            reply = w3.provider.make_request(
                "eth_getProof", [address, [f"0x{x:064x}" for x in part], hex(block)]
            )
            if "result" not in reply:
                raise InvalidProofPackage(f"eth_getProof failed: {reply.get('error')}")
            account = list(reply["result"]["accountProof"])
            for slot, entry in zip(part, reply["result"]["storageProof"]):
                known[slot] = int(entry["value"], 16)
                proofs[slot] = list(entry["proof"])
    pool: dict[str, None] = {}
    for nodes in proofs.values():
        for n in nodes:
            pool.setdefault(str(n).lower(), None)
    return {"accountProof": [str(n).lower() for n in account], "storageProof": list(pool)}


def _change_headers(data: Mapping[str, Any]) -> list[bytes]:
    value = data.get(CHANGES_MEMBER, [])
    if type(value) is not list or len(value) > MAX_CHANGES:
        raise MalformedBundle(
            f"the trust bundle's {CHANGES_MEMBER} must be a list of at most {MAX_CHANGES} headers"
        )
    out = []
    for i, text in enumerate(value):
        try:
            if type(text) is not str or not text.startswith("0x"):
                raise ValueError
            out.append(bytes.fromhex(text[2:]))
        except ValueError:
            raise MalformedBundle(f"the trust bundle's {CHANGES_MEMBER}[{i}] is not 0x-hex") from None
    return out


def _listed(package: Mapping[str, Any]) -> set[str] | None:
    """The validators a package's header lists, or ``None`` if it is not a QBFT header (refused later)."""
    try:
        return set(parse_qbft_header(bytes.fromhex(str(package.get("blockHeader"))[2:])).validators)
    except (InvalidSealedHeader, ValueError):
        return None


def open_bundle_proofs(bundle: Any, pinned: ValidatorSet) -> BundleProofs:
    """Check a loaded :class:`~verifier.TrustBundle`'s proofs against the ``pinned`` validators.

    1. ``validatorChanges`` are followed from ``pinned`` (:func:`~verifier.follow_validator_changes`);
    2. ``proofPackage``'s header must be sealed by a quorum of the set so reached (and list it),
       its account proof must prove the bundle's anchor registry.

    Refused with :class:`InvalidSealedHeader` (a change) or :class:`InvalidProofPackage` (the
    package), the message naming the member and the failing check. The per-credential slots are
    checked as credentials are verified (:class:`~verifier.Verifier` ``proof_package=``).
    """
    import rlp

    data = bundle.data
    if pinned.chain_id != bundle.chain_id:
        raise InvalidSealedHeader(
            f"the validators file is for chain {pinned.chain_id}, the trust bundle for chain {bundle.chain_id}"
        )
    changes = _change_headers(data)
    package = data.get(PROOFS_MEMBER)
    if changes and isinstance(package, dict) and _listed(package) == set(pinned.validators):
        changes = []  # the bank already pins the set that sealed the package: nothing to follow
    try:
        current = follow_validator_changes(changes, pinned) if changes else pinned
    except InvalidSealedHeader as exc:
        raise InvalidSealedHeader(f"the trust bundle's {CHANGES_MEMBER}: {exc}") from None
    followed = tuple(int.from_bytes(rlp.decode(h)[8], "big") for h in changes)
    if package is None:
        return BundleProofs(current, followed, None, None)
    if not isinstance(package, dict):
        raise MalformedBundle(f"the trust bundle's {PROOFS_MEMBER} must be an object")
    listed = _listed(package)
    if listed is not None and listed != set(current.validators):  # name the change, not a stray seal
        header = parse_qbft_header(bytes.fromhex(package["blockHeader"][2:]))
        raise InvalidProofPackage(
            f"the trust bundle's {PROOFS_MEMBER}: blockHeader: {_change_message(header, current)}"
        )
    try:
        state = ProvenState(
            package,
            chain_id=bundle.chain_id,
            anchor_registry=bundle.anchor_registry,
            header_trust=ValidatorHeaderTrust(current),
        )
    except InvalidProofPackage as exc:
        raise InvalidProofPackage(f"the trust bundle's {PROOFS_MEMBER}: {exc}") from None
    issuers = None
    if data.get(ISSUERS_MEMBER) is not None:
        from verifier._issuer_proof import ProvenIssuers

        try:
            issuers = ProvenIssuers(
                data[ISSUERS_MEMBER],
                block_header=package["blockHeader"],
                chain_id=bundle.chain_id,
                issuer_registry=bundle.contracts["issuerRegistry"],
                header_trust=ValidatorHeaderTrust(current),
            )
        except InvalidProofPackage as exc:
            raise InvalidProofPackage(f"the trust bundle's {exc}") from None
    return BundleProofs(current, followed, package, state.header, issuers)
