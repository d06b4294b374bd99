"""The online trust source: the contracts over JSON-RPC, "as of" one pinned block (web3, lazily)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from verifier._anchor_proof import CONTRACTS_DATA, contract_data
from verifier._internal.keccak import keccak256
from verifier._trust import AnchorRecord, IssuerKeyRecord, IssuerRecord, StatusRecord
from verifier.errors import TrustSourceError

__all__ = ["RpcTrust"]

_SUITES = {0: "secp256k1", 1: "sm2-sm3"}
_ISSUER_STATUS = {1: "active", 2: "suspended"}
_TYPES_TO_ASK = (1, 2, 3)
#: topic 0 of IAnchorRegistry.BatchAnchored (its root is topic 1)
_BATCH_ANCHORED = keccak256(b"BatchAnchored(bytes32,uint32,uint16,uint16,uint32)")


def _abi(name: str) -> list[dict[str, Any]]:
    try:
        return contract_data(name)["abi"]  # type: ignore[no-any-return]
    except (OSError, KeyError, ValueError) as exc:
        raise TrustSourceError(f"cannot read the {name} ABI from {CONTRACTS_DATA}: {exc}") from None


def _manifest(deployment: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(deployment, Mapping):
        data = dict(deployment)
    else:
        try:
            data = json.loads(Path(deployment).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise TrustSourceError(f"cannot read the deployment manifest {deployment}: {exc}") from None
    try:
        contracts = data["contracts"]
        return {
            "chainId": int(data["chainId"]),
            **{k: str(contracts[k]).lower() for k in ("issuerRegistry", "anchorRegistry", "dataFlowLedger")},
            **(
                {"pledgeRegistry": str(contracts["pledgeRegistry"]).lower()}
                if contracts.get("pledgeRegistry")
                else {}
            ),
        }
    except (KeyError, TypeError, ValueError):
        raise TrustSourceError(
            "the deployment manifest needs chainId and contracts.{issuerRegistry, anchorRegistry, "
            "dataFlowLedger}"
        ) from None


class RpcTrust:
    """Answers from the contracts themselves, all as of the block pinned at construction.

    ``deployment`` is the manifest ``{chainId, contracts: {issuerRegistry, anchorRegistry,
    dataFlowLedger}, deployBlock, ...}`` as a dict or a JSON file path.
    """

    def __init__(
        self,
        rpc_url: str,
        deployment: Mapping[str, Any] | str | Path,
        *,
        block: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        try:
            from web3 import HTTPProvider, Web3
            from web3.exceptions import ContractLogicError
        except ImportError:  # pragma: no cover - web3 is in the service extra
            raise TrustSourceError(
                "online verification needs web3 (pip install 'certledger[service]')"
            ) from None
        self._logic_error = ContractLogicError
        m = _manifest(deployment)
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        try:
            chain_id = int(self.w3.eth.chain_id)
            pinned = self.w3.eth.get_block(block if block is not None else "latest")
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise TrustSourceError(f"cannot reach the chain node at {rpc_url}: {exc}") from None
        if chain_id != m["chainId"]:
            raise TrustSourceError(
                f"the node at {rpc_url} serves chain {chain_id}, the deployment is for chain {m['chainId']}"
            )
        self.chain_id = chain_id
        self.anchor_registry = m["anchorRegistry"]
        self.pledge_registry: str | None = m.get("pledgeRegistry")  # FORMAT.md §17 (None: not deployed)
        self.block_number = int(pinned["number"])
        self.block_timestamp = int(pinned["timestamp"])
        to = self.w3.to_checksum_address
        self._issuers = self.w3.eth.contract(address=to(m["issuerRegistry"]), abi=_abi("IssuerRegistry"))
        self._anchors = self.w3.eth.contract(address=to(m["anchorRegistry"]), abi=_abi("AnchorRegistry"))
        self._issuer_cache: dict[int, IssuerRecord | None] = {}
        self._status_by_root = any(
            e.get("name") == "credentialStatusOf" and len(e.get("inputs", [])) == 2
            for e in _abi("AnchorRegistry")
        )

    def _call(self, fn: Any) -> Any:
        try:
            return fn.call(block_identifier=self.block_number)
        except self._logic_error:
            raise
        except Exception as exc:  # noqa: BLE001
            raise TrustSourceError(f"the chain node did not answer: {exc}") from None

    def issuer(self, issuer_id: int) -> IssuerRecord | None:
        if issuer_id in self._issuer_cache:
            return self._issuer_cache[issuer_id]
        f = self._issuers.functions
        try:
            (key_version, suite, status, _reason, active_from, active_until, _account, name, uscc) = (
                self._call(f.issuer(issuer_id))
            )
        except self._logic_error:
            self._issuer_cache[issuer_id] = None
            return None
        keys = {}
        for version in range(1, key_version + 1):
            account, valid_from, valid_until, sm2 = self._call(f.issuerKey(issuer_id, version))
            keys[version] = IssuerKeyRecord(version, account.lower(), valid_from, valid_until, bytes(sm2))
        types = frozenset(t for t in _TYPES_TO_ASK if self._call(f.isAllowed(issuer_id, t)))
        record = IssuerRecord(
            issuer_id,
            name,
            uscc,
            _SUITES.get(suite, "unknown"),
            _ISSUER_STATUS.get(status, "unknown"),
            active_from,
            active_until,
            types,
            keys,
        )
        self._issuer_cache[issuer_id] = record
        return record

    def anchor(self, root: bytes) -> AnchorRecord | None:
        (issuer_id, key_version, credential_type, count, block_number, timestamp, status, reason) = (
            self._call(self._anchors.functions.anchorOf(root))
        )
        if status == 0:
            return None
        changed = self._batch_status_time(root, block_number) if status != 1 else 0
        return AnchorRecord(
            root,
            issuer_id,
            key_version,
            credential_type,
            count,
            block_number,
            timestamp,
            status,
            reason,
            changed,
        )

    def _batch_status_time(self, root: bytes, from_block: int) -> int:
        """When the batch's status last changed (its last ``BatchStatusChanged`` event), or 0."""
        try:
            logs = self._anchors.events.BatchStatusChanged().get_logs(
                argument_filters={"root": root}, from_block=from_block, to_block=self.block_number
            )
            if not logs:
                return 0
            return int(self.w3.eth.get_block(logs[-1]["blockNumber"])["timestamp"])
        except Exception:  # noqa: BLE001 - the time is a courtesy for the reason text
            return 0

    def credential_status(self, root: bytes, leaf: bytes, status_list_index: int) -> StatusRecord:
        f = self._anchors.functions
        status, reason = self._call(f.statusOf(root, leaf))
        if status == 1:
            return StatusRecord(1)
        anchor = self.anchor(root)
        issuer = self.issuer(anchor.issuer_id) if anchor else None
        by = issuer.name if issuer else ""
        if anchor is not None and anchor.status != 1:
            return StatusRecord(status, reason, anchor.status_timestamp, by, "batch")
        # A per-credential override. AnchorRegistry 1.0.0 keys it by leaf and stores the root in it;
        # later versions key it by (root, leaf): ask in whichever form the ABI has.
        if self._status_by_root:
            override = self._call(f.credentialStatusOf(root, leaf))
        else:
            override = self._call(f.credentialStatusOf(leaf))
        return StatusRecord(status, reason, int(override[2]), by, "credential")

    def anchor_transaction(self, root: bytes, tx_hash: str, block_number: int) -> str | None:
        """Check a proof's ``anchor.txHash`` (FORMAT.md §5): ``None`` when the transaction, mined
        in ``block_number`` at or before the pinned block, succeeded and its receipt holds this
        registry's ``BatchAnchored`` event for ``root``; otherwise why not, in words."""
        from web3.exceptions import TransactionNotFound

        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return f"the proof names transaction {tx_hash}, which is not on chain {self.chain_id}"
        except Exception as exc:  # noqa: BLE001
            raise TrustSourceError(f"the chain node did not answer: {exc}") from None
        mined = int(receipt["blockNumber"])
        if mined > self.block_number:
            return f"the proof names transaction {tx_hash}, mined after block {self.block_number}"
        anchored = any(
            str(log["address"]).lower() == self.anchor_registry
            and len(log["topics"]) > 1
            and bytes(log["topics"][0]) == _BATCH_ANCHORED
            and bytes(log["topics"][1]) == root
            for log in receipt["logs"]
        )
        if int(receipt["status"]) != 1 or not anchored:
            return f"the proof names transaction {tx_hash}, which did not anchor this batch root"
        if mined != block_number:
            return (
                f"the proof's transaction {tx_hash} was mined in block {mined}, the proof says {block_number}"
            )
        return None

    def trusts_header_signer(self, address: str) -> bool:
        return False

    def describe(self) -> str:
        return f"online: chain {self.chain_id} at block {self.block_number} (answers pinned to that block)"

    def __repr__(self) -> str:
        return f"RpcTrust(chain_id={self.chain_id}, block={self.block_number})"
