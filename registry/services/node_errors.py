"""What a chain node's JSON-RPC error means for the registry, as a type (issue #20, point 2).

The Ethereum JSON-RPC specification standardises no error codes for a refused transaction: geth and
anvil answer ``-32000`` (anvil ``-32003``/``-32602`` for some) with a text, Besu gives a few refusals
codes of their own (``JsonRpcError``: ``-32001`` nonce too low, ``-32006`` nonce too high, ``-32009``
gas price too low, ``-39001`` unknown block) and the rest ``-32000`` with a text. So a refusal is
classified here, once: by its code where the node's code means one thing, else by the node's text,
from the table below (each entry names the client it comes from). Everything else in the registry
decides on the :class:`Refusal` member, never on the message, and keeps the message for people only
(``last_error``, logs)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Refusal(StrEnum):
    #: the node has this transaction already (in its pool or mined): nothing failed
    ALREADY_KNOWN = "already_known"
    #: the nonce is used, by this transaction (mined) or another
    NONCE_USED = "nonce_used"
    #: the fee is too low for the pool, or too low to replace the pending transaction of that nonce
    UNDERPRICED = "underpriced"
    #: the nonce is ahead of the account's next one (an earlier transaction is missing)
    NONCE_GAP = "nonce_gap"
    #: the node does not serve that block (yet): a block number past its head
    BLOCK_NOT_SERVED = "block_not_served"
    #: anything else (a revert, a malformed transaction, a node fault): the caller's error
    OTHER = "other"


#: codes that mean one thing on the node that gives them (Besu's JsonRpcError enum)
_CODES: dict[int, Refusal] = {
    -32001: Refusal.NONCE_USED,  # Besu NONCE_TOO_LOW
    -32006: Refusal.NONCE_GAP,  # Besu NONCE_TOO_HIGH
    -32009: Refusal.UNDERPRICED,  # Besu GAS_PRICE_TOO_LOW / GAS_PRICE_BELOW_CURRENT_BASE_FEE
    -39001: Refusal.BLOCK_NOT_SERVED,  # Besu UNKNOWN_BLOCK
}

#: lower-case text → meaning, for the codes nodes share (-32000, -32003, -32602), in order: the
#: first match wins (so "replacement transaction underpriced" is underpriced, not already known)
_TEXTS: tuple[tuple[str, Refusal], ...] = (
    ("replacement transaction underpriced", Refusal.UNDERPRICED),  # geth, anvil, Besu (-32000)
    ("transaction underpriced", Refusal.UNDERPRICED),  # geth txpool ErrUnderpriced
    ("max fee per gas less than block base fee", Refusal.UNDERPRICED),  # geth, anvil
    ("already known", Refusal.ALREADY_KNOWN),  # geth txpool ErrAlreadyKnown, anvil
    ("already imported", Refusal.ALREADY_KNOWN),  # anvil ("transaction already imported")
    ("known transaction", Refusal.ALREADY_KNOWN),  # Besu ETH_SEND_TX_ALREADY_KNOWN, parity
    ("nonce too low", Refusal.NONCE_USED),  # geth core.ErrNonceTooLow, anvil, Besu
    ("nonce too high", Refusal.NONCE_GAP),  # geth core.ErrNonceTooHigh, Besu
    ("blockoutofrange", Refusal.BLOCK_NOT_SERVED),  # anvil ("BlockOutOfRangeError: block height is …")
    ("header not found", Refusal.BLOCK_NOT_SERVED),  # geth
)


@dataclass(frozen=True)
class NodeRefusal:
    """A node's refusal: what it means, and its own words (for people)."""

    kind: Refusal
    message: str

    def __str__(self) -> str:
        return self.message


def classify(error: dict[str, Any] | BaseException | str | None) -> NodeRefusal:
    """A JSON-RPC error object (``{"code", "message", "data"}``), a web3 exception carrying one, or
    a bare message, as a :class:`NodeRefusal`."""
    code: int | None = None
    if isinstance(error, BaseException):
        response = getattr(error, "rpc_response", None)
        body = response.get("error") if isinstance(response, dict) else None
        if isinstance(body, dict):
            error = body
        else:
            error = getattr(error, "message", None) or str(error)
    if isinstance(error, dict):
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        data = error.get("data")
        message = str(error.get("message") or "") + (f" ({data})" if isinstance(data, str) else "")
        message = message or str(error)
    else:
        message = str(error or "")
    if code is not None and code in _CODES:
        return NodeRefusal(_CODES[code], message)
    text = message.lower()
    for needle, kind in _TEXTS:
        if needle in text:
            return NodeRefusal(kind, message)
    return NodeRefusal(Refusal.OTHER, message)
