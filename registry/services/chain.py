"""The service's async view of the chain: AsyncWeb3 over JSON-RPC, transactions signed locally.

Only standard JSON-RPC; reverts are decoded with the contracts' ABIs (ledger_node.chain).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3._utils.rpc_abi import RPC
from web3.exceptions import ContractCustomError, ContractLogicError, TransactionNotFound, Web3RPCError

from ledger_node.artifacts import load_artifact
from ledger_node.chain import RevertError, _revert_from_exception
from ledger_node.deploy import Deployment
from registry.core.errors import ChainRejected, ChainUnavailable

ANCHOR_GAS = 120_000


@dataclass
class SentTx:
    raw: bytes
    tx_hash: str
    nonce: int
    sender: str


class ServiceChain:
    def __init__(self, rpc_url: str, deployment: Deployment, timeout: float = 10.0):
        self.rpc_url = rpc_url
        self.deployment = deployment
        # web3's validation middleware asks the node for its chain id before every eth_call,
        # eth_estimateGas and transaction (a third of an anchor's round trips); a node's chain id
        # does not change, so that one answer is cached (nothing else is).
        self.w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": timeout},
                                              cache_allowed_requests=True, cacheable_requests={RPC.eth_chainId}))
        self.issuers = self._contract("IssuerRegistry", deployment.issuer_registry)
        self.anchors = self._contract("AnchorRegistry", deployment.anchor_registry)
        self.flows = self._contract("DataFlowLedger", deployment.data_flow_ledger)
        self._nonce_locks: dict[str, asyncio.Lock] = {}

    def _contract(self, name: str, address: str):
        return self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(address), abi=load_artifact(name).abi)

    async def close(self) -> None:
        """Close the provider's cached aiohttp sessions (web3 keeps them open)."""
        manager = getattr(self.w3.provider, "_request_session_manager", None)
        cache = getattr(getattr(manager, "session_cache", None), "_data", {}) or {}
        for session in list(cache.values()):
            close = getattr(session, "close", None)
            if close is not None:
                await close()
        cache.clear()

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    async def is_up(self) -> bool:
        try:
            await asyncio.wait_for(self.w3.eth.block_number, 3)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable now"
            return False

    async def block_number(self) -> int:
        return int(await self._rpc(self.w3.eth.block_number))

    async def _rpc(self, awaitable):
        try:
            return await awaitable
        except (ContractCustomError, ContractLogicError) as exc:
            raise _as_rejected(exc) from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise ChainUnavailable(f"chain node at {self.rpc_url} unreachable: {type(exc).__name__}") from None
        except Exception as exc:
            if type(exc).__module__.startswith(("aiohttp", "web3")) and not isinstance(exc, Web3RPCError):
                raise ChainUnavailable(f"chain node at {self.rpc_url} unreachable: {exc}") from None
            raise

    async def call(self, fn, block="latest") -> Any:
        return await self._rpc(fn.call(block_identifier=block))

    async def call_from(self, fn, key: str) -> Any:
        """eth_call of `fn` as the account of `key` (a dry run of a transaction)."""
        return await self._rpc(fn.call({"from": Account.from_key(key).address}))

    async def anchor_of(self, root: str) -> dict | None:
        rec = await self.call(self.anchors.functions.anchorOf(bytes.fromhex(root[2:])))
        if rec[6] == 0:
            return None
        keys = ("issuerId", "keyVersion", "credentialType", "count", "blockNumber", "timestamp", "status", "reason")
        return dict(zip(keys, rec))

    async def block_timestamp(self, number: int) -> int:
        """Unix time of block ``number``."""
        return int((await self._rpc(self.w3.eth.get_block(number)))["timestamp"])

    async def logs(self, event, from_block: int, **filters) -> list:
        """An event's logs from ``from_block`` on whose indexed arguments match ``filters``."""
        return list(await self._rpc(event().get_logs(from_block=from_block, argument_filters=filters or None)))

    async def batch_status_time(self, root: bytes, from_block: int) -> int:
        """Unix time of the block of the batch's latest ``BatchStatusChanged`` event (0: none)."""
        logs = await self.logs(self.anchors.events.BatchStatusChanged, from_block, root=root)
        return await self.block_timestamp(logs[-1]["blockNumber"]) if logs else 0

    # -- transactions -----------------------------------------------------------------------
    async def sign(self, key: str, fn, *, gas: int | None = None, nonce: int | None = None) -> SentTx:
        """Build and sign a transaction calling `fn` (not sent)."""
        acct = Account.from_key(key)
        if nonce is None:
            nonce = int(await self._rpc(self.w3.eth.get_transaction_count(acct.address, "pending")))
        tx: dict[str, Any] = {
            "to": fn.address,
            "data": fn._encode_transaction_data(),
            "nonce": nonce,
            "chainId": self.chain_id,
            "value": 0,
        }
        if gas is None:
            try:
                gas = int(await self.w3.eth.estimate_gas({"from": acct.address, "to": tx["to"], "data": tx["data"]}))
            except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
                raise _as_rejected(exc) from None
            except (OSError, asyncio.TimeoutError) as exc:
                raise ChainUnavailable(f"chain node at {self.rpc_url} unreachable: {type(exc).__name__}") from None
            gas = gas * 12 // 10 + 10_000
        tx["gas"] = gas
        block = await self._rpc(self.w3.eth.get_block("latest"))
        base = block.get("baseFeePerGas")
        if base is not None:
            tip = 1_000_000_000 if base > 0 else 0
            tx["maxPriorityFeePerGas"] = tip
            tx["maxFeePerGas"] = 2 * int(base) + tip
        else:
            tx["gasPrice"] = int(await self._rpc(self.w3.eth.gas_price))
        signed = acct.sign_transaction(tx)
        return SentTx(bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex(), nonce, acct.address)

    async def send_raw(self, raw: bytes) -> None:
        try:
            await self._rpc(self.w3.eth.send_raw_transaction(raw))
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text or "known transaction" in text:
                return
            raise

    async def mined_nonce(self, address: str) -> int:
        """How many transactions of ``address`` are in mined blocks (its next unmined nonce)."""
        return int(await self._rpc(self.w3.eth.get_transaction_count(address, "latest")))

    async def outcome(self, tx_hash: str, raw: bytes, nonce: int, sender: str) -> dict | None:
        """What became of a signed transaction whose receipt its sender never saw: its receipt once
        mined (check ``status``); None while it can still be mined (re-broadcast here, since the node
        may have lost its mempool); ``{"status": "dropped"}`` once another transaction took its nonce."""
        receipt = await self.receipt(tx_hash)
        if receipt is not None:
            return receipt
        if await self.mined_nonce(sender) <= nonce:
            try:
                await self.send_raw(raw)
            except ChainUnavailable:
                raise
            except Exception:  # noqa: BLE001 - underpriced / replaced: a later look decides
                pass
            return None
        return await self.receipt(tx_hash) or {"status": "dropped"}  # (mined between the two calls?)

    async def receipt(self, tx_hash: str) -> dict | None:
        try:
            return dict(await self._rpc(self.w3.eth.get_transaction_receipt(tx_hash)))
        except TransactionNotFound:
            return None

    async def transact(self, key: str, fn, *, timeout: float = 60.0,
                       before_send: Callable[[SentTx], Awaitable[None]] | None = None) -> dict:
        """Sign, send and wait for a transaction; raise ChainRejected with the decoded custom error.

        ``before_send`` receives the signed transaction before it leaves (an outbox: the caller
        records it, so a transaction whose receipt never came back can be settled later). A
        transaction not mined within ``timeout`` raises ChainUnavailable naming it (``details.txHash``)."""
        acct = Account.from_key(key)
        lock = self._nonce_locks.setdefault(acct.address, asyncio.Lock())
        async with lock:
            tx = await self.sign(key, fn)
            if before_send is not None:
                await before_send(tx)
            await self.send_raw(tx.raw)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rec = await self.receipt(tx.tx_hash)
            if rec is not None:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise ChainUnavailable(f"transaction {tx.tx_hash} not mined within {timeout:g} s",
                                       details={"txHash": tx.tx_hash})
            await asyncio.sleep(0.05)
        if rec["status"] != 1:
            raise ChainRejected(f"transaction {tx.tx_hash} failed on-chain")
        return rec


def _as_rejected(exc: Exception) -> ChainRejected:
    rev = _revert_from_exception(exc) or RevertError("Reverted", {"message": str(exc)})
    args = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in rev.args_dict.items()}
    return ChainRejected(f"the chain refused it: {rev}", details={"error": rev.name, "args": args})
