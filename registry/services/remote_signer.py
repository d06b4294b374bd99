"""The registry's client of an issuer's own signer (``certledger signer``, registry/signer/).

An organisation registered with a signer URL keeps its key there: the pipeline sends each batch's
leaves once (``POST /api/v1/certledger/batches``) and gets back the root's signature and the signed
anchor transaction; status changes and re-signed anchors go through Web3Signer's JSON-RPC
``eth_signTransaction``. The signer checks each against its own policy and may refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from eth_utils.crypto import keccak

from registry.core.errors import RegistryError


class SignerUnavailable(RegistryError):
    """The issuer's signer did not answer (down, unreachable, too slow)."""

    code, http_status = "signer_unavailable", 503


class SignerRefused(RegistryError):
    """The issuer's signer refused: its policy does not allow what was asked."""

    code, http_status = "signer_refused", 409


@dataclass(frozen=True)
class SignedBatch:
    root: str
    signature: bytes
    raw: bytes
    tx_hash: str
    nonce: int
    sender: str


def _fee_fields(tx: dict) -> dict[str, str]:
    return {k: hex(int(tx[k])) for k in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice") if k in tx}


@dataclass(frozen=True)
class RemoteSigner:
    """An issuer's signer at ``url`` holding the account ``address``."""

    url: str
    address: str
    timeout: float = 30.0

    async def _post(self, path: str, body: Any) -> tuple[int, Any]:
        url = self.url.rstrip("/") + path
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.post(url, json=body) as response:
                    try:
                        return response.status, await response.json(content_type=None)
                    except ValueError:
                        raise SignerUnavailable(
                            f"the issuer's signer at {self.url} answered HTTP {response.status} without JSON"
                        ) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SignerUnavailable(
                f"the issuer's signer at {self.url} did not answer: {type(exc).__name__}"
            ) from None

    async def accounts(self) -> list[str]:
        """``eth_accounts``: the addresses the signer holds (lower-case)."""
        status, answer = await self._post(
            "/", {"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []}
        )
        result = answer.get("result") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(result, list):
            raise SignerUnavailable(
                f"the issuer's signer at {self.url} did not list its accounts (HTTP {status})"
            )
        return [str(a).lower() for a in result]

    async def sign_batch(
        self, leaves: list[bytes], credential_type: int, count: int, tx: dict
    ) -> SignedBatch:
        """The root's signature and the signed anchor transaction, in one call. ``tx`` gives nonce,
        gas and the fee fields; the signer builds the rest itself."""
        body = {
            "identifier": self.address,
            "credentialType": credential_type,
            "count": count,
            "leaves": ["0x" + leaf.hex() for leaf in leaves],
            "transaction": {"nonce": hex(tx["nonce"]), "gas": hex(tx["gas"]), **_fee_fields(tx)},
        }
        status, answer = await self._post("/api/v1/certledger/batches", body)
        if status != 200:
            self._raise(status, answer)
        try:
            t = answer["transaction"]
            return SignedBatch(
                root=answer["root"],
                signature=bytes.fromhex(answer["signature"][2:]),
                raw=bytes.fromhex(t["raw"][2:]),
                tx_hash=t["hash"],
                nonce=int(t["nonce"]),
                sender=t["from"],
            )
        except (KeyError, TypeError, ValueError):
            raise SignerUnavailable(
                f"the issuer's signer at {self.url} gave an answer without the signed batch"
            ) from None

    async def sign_transaction(self, tx: dict) -> tuple[bytes, str]:
        """``eth_signTransaction``: (raw signed transaction, its hash)."""
        data = tx["data"] if isinstance(tx["data"], str) else "0x" + bytes(tx["data"]).hex()
        params = {
            "from": self.address,
            "to": tx["to"],
            "data": data,
            "nonce": hex(tx["nonce"]),
            "gas": hex(tx["gas"]),
            "value": "0x0",
            "chainId": hex(tx["chainId"]),
            **_fee_fields(tx),
        }
        status, answer = await self._post(
            "/", {"jsonrpc": "2.0", "id": 1, "method": "eth_signTransaction", "params": [params]}
        )
        if not isinstance(answer, dict) or status != 200:
            raise SignerUnavailable(f"the issuer's signer at {self.url} answered HTTP {status}")
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise SignerRefused(
                f"the issuer's signer refused the transaction: {error.get('message')}",
                details={"signerError": error},
            )
        result = answer.get("result")
        if not (isinstance(result, str) and result[:2] == "0x"):
            raise SignerUnavailable(f"the issuer's signer at {self.url} gave no signed transaction")
        raw = bytes.fromhex(result[2:])
        return raw, "0x" + keccak(raw).hex()

    def _raise(self, status: int, answer: Any) -> None:
        error = answer.get("error") if isinstance(answer, dict) else None
        if status in (400, 403) and isinstance(error, dict):
            raise SignerRefused(
                f"the issuer's signer refused the batch: {error.get('message')}",
                details={"signerError": error},
            )
        raise SignerUnavailable(f"the issuer's signer at {self.url} answered HTTP {status}")
