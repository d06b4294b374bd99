"""The service's async view of the chain: AsyncWeb3 over JSON-RPC, transactions signed locally.

Only standard JSON-RPC; reverts are decoded with the contracts' ABIs (ledger_node.chain).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3._utils.rpc_abi import RPC
from web3.exceptions import ContractCustomError, ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import Wei

from ledger_node.artifacts import load_artifact
from ledger_node.chain import RevertError, _revert_from_exception, decode_revert
from ledger_node.deploy import Deployment
from registry.core.errors import ChainRejected, ChainUnavailable
from registry.services.node_errors import NodeRefusal, Refusal, classify
from registry.services.remote_signer import RemoteSigner

#: who signs an organisation's transactions: its private key (custodial, 0x hex), or its own signer
TxSigner = str | RemoteSigner

ANCHOR_GAS = 120_000
#: JSON-RPC calls per batch request by default: Besu's default ``--rpc-http-max-batch-size`` (50);
#: ``CERTLEDGER_RPC_BATCH_CALLS`` sets it for a node that takes fewer
BATCH_CALLS = 50
_ANCHOR = function_signature_to_4byte_selector("anchor(bytes32,uint16,uint32)")


@dataclass(frozen=True)
class Transfer:
    """A plain value transfer, where :meth:`ServiceChain.sign` takes a contract call (gas money for a
    new account on a chain that charges for gas)."""

    address: str
    value: int

    def _encode_transaction_data(self) -> str:
        return "0x"


@dataclass
class SentTx:
    raw: bytes
    tx_hash: str
    nonce: int
    sender: str


class ServiceChain:
    def __init__(
        self, rpc_url: str, deployment: Deployment, timeout: float = 10.0, batch_calls: int = BATCH_CALLS
    ):
        if batch_calls < 1:
            raise ValueError(f"a batch request carries at least one call, not {batch_calls}")
        self.rpc_url = rpc_url
        self.batch_calls = batch_calls
        self.deployment = deployment
        # web3's validation middleware asks the node for its chain id before every eth_call,
        # eth_estimateGas and transaction (a third of an anchor's round trips); a node's chain id
        # does not change, so that one answer is cached (nothing else is).
        self.w3 = AsyncWeb3(
            AsyncHTTPProvider(
                rpc_url,
                request_kwargs={"timeout": timeout},
                cache_allowed_requests=True,
                cacheable_requests={RPC.eth_chainId},
            )
        )
        self.issuers = self._contract("IssuerRegistry", deployment.issuer_registry)
        self.anchors = self._contract("AnchorRegistry", deployment.anchor_registry)
        self.flows = self._contract("DataFlowLedger", deployment.data_flow_ledger)
        self.pledges = (
            self._contract("PledgeRegistry", deployment.pledge_registry)
            if deployment.pledge_registry
            else None
        )
        self._nonce_locks: dict[str, asyncio.Lock] = {}
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        anchor_of = next(
            f for f in self.anchors.abi if f.get("type") == "function" and f["name"] == "anchorOf"
        )
        fields = anchor_of["outputs"][0]["components"]
        self._anchor_of = function_signature_to_4byte_selector("anchorOf(bytes32)").hex()
        self._anchor_fields = tuple(f["name"] for f in fields)
        self._anchor_type = "(" + ",".join(f["type"] for f in fields) + ")"

    def _contract(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(
            address=AsyncWeb3.to_checksum_address(address), abi=load_artifact(name).abi
        )

    async def close(self) -> None:
        """Close the provider's cached aiohttp sessions (web3 keeps them open), and our own."""
        if self._session is not None:
            await self._session.close()
            self._session = None
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
            async with asyncio.timeout(3):  # (not wait_for, which can lose a cancellation: pipeline._idle)
                await self.w3.eth.block_number
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable now"
            return False

    async def block_number(self) -> int:
        return int(await self._rpc(self.w3.eth.block_number))

    async def _rpc(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (ContractCustomError, ContractLogicError) as exc:
            raise _as_rejected(exc) from None
        except (TimeoutError, OSError) as exc:
            raise ChainUnavailable(
                f"chain node at {self.rpc_url} unreachable: {type(exc).__name__}"
            ) from None
        except Exception as exc:
            if type(exc).__module__.startswith(("aiohttp", "web3")) and not isinstance(exc, Web3RPCError):
                raise ChainUnavailable(f"chain node at {self.rpc_url} unreachable: {exc}") from None
            raise

    async def call(self, fn: Any, block: int | str = "latest") -> Any:
        return await self._rpc(fn.call(block_identifier=block))

    async def call_from(self, fn: Any, key: str) -> Any:
        """eth_call of `fn` as the account of `key` (a dry run of a transaction)."""
        return await self._rpc(fn.call({"from": Account.from_key(key).address}))

    async def anchor_of(self, root: str) -> dict | None:
        """The chain's record of batch ``root`` (its ``Anchor`` struct's members), None if never anchored."""
        return (await self.anchors_of([root]))[0]

    async def anchors_of(self, roots: list[str]) -> list[dict | None]:
        """:meth:`anchor_of` of every root, asked in one batch request."""
        return (await self.anchors_and_receipts(roots, []))[0]

    async def anchors_and_receipts(
        self, roots: list[str], tx_hashes: list[str]
    ) -> tuple[list[dict | None], list[dict | None]]:
        """:meth:`anchor_of` of every root and :meth:`receipts` of every transaction, asked in one
        batch request (the anchors first)."""
        calls = [
            (
                "eth_call",
                [{"to": self.deployment.anchor_registry, "data": "0x" + self._anchor_of + r[2:]}, "latest"],
            )
            for r in roots
        ] + [("eth_getTransactionReceipt", [h]) for h in tx_hashes]
        answers = await self.batch(calls)
        anchors: list[dict | None] = []
        for result, error in answers[: len(roots)]:
            if error is not None:
                raise _as_rejected_error(error)
            (rec,) = abi_decode([self._anchor_type], bytes.fromhex(result[2:]))
            anchors.append(
                dict(zip(self._anchor_fields, rec)) if rec[self._anchor_fields.index("status")] else None
            )
        return anchors, [self._receipt(*answer) for answer in answers[len(roots) :]]

    # -- JSON-RPC batches -------------------------------------------------------------------
    # The pipeline's calls go out as raw JSON-RPC batch requests: through AsyncWeb3 each call costs
    # 1-5 ms of CPU (a contract call ~4.4 ms, measured against anvil), which at batches of 1,000
    # was a fifth of the service's CPU; a batch request costs a fraction of one such call.
    async def batch(self, calls: list[tuple[str, list]]) -> list[tuple[Any, dict | None]]:
        """Send JSON-RPC calls as batch requests; per call ``(result, None)`` or ``(None, error)``.

        Raises ChainUnavailable if the node cannot be reached or does not answer every call."""
        out: list[tuple[Any, dict | None]] = []
        for start in range(0, len(calls), self.batch_calls):
            part = calls[start : start + self.batch_calls]
            body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(part)]
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            try:
                async with self._session.post(self.rpc_url, json=body) as response:
                    if response.status != 200:
                        raise ChainUnavailable(
                            f"chain node at {self.rpc_url} answered HTTP {response.status}"
                        )
                    answer = await response.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                raise ChainUnavailable(
                    f"chain node at {self.rpc_url} unreachable: {type(exc).__name__}"
                ) from None
            if not isinstance(answer, list):  # a node refusing the whole batch answers one error object
                error = answer.get("error") if isinstance(answer, dict) else answer
                raise ChainUnavailable(
                    f"chain node at {self.rpc_url} refused a batch request of {len(part)} calls: {error} (a node "
                    "that limits batch requests, as Besu's --rpc-http-max-batch-size does, needs "
                    "CERTLEDGER_RPC_BATCH_CALLS at or below its limit)"
                )
            by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
            for i in range(len(part)):
                a = by_id.get(i)
                if a is None:
                    raise ChainUnavailable(f"chain node at {self.rpc_url} left call {part[i][0]} unanswered")
                out.append((a.get("result"), a.get("error")))
        return out

    @staticmethod
    def anchor_data(root: str, credential_type: int, count: int) -> bytes:
        """Transaction data of ``AnchorRegistry.anchor(root, credentialType, count)``."""
        return _ANCHOR + abi_encode(
            ["bytes32", "uint16", "uint32"], [bytes.fromhex(root[2:]), credential_type, count]
        )

    async def next_nonce_and_fee(self, address: str) -> tuple[int, dict[str, int]]:
        """The account's next pending nonce and the fee fields of a transaction now, in one batch request."""
        return self._nonce_and_fee(await self.batch(_nonce_and_fee_calls(address)))

    def _nonce_and_fee(self, answers: list[tuple[Any, dict | None]]) -> tuple[int, dict[str, int]]:
        """(nonce, fee fields) from the answers to :func:`_nonce_and_fee_calls`."""
        (count, e1), (block, e2), (price, e3) = answers
        if e1 or e2 or e3 or block is None:
            raise ChainUnavailable(
                f"chain node at {self.rpc_url} did not give nonce and fee: {e1 or e2 or e3}"
            )
        base = block.get("baseFeePerGas")
        return int(count, 16), _fee(None if base is None else int(base, 16), int(price, 16))

    async def anchor_txs(
        self, key: TxSigner, datas: list[bytes], *, gas: int
    ) -> list[SentTx | ChainRejected]:
        """A transaction to the AnchorRegistry for each ``data``, dry-run (eth_call) from the account
        of ``key`` and signed (not sent) if the chain would take it: per data the SentTx, or the
        refusal its dry run met (ChainRejected, the custom error decoded). The signed ones take
        consecutive nonces from the account's next pending one. The dry runs, nonce and fee are
        asked in one batch request. An issuer's own signer is asked for each (``eth_signTransaction``)."""
        sender = address_of(key)
        calls = [
            (
                "eth_call",
                [{"from": sender, "to": self.deployment.anchor_registry, "data": "0x" + d.hex()}, "latest"],
            )
            for d in datas
        ]
        answers = await self.batch(calls + _nonce_and_fee_calls(sender))
        nonce, fee = self._nonce_and_fee(answers[len(datas) :])
        out: list[SentTx | ChainRejected] = []
        for data, (_, error) in zip(datas, answers):
            if error is not None:
                out.append(_as_rejected_error(error))
                continue
            tx = {
                "to": self.anchors.address,
                "data": data,
                "nonce": nonce,
                "chainId": self.chain_id,
                "value": 0,
                "gas": gas,
                **fee,
            }
            raw, tx_hash = await sign_tx(key, tx)
            out.append(SentTx(raw, tx_hash, nonce, sender))
            nonce += 1
        return out

    async def send_raws(self, raws: list[bytes]) -> list[NodeRefusal | None]:
        """Broadcast signed transactions in one batch request: per transaction None (the node has
        it, now or before) or the node's refusal, classified (registry/services/node_errors.py)."""
        answers = await self.batch([("eth_sendRawTransaction", ["0x" + r.hex()]) for r in raws])
        refusals = [None if error is None else classify(error) for _, error in answers]
        return [None if r is None or r.kind is Refusal.ALREADY_KNOWN else r for r in refusals]

    async def receipts(self, tx_hashes: list[str]) -> list[dict | None]:
        """Receipts of transactions in one batch request: per hash None (not mined) or
        ``{"status", "blockNumber", "transactionHash"}``."""
        return [
            self._receipt(*answer)
            for answer in await self.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        ]

    def _receipt(self, result: Any, error: dict | None) -> dict | None:
        """A receipt as :meth:`receipts` gives it, from the node's answer to eth_getTransactionReceipt."""
        if error is not None:
            raise ChainUnavailable(f"chain node at {self.rpc_url} refused a receipt request: {error}")
        if result is None:
            return None
        return {
            "status": int(result["status"], 16),
            "blockNumber": int(result["blockNumber"], 16),
            "transactionHash": result["transactionHash"],
        }

    async def block_timestamp(self, number: int) -> int:
        """Unix time of block ``number``."""
        return int((await self._rpc(self.w3.eth.get_block(number)))["timestamp"])

    async def logs(self, event: Any, from_block: int, **filters: Any) -> list:
        """An event's logs from ``from_block`` on whose indexed arguments match ``filters``."""
        return list(
            await self._rpc(event().get_logs(from_block=from_block, argument_filters=filters or None))
        )

    async def batch_status_time(self, root: bytes, from_block: int) -> int:
        """Unix time of the block of the batch's latest ``BatchStatusChanged`` event (0: none)."""
        logs = await self.logs(self.anchors.events.BatchStatusChanged, from_block, root=root)
        return await self.block_timestamp(logs[-1]["blockNumber"]) if logs else 0

    # -- transactions -----------------------------------------------------------------------
    async def sign(
        self, key: TxSigner, fn: Any, *, gas: int | None = None, nonce: int | None = None, value: int = 0
    ) -> SentTx:
        """Build and sign a transaction calling `fn` (a contract call, or a :class:`Transfer`), not sent."""
        sender = address_of(key)
        if nonce is None:
            nonce = int(
                await self._rpc(self.w3.eth.get_transaction_count(cast(ChecksumAddress, sender), "pending"))
            )
        tx: dict[str, Any] = {
            "to": fn.address,
            "data": fn._encode_transaction_data(),
            "nonce": nonce,
            "chainId": self.chain_id,
            "value": value,
        }
        if gas is None:
            try:
                gas = int(
                    await self.w3.eth.estimate_gas(
                        {"from": sender, "to": tx["to"], "data": tx["data"], "value": Wei(value)}
                    )
                )
            except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
                raise _as_rejected(exc) from None
            except (TimeoutError, OSError) as exc:
                raise ChainUnavailable(
                    f"chain node at {self.rpc_url} unreachable: {type(exc).__name__}"
                ) from None
            gas = gas * 12 // 10 + 10_000
        tx["gas"] = gas
        block = await self._rpc(self.w3.eth.get_block("latest"))
        base = block.get("baseFeePerGas")
        tx.update(_fee(base, None if base is not None else int(await self._rpc(self.w3.eth.gas_price))))
        raw, tx_hash = await sign_tx(key, tx)
        return SentTx(raw, tx_hash, nonce, sender)

    async def send_raw(self, raw: bytes) -> None:
        try:
            await self._rpc(self.w3.eth.send_raw_transaction(raw))
        except Web3RPCError as exc:
            if classify(exc).kind is Refusal.ALREADY_KNOWN:
                return
            raise

    async def mined_nonce(self, address: str) -> int:
        """How many transactions of ``address`` are in mined blocks (its next unmined nonce)."""
        return int(
            await self._rpc(self.w3.eth.get_transaction_count(cast(ChecksumAddress, address), "latest"))
        )

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
            return dict(await self._rpc(self.w3.eth.get_transaction_receipt(HexStr(tx_hash))))
        except TransactionNotFound:
            return None

    async def send(
        self, key: TxSigner, fn: Any, *, before_send: Callable[[SentTx], Awaitable[None]] | None = None
    ) -> SentTx:
        """Sign and broadcast a transaction calling ``fn`` (a contract call or a :class:`Transfer`),
        not waiting for it; ``before_send`` receives it signed, before it leaves (an outbox). One
        account's transactions are signed and sent one at a time (consecutive nonces)."""
        lock = self._nonce_locks.setdefault(address_of(key), asyncio.Lock())
        async with lock:
            tx = await self.sign(key, fn, value=fn.value if isinstance(fn, Transfer) else 0)
            if before_send is not None:
                await before_send(tx)
            await self.send_raw(tx.raw)
        return tx

    async def transact(
        self,
        key: TxSigner,
        fn: Any,
        *,
        timeout: float = 60.0,
        before_send: Callable[[SentTx], Awaitable[None]] | None = None,
    ) -> dict:
        """Sign, send and wait for a transaction; raise ChainRejected with the decoded custom error.

        ``before_send`` receives the signed transaction before it leaves (an outbox: the caller
        records it, so a transaction whose receipt never came back can be settled later). A
        transaction not mined within ``timeout`` raises ChainUnavailable naming it (``details.txHash``)."""
        tx = await self.send(key, fn, before_send=before_send)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rec = await self.receipt(tx.tx_hash)
            if rec is not None:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise ChainUnavailable(
                    f"transaction {tx.tx_hash} not mined within {timeout:g} s", details={"txHash": tx.tx_hash}
                )
            await asyncio.sleep(0.05)
        if rec["status"] != 1:
            raise ChainRejected(f"transaction {tx.tx_hash} failed on-chain")
        return rec


def address_of(key: TxSigner) -> str:
    """The account that ``key`` signs for."""
    return (
        AsyncWeb3.to_checksum_address(key.address)
        if isinstance(key, RemoteSigner)
        else Account.from_key(key).address
    )


async def sign_tx(key: TxSigner, tx: dict) -> tuple[bytes, str]:
    """(raw signed transaction, hash) of ``tx``: signed here with a custodial key, or by the issuer's signer."""
    if isinstance(key, RemoteSigner):
        return await key.sign_transaction(tx)
    signed = Account.sign_transaction(tx, key)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


def _nonce_and_fee_calls(address: str) -> list[tuple[str, list]]:
    """The JSON-RPC calls that give an account's next pending nonce and the fee of a transaction now."""
    return [
        ("eth_getTransactionCount", [address, "pending"]),
        ("eth_getBlockByNumber", ["latest", False]),
        ("eth_gasPrice", []),
    ]


def _fee(base_fee: int | None, gas_price: int | None) -> dict[str, int]:
    """A transaction's fee fields: EIP-1559 (twice the base fee, plus a 1 gwei tip unless the chain
    is free, as Besu with zero base fee is) where the chain has a base fee, else its gas price."""
    if base_fee is None:
        assert gas_price is not None
        return {"gasPrice": gas_price}
    tip = 1_000_000_000 if base_fee > 0 else 0
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * int(base_fee) + tip}


def _as_rejected_error(error: dict) -> ChainRejected:
    """A JSON-RPC error object of an eth_call as ChainRejected (custom error decoded)."""
    data = error.get("data")
    if isinstance(data, dict):
        data = data.get("data")
    rev = (
        decode_revert(data)
        if isinstance(data, str) and data.startswith("0x")
        else RevertError("Reverted", {"message": str(error.get("message") or error)})
    )
    return _rejected(rev)


def _as_rejected(exc: Exception) -> ChainRejected:
    return _rejected(_revert_from_exception(exc) or RevertError("Reverted", {"message": str(exc)}))


def _rejected(rev: RevertError) -> ChainRejected:
    args = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in rev.args_dict.items()}
    return ChainRejected(f"the chain refused it: {rev}", details={"error": rev.name, "args": args})
