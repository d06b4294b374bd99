"""A thin synchronous JSON-RPC client for the three contracts (web3.py, standard RPC only).

Transactions are signed locally (eth_account) and sent raw, so the same code works against
anvil and a permissioned Besu network. Reverts are decoded from the contracts' ABIs into
`RevertError(name, args)` so callers and tests see `RootNotAnchored(root=0x..)`, not hex.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractCustomError, ContractLogicError, Web3RPCError

from ledger_node.artifacts import _canonical_type, error_selectors, load_artifact
from ledger_node.errors import InsufficientFunds, LedgerNodeError, RpcUnreachable


class RevertError(LedgerNodeError):
    """A contract call reverted with a custom error from our ABIs (or a panic / unknown data)."""

    def __init__(self, name: str, args: dict[str, Any], data: str = ""):
        self.name = name
        self.args_dict = args
        self.data = data
        shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
        super().__init__(f"{name}({shown})")


class TxFailed(LedgerNodeError):
    """A transaction was mined but failed, or was never mined."""


def _show(v: Any) -> str:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    return str(v)


def decode_revert(data: str | bytes | None) -> RevertError:
    """Turn revert data into a RevertError named after the custom error."""
    if isinstance(data, str):
        data = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    if not data or len(data) < 4:
        return RevertError("Reverted", {}, "0x" + (data or b"").hex())
    selector, body = data[:4], data[4:]
    known = error_selectors().get(selector)
    if known is None:
        if selector == bytes.fromhex("4e487b71"):
            return RevertError("Panic", {"code": int.from_bytes(body[:32], "big")}, "0x" + data.hex())
        return RevertError("UnknownError", {"selector": "0x" + selector.hex()}, "0x" + data.hex())
    name, inputs = known
    values = abi_decode([_canonical_type(i) for i in inputs], body)
    args = {
        i["name"]: (Web3.to_checksum_address(v) if i["type"] == "address" else v)
        for i, v in zip(inputs, values)
    }
    return RevertError(name, args, "0x" + data.hex())


def _revert_from_exception(exc: Exception) -> RevertError | None:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(data)
    if isinstance(exc, ContractLogicError):
        return RevertError("Reverted", {"message": str(exc)})
    return None


@dataclass
class Chain:
    """A connection to one EVM JSON-RPC endpoint."""

    rpc_url: str
    timeout: float = 30.0
    w3: Web3 = field(init=False)

    def __post_init__(self) -> None:
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": self.timeout}))

    # -- reachability ---------------------------------------------------------------------
    def check_reachable(self) -> int:
        """Return the chain id, or raise RpcUnreachable with a one-line reason."""
        try:
            return int(self.w3.eth.chain_id)
        except (OSError, ConnectionError) as exc:
            raise RpcUnreachable(f"cannot reach the chain node at {self.rpc_url}: {_reason(exc)}") from None
        except Exception as exc:  # requests wraps socket errors in its own types
            if type(exc).__module__.startswith(("requests", "urllib3")):
                raise RpcUnreachable(
                    f"cannot reach the chain node at {self.rpc_url}: {_reason(exc)}"
                ) from None
            raise

    @property
    def chain_id(self) -> int:
        return self.check_reachable()

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def genesis_hash(self) -> str:
        return "0x" + bytes(self.w3.eth.get_block(0)["hash"]).hex()

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number``; None if the node has no such block."""
        try:
            block = self.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        return "0x" + bytes(block["hash"]).hex()

    # -- contracts ------------------------------------------------------------------------
    def contract(self, name: str, address: str):
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)

    def call(self, fn, block: int | str = "latest") -> Any:
        try:
            return fn.call(block_identifier=block)
        except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
            raise (_revert_from_exception(exc) or exc) from None

    def deploy_contract(self, name: str, key: str, *args: Any) -> tuple[str, dict]:
        art = load_artifact(name)
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        receipt = self.transact(factory.constructor(*args), key)
        return Web3.to_checksum_address(receipt["contractAddress"]), receipt

    def transact(self, fn, key: str, *, gas: int | None = None, wait: bool = True) -> dict:
        """Sign `fn` with `key`, send it, wait for the receipt; decode reverts."""
        acct = Account.from_key(key)
        params: dict[str, Any] = {
            "from": acct.address,
            "nonce": self.w3.eth.get_transaction_count(acct.address, "pending"),
            "chainId": self.w3.eth.chain_id,
        }
        if gas is not None:
            params["gas"] = gas
        try:
            tx = fn.build_transaction(params)
        except (ContractCustomError, ContractLogicError) as exc:
            raise (_revert_from_exception(exc) or exc) from None
        except Web3RPCError as exc:
            self._raise_funds(exc, acct.address)
            raise (_revert_from_exception(exc) or exc) from None
        signed = acct.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            self._raise_funds(exc, acct.address)
            raise
        if not wait:
            return {"transactionHash": tx_hash}
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
        if receipt["status"] != 1:
            raise TxFailed(f"transaction 0x{bytes(tx_hash).hex()} failed in block {receipt['blockNumber']}")
        return dict(receipt)

    def _raise_funds(self, exc: Exception, address: str) -> None:
        text = str(exc).lower()
        if "insufficient funds" in text or "lack of funds" in text or "insufficientfunds" in text:
            raise InsufficientFunds(
                f"account {address} has no funds for gas on chain {self.chain_id}: fund it or use another key"
            ) from None

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def has_code(self, address: str) -> bool:
        return len(self.w3.eth.get_code(Web3.to_checksum_address(address))) > 0


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "unknown host"
    return text.splitlines()[0][:160] if text else type(exc).__name__
