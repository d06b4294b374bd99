"""A small async JSON-RPC client for the indexer: batches, retries, and typed failures.

Standard Ethereum JSON-RPC only (eth_blockNumber, eth_getLogs, eth_getBlockByNumber, ...), over
aiohttp (which web3's AsyncHTTPProvider uses too). The indexer needs what web3's provider hides:
JSON-RPC batches (one POST carrying a list of calls) and a precise split of failures into
  * transient — connection refused / reset / dropped, timeouts, HTTP 5xx or 429: retried with
    exponential back-off, then `RpcUnavailable`;
  * "range too large" — a node's limit on eth_getLogs results, range or response size
    (geth/Besu "query returned more than 10000 results", Alchemy/Infura "limit exceeded",
    "response size exceeded", HTTP 413): `RangeTooLarge`, so the caller halves its window;
  * anything else the node answers with an error object: `RpcError`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
from typing import Any

import aiohttp

from ledger_node.errors import LedgerNodeError, RpcUnreachable


class RpcError(LedgerNodeError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int | None, message: str):
        self.method, self.code, self.message = method, code, message
        super().__init__(f"{method} failed: {message} (code {code})")


class RangeTooLarge(RpcError):
    """eth_getLogs over this range exceeds a limit of the node: ask for a smaller range."""


class RpcUnavailable(RpcUnreachable):
    """The endpoint kept failing (connection, timeout, 5xx) after every retry."""


_LIMIT_RE = re.compile(
    r"more than \d+ results|too many (results|logs|blocks)|limit (exceeded|reached)|exceeds? (the )?(max|limit)"
    r"|response (size|too large)|range (is )?too (large|wide|big)|block range|max results|query timeout",
    re.IGNORECASE,
)


def is_limit_error(message: str) -> bool:
    return bool(_LIMIT_RE.search(message or ""))


class _Transient(Exception):
    pass


class AsyncRpc:
    """One endpoint. Use as an async context manager (or call `close()`)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 8,
        backoff: float = 0.05,
        max_backoff: float = 5.0,
    ):
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self.calls = 0  # HTTP requests made, for stats
        self.failures = 0  # transient failures seen

    async def __aenter__(self) -> AsyncRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, json_serialize=json.dumps)
        return self._session

    async def _post(self, body: Any) -> Any:
        """One POST with retries on transient failures; returns the decoded JSON."""
        delay = self.backoff
        last = ""
        for attempt in range(self.retries + 1):
            try:
                self.calls += 1
                async with self._http().post(self.url, json=body) as resp:
                    if resp.status == 413:
                        raise RangeTooLarge(_method_of(body), 413, "response too large (HTTP 413)")
                    if resp.status >= 500 or resp.status == 429:
                        raise _Transient(f"HTTP {resp.status}")
                    if resp.status != 200:
                        text = (await resp.text())[:200]
                        if is_limit_error(text):
                            raise RangeTooLarge(_method_of(body), resp.status, text)
                        raise RpcError(_method_of(body), resp.status, f"HTTP {resp.status}: {text}")
                    return await resp.json(content_type=None)
            except (
                TimeoutError,
                _Transient,
                aiohttp.ClientError,
                ConnectionError,
                json.JSONDecodeError,
            ) as exc:
                self.failures += 1
                last = _reason(exc)
                if attempt == self.retries:
                    break
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
        raise RpcUnavailable(f"cannot reach the chain node at {self.url}: {last}")

    async def call(self, method: str, params: list | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []}
        reply = await self._post(body)
        return _result(method, reply)

    async def batch(self, calls: list[tuple[str, list]], *, chunk: int = 200) -> list[Any]:
        """Several calls, sent as JSON-RPC batches of `chunk`; results in call order."""
        out: list[Any] = []
        for i in range(0, len(calls), chunk):
            part = calls[i : i + chunk]
            ids = [next(self._ids) for _ in part]
            body = [{"jsonrpc": "2.0", "id": id_, "method": m, "params": p} for id_, (m, p) in zip(ids, part)]
            reply = await self._post(body)
            if not isinstance(reply, list):
                # Some nodes answer a whole batch with one error object.
                _result(part[0][0], reply)
                raise RpcError(part[0][0], None, "batch answered with a non-list")
            by_id = {r.get("id"): r for r in reply}
            for id_, (m, _p) in zip(ids, part):
                if id_ not in by_id:
                    raise RpcError(m, None, "missing from the batch reply")
                out.append(_result(m, by_id[id_]))
        return out

    # -- typed helpers --------------------------------------------------------------------
    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber"), 16)

    async def chain_id(self) -> int:
        return int(await self.call("eth_chainId"), 16)

    async def headers(self, numbers: list[int]) -> dict[int, dict | None]:
        """Block headers (without transactions) by number; None for a block the node lacks."""
        res = await self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        return dict(zip(numbers, res))

    async def get_logs(self, addresses: list[str], from_block: int, to_block: int) -> list[dict]:
        return await self.call(
            "eth_getLogs", [{"address": addresses, "fromBlock": hex(from_block), "toBlock": hex(to_block)}]
        )


def _method_of(body: Any) -> str:
    if isinstance(body, list):
        return body[0]["method"] if body else "batch"
    return body.get("method", "?")


def _result(method: str, reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise RpcError(method, None, f"malformed reply {str(reply)[:100]}")
    if "error" in reply and reply["error"] is not None:
        err = reply["error"]
        code = err.get("code") if isinstance(err, dict) else None
        message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
        if method == "eth_getLogs" and is_limit_error(message):
            raise RangeTooLarge(method, code, message)
        raise RpcError(method, code, message)
    return reply.get("result")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    if "Connect call failed" in text or "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:160]
