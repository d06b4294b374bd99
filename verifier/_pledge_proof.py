"""Pledge state of a data asset proven from chain state (docs/FORMAT.md §17; issue 22).

An asset is keyed by ``assetKey = keccak256(utf8(issuer.id + "/" + credentialSubject.assetId))``.
Its state in ``PledgeRegistry`` is one slot (``_assets[assetKey]``) plus two slots per rank
(``_pledges[assetKey][rank]``). A ``pledgeProof`` carries a block header (signed by a trusted
operator, or sealed by the pinned validators), the registry's account proof and one storage proof
per slot; everything is checked here with ``trie`` + ``rlp`` against the header's ``stateRoot``, as
anchors are (§9, §12).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from verifier._anchor_proof import (
    CONTRACTS_DATA,
    contract_data,
    header_message,
    header_rlp_from_block,
    sign_header,
)
from verifier._internal.keccak import keccak256 as keccak
from verifier._internal.proofinput import hex_member, trie_nodes
from verifier._internal.suites import recover_address
from verifier._qbft import ValidatorSet, seal_qbft_header, verify_sealed_header
from verifier._result import Check
from verifier._trust import TrustSource
from verifier.errors import InvalidPledgeProof, InvalidSealedHeader

__all__ = [
    "AssetPledgeState",
    "pledge_check",
    "PledgeRecord",
    "asset_key",
    "fetch_pledge_proof",
    "pledge_storage_keys",
    "verify_pledge_proof",
]

ASSET_STATES = {0: "unregistered", 1: "registered", 2: "cancelled"}
PLEDGE_STATES = {0: "none", 1: "active", 2: "released", 3: "cancelled"}
MAX_RANKS = 16  # a proof carries at most this many ranks


def asset_key(issuer_id: str, asset_id: str) -> bytes:
    """``keccak256(utf8(issuer.id + "/" + assetId))`` — stable across a transfer."""
    return keccak(f"{issuer_id}/{asset_id}".encode())


def loan_ref_bytes(text: str) -> bytes:
    """A loan reference as stored on chain: its UTF-8 right-padded to 32 bytes, or keccak256 of a longer one."""
    raw = text.encode()
    return raw.ljust(32, b"\0") if len(raw) <= 32 else keccak(raw)


def loan_ref_text(raw: bytes) -> str:
    """The loan reference for display: the text if it is padded UTF-8, else 0x-hex."""
    stripped = raw.rstrip(b"\0")
    try:
        text = stripped.decode()
        if text and text.isprintable() and b"\0" not in stripped:
            return text
    except UnicodeDecodeError:
        pass
    return "0x" + raw.hex()


@cache
def _slots() -> tuple[int, int]:
    try:
        layout = contract_data("PledgeRegistry")["storageLayout"]["storage"]
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidPledgeProof(
            f"cannot read the PledgeRegistry storage layout in {CONTRACTS_DATA}: {exc}"
        ) from None
    by_label = {e["label"]: int(e["slot"]) for e in layout}
    try:
        return by_label["_assets"], by_label["_pledges"]
    except KeyError as exc:
        raise InvalidPledgeProof(f"the PledgeRegistry storage layout has no {exc} mapping") from None


def pledge_storage_keys(key: bytes, ranks: int = 1) -> list[bytes]:
    """The storage keys proving the asset's state: its asset slot, then two slots per rank 1..ranks."""
    assets, pledges = _slots()
    out = [keccak(key + assets.to_bytes(32, "big"))]
    inner = keccak(key + pledges.to_bytes(32, "big"))
    for rank in range(1, ranks + 1):
        base = int.from_bytes(keccak(rank.to_bytes(32, "big") + inner), "big")
        out += [base.to_bytes(32, "big"), (base + 1).to_bytes(32, "big")]
    return out


@dataclass(frozen=True)
class PledgeRecord:
    rank: int
    lender: str  # lower-case 0x address
    since: int  # unix seconds (block timestamp of the pledge)
    state: str  # "active", "released", "cancelled"
    loan_ref: str

    def describe(self, lender_names: dict[str, str] | None = None) -> str:
        name = (lender_names or {}).get(self.lender, self.lender)
        day = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d")
        return f"pledged to {name} since {day}, loan ref {self.loan_ref}"


@dataclass(frozen=True)
class AssetPledgeState:
    """What a pledge proof proves about one asset, as of ``block_number``."""

    asset_key: bytes
    block_number: int
    state: str  # "unregistered", "registered", "cancelled"
    holder: str
    registration_no: int
    ranks: int
    disputed: bool
    pledges: tuple[PledgeRecord, ...]  # the active ones, by rank

    @property
    def pledged(self) -> bool:
        return bool(self.pledges)

    def describe(self, lender_names: dict[str, str] | None = None) -> str:
        if self.state == "unregistered":
            return "asset not registered"
        parts = [p.describe(lender_names) for p in self.pledges] or ["not pledged"]
        if self.disputed:
            parts.append("under dispute")
        if self.state == "cancelled":
            parts.append("registration cancelled")
        return "; ".join(parts)


def _decode(key: bytes, number: int, words: list[int]) -> AssetPledgeState:
    a = words[0]
    ranks = (a >> 192) & 0xFF
    active = (a >> 200) & 0xFF
    pledges = []
    for rank in range(1, (len(words) - 1) // 2 + 1):
        w, ref = words[2 * rank - 1], words[2 * rank]
        state = PLEDGE_STATES.get((w >> 224) & 0xFF, "unknown")
        if state == "active":
            pledges.append(
                PledgeRecord(
                    rank,
                    "0x" + (w & ((1 << 160) - 1)).to_bytes(20, "big").hex(),
                    (w >> 160) & 0xFFFFFFFFFFFFFFFF,
                    state,
                    loan_ref_text(ref.to_bytes(32, "big")),
                )
            )
    if len(pledges) != active:
        raise InvalidPledgeProof(
            f"the asset has {active} active pledge(s) but the proof shows {len(pledges)}: prove all {ranks} rank(s)"
        )
    return AssetPledgeState(
        asset_key=key,
        block_number=number,
        state=ASSET_STATES.get((a >> 216) & 0xFF, "unknown"),
        holder="0x" + (a & ((1 << 160) - 1)).to_bytes(20, "big").hex(),
        registration_no=(a >> 160) & 0xFFFFFFFF,
        ranks=ranks,
        disputed=bool((a >> 208) & 0xFF),
        pledges=tuple(pledges),
    )


def _hex(value: Any, what: str) -> bytes:
    return hex_member(value, f"pledgeProof.{what}", InvalidPledgeProof)


def _nodes(value: Any, what: str) -> list[Any]:
    return trie_nodes(value, f"pledgeProof.{what}", InvalidPledgeProof)


def _state_root(proof: dict[str, Any], trust: TrustSource) -> tuple[bytes, int]:
    """The header's stateRoot and number, if the header is sealed by the pinned validators or
    signed by a trusted operator (the same rule as ``verify_anchor_proof``)."""
    import rlp

    header = _hex(proof.get("blockHeader"), "blockHeader")
    validators: ValidatorSet | None = getattr(trust, "validator_set", None)
    if validators is not None:
        try:
            sealed = verify_sealed_header(header, validators)
        except InvalidSealedHeader as exc:
            raise InvalidPledgeProof(
                f"the block header is not sealed by the pinned validators: {exc}"
            ) from None
        return sealed.state_root, sealed.number
    try:
        fields = rlp.decode(header)
        state_root, number = fields[3], int.from_bytes(fields[8], "big")
    except (rlp.exceptions.DecodingError, IndexError, TypeError):
        raise InvalidPledgeProof("pledgeProof.blockHeader is not an RLP block header") from None
    signature = proof.get("headerSignature")
    if not isinstance(signature, dict):
        raise InvalidPledgeProof("pledgeProof.headerSignature is missing")
    signer = recover_address(
        header_message(trust.chain_id, keccak(header)), _hex(signature.get("value"), "headerSignature.value")
    )
    if signer is None or signer != str(signature.get("signer", "")).lower():
        raise InvalidPledgeProof("the block header's signature does not verify")
    if not trust.trusts_header_signer(signer):
        raise InvalidPledgeProof(f"the block header was signed by {signer}, who is not a trusted operator")
    return state_root, number


def verify_pledge_proof(
    proof: dict[str, Any], *, key: bytes, pledge_registry: str, trust: TrustSource
) -> AssetPledgeState:
    """The asset's pledge state proven by ``proof``; :class:`InvalidPledgeProof` if it proves nothing."""
    if not isinstance(proof, dict):
        raise InvalidPledgeProof("pledgeProof must be an object")
    state_root, number = _state_root(proof, trust)
    return prove_pledge_storage(
        proof, key=key, pledge_registry=pledge_registry, state_root=state_root, number=number
    )


def prove_pledge_storage(
    proof: dict[str, Any], *, key: bytes, pledge_registry: str, state_root: bytes, number: int
) -> AssetPledgeState:
    """Steps 2–4 of §17.3: the account and storage proofs walked from an already trusted ``state_root``."""
    import rlp
    from trie import HexaryTrie  # type: ignore[attr-defined]
    from trie.exceptions import BadTrieProof

    registry = bytes.fromhex(pledge_registry[2:])
    try:
        account = HexaryTrie.get_from_proof(  # type: ignore[no-untyped-call]
            state_root, keccak(registry), _nodes(proof.get("accountProof"), "accountProof")
        )
    except (BadTrieProof, ValueError, TypeError, KeyError) as exc:
        raise InvalidPledgeProof(
            f"the account proof does not match the header's state root ({exc})"
        ) from None
    if not account:
        raise InvalidPledgeProof("the pledge registry has no account in that block")
    storage_root = rlp.decode(account)[2]
    storage = proof.get("storageProofs")
    if (
        not isinstance(storage, list)
        or not storage
        or len(storage) % 2 != 1
        or len(storage) > 1 + 2 * MAX_RANKS
    ):
        raise InvalidPledgeProof("pledgeProof.storageProofs must hold the asset slot and two slots per rank")
    keys = pledge_storage_keys(key, (len(storage) - 1) // 2)
    words = []
    for i, (slot, nodes) in enumerate(zip(keys, storage)):
        try:
            raw = HexaryTrie.get_from_proof(  # type: ignore[no-untyped-call]
                storage_root, keccak(slot), _nodes(nodes, f"storageProofs[{i}]")
            )
        except (BadTrieProof, ValueError, TypeError, KeyError) as exc:
            raise InvalidPledgeProof(
                f"storage proof {i} does not match the registry's storage root ({exc})"
            ) from None
        words.append(int.from_bytes(rlp.decode(raw), "big") if raw else 0)
    state = _decode(key, number, words)
    if state.state != "unregistered" and len(storage) != 1 + 2 * state.ranks:
        raise InvalidPledgeProof(f"the asset allows {state.ranks} rank(s); the proof must carry all of them")
    return state


def fetch_pledge_proof(
    w3: Any,
    pledge_registry: str,
    key: bytes,
    operator_key: bytes | None,
    block: int | str = "latest",
    *,
    validator_keys: Any = None,
) -> dict[str, Any]:
    """Build a ``pledgeProof`` for the asset ``key`` (``eth_getBlockByNumber`` + ``eth_getProof``),
    the header signed by ``operator_key`` or sealed by ``validator_keys`` (development chain).
    Reads the asset's ``ranks`` first so every rank is proven."""
    raw_block = w3.provider.make_request(
        "eth_getBlockByNumber", [hex(block) if isinstance(block, int) else block, False]
    )["result"]
    header = header_rlp_from_block(raw_block)
    sealed = seal_qbft_header(raw_block, validator_keys) if validator_keys else None
    address = w3.to_checksum_address(pledge_registry)
    first = w3.provider.make_request(
        "eth_getProof", [address, ["0x" + pledge_storage_keys(key, 0)[0].hex()], raw_block["number"]]
    )["result"]
    ranks = (int(first["storageProof"][0]["value"], 16) >> 192) & 0xFF
    slots = ["0x" + k.hex() for k in pledge_storage_keys(key, max(ranks, 1) if ranks else 0)]
    result = w3.provider.make_request("eth_getProof", [address, slots, raw_block["number"]])["result"]
    out: dict[str, Any] = {
        "blockHeader": "0x" + (sealed or header).hex(),
        "accountProof": list(result["accountProof"]),
        "storageProofs": [list(sp["proof"]) for sp in result["storageProof"]],
    }
    if operator_key is not None:
        out["headerSignature"] = sign_header(int(w3.eth.chain_id), keccak(header), operator_key)
    return out


def online_pledge_state(w3: Any, pledge_registry: str, key: bytes, block: int) -> AssetPledgeState:
    """Online (``--rpc``): the asset's state at ``block`` proven with the node's own ``eth_getProof``
    against the node's ``stateRoot`` of that block (the node is trusted, as online verification trusts it)."""
    try:
        proof = fetch_pledge_proof(w3, pledge_registry, key, None, block)
        state_root = bytes(w3.eth.get_block(block)["stateRoot"])
    except Exception as exc:  # noqa: BLE001 - connection errors come in many types
        raise InvalidPledgeProof(f"the node did not answer the pledge proof: {exc}") from None
    return prove_pledge_storage(
        proof, key=key, pledge_registry=pledge_registry.lower(), state_root=state_root, number=block
    )


def state_check(state: AssetPledgeState, lender_names: dict[str, str] | None = None) -> Check:
    """The ``pledge`` check of a proven asset state (§17.3)."""
    text = state.describe(lender_names) + f" (as of block {state.block_number})"
    if state.state == "unregistered":
        return Check(
            "pledge",
            "failed",
            f"the asset is not registered in the pledge registry (as of block {state.block_number})",
        )
    if state.disputed or state.state == "cancelled":
        return Check("pledge", "failed", text)
    return Check("pledge", "passed", f"registration no. {state.registration_no}: {text}")


def credential_asset_key(credential: Any) -> bytes | None:
    """The asset key of a data-asset certificate (its ``issuer.id`` and ``credentialSubject.assetId``),
    or None when the credential carries no asset."""
    if not isinstance(credential, dict):
        return None
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    subject = credential.get("credentialSubject")
    asset_id = subject.get("assetId") if isinstance(subject, dict) else None
    if not isinstance(issuer_id, str) or not isinstance(asset_id, str) or not asset_id:
        return None
    return asset_key(issuer_id, asset_id)


def pledge_check(
    credential: Any,
    pledge_proof: dict[str, Any] | None,
    *,
    pledge_registry: str | None,
    trust: TrustSource,
    lender_names: dict[str, str] | None = None,
) -> Check:
    """The ``pledge`` check (docs/FORMAT.md §17): ``passed`` with "not pledged" or "pledged to …
    since …, loan ref …" when the proof proves the asset's state; ``failed`` when the proof proves
    nothing or the asset is disputed or its registration cancelled; ``skipped`` when there is
    nothing to check."""
    key = credential_asset_key(credential)
    if key is None:
        return Check(
            "pledge",
            "skipped",
            "the credential names no data asset (issuer.id and credentialSubject.assetId)",
        )
    if pledge_registry is None:
        return Check("pledge", "skipped", "no pledge registry is known for this chain")
    if pledge_proof is None:
        return Check("pledge", "skipped", "no pledge proof was given")
    try:
        state = verify_pledge_proof(
            pledge_proof, key=key, pledge_registry=pledge_registry.lower(), trust=trust
        )
    except InvalidPledgeProof as exc:
        return Check("pledge", "failed", f"the pledge proof does not prove the asset's state: {exc}")
    check = state_check(state, lender_names)
    history = pledge_proof.get("history") if isinstance(pledge_proof, dict) else None
    if isinstance(history, list) and history:
        line = history_line(history, lender_names or {})
        if line:
            check = Check(
                check.name, check.status, f"{check.reason}; history (the registry's word, not proven): {line}"
            )
    return check


_HISTORY_WORDS = {
    "AssetRegistered": "registered",
    "AssetTransferred": "transferred",
    "AssetChanged": "changed",
    "AssetCancelled": "cancelled",
    "DisputeOpened": "disputed",
    "DisputeResolved": "dispute resolved",
    "Pledged": "pledged",
    "PledgeReleased": "released",
    "PledgeCancelled": "pledge cancelled",
}


def history_line(history: list[Any], lender_names: dict[str, str]) -> str:
    """An asset's history (:func:`decode_history`'s entries) in one line, oldest first:
    ``registered (block 12) → pledged to 示例银行 (block 14) → released (block 16)``."""
    steps = []
    for e in history[-20:]:
        if not isinstance(e, dict) or e.get("event") not in _HISTORY_WORDS:
            continue
        word = _HISTORY_WORDS[e["event"]]
        raw_args = e.get("args")
        args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
        lender = args.get("lender")
        if e["event"] == "Pledged" and isinstance(lender, str):
            word += f" to {lender_names.get(lender.lower(), lender)}"
        steps.append(f"{word} (block {e.get('blockNumber')})")
    return " → ".join(steps)


#: The PledgeRegistry events of an asset's history (all index ``assetKey`` as their first topic).
HISTORY_EVENTS = (
    "AssetRegistered",
    "AssetTransferred",
    "AssetChanged",
    "AssetCancelled",
    "DisputeOpened",
    "DisputeResolved",
    "Pledged",
    "PledgeReleased",
    "PledgeCancelled",
)


def decode_history(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An asset's registration and pledge history from raw ``eth_getLogs`` entries of PledgeRegistry,
    oldest first: ``{blockNumber, event, args}`` (addresses lower-case, bytes 0x-hex). Events of
    another contract version, or not of this ABI, are left out."""
    from eth_abi.abi import decode as abi_decode

    abi = contract_data("PledgeRegistry")["abi"]
    by_topic = {}
    for e in abi:
        if e.get("type") == "event" and e["name"] in HISTORY_EVENTS:
            sig = f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"
            by_topic[keccak(sig.encode())] = e
    out = []
    for log in logs:
        topics = [bytes.fromhex(str(t)[2:]) for t in log.get("topics", [])]
        event = by_topic.get(topics[0]) if topics else None
        if event is None:
            continue
        indexed = [i for i in event["inputs"] if i["indexed"]]
        plain = [i for i in event["inputs"] if not i["indexed"]]
        args: dict[str, Any] = {}
        for i, t in zip(indexed, topics[1:]):
            args[i["name"]] = abi_decode([i["type"]], t)[0]
        for i, v in zip(plain, abi_decode([i["type"] for i in plain], bytes.fromhex(str(log["data"])[2:]))):
            args[i["name"]] = v
        shown = {
            k: ("0x" + v.hex() if isinstance(v, bytes) else v.lower() if isinstance(v, str) else v)
            for k, v in args.items()
            if k != "assetKey"
        }
        if "loanRef" in args:
            shown["loanRef"] = loan_ref_text(args["loanRef"])
        out.append(
            {
                "blockNumber": int(str(log["blockNumber"]), 16)
                if str(log["blockNumber"]).startswith("0x")
                else int(log["blockNumber"]),
                "event": event["name"],
                "args": shown,
            }
        )
    return out
