"""The HTTP face of ``certledger signer``: Web3Signer's eth1 API where it fits, certledger's own
path where Web3Signer has no equivalent.

Web3Signer eth1 mode (https://docs.web3signer.consensys.io/reference/api/rest and
/reference/api/json-rpc):

* ``GET /upcheck`` → ``OK`` (text/plain)
* ``GET /api/v1/eth1/publicKeys`` → JSON array of the secp256k1 public keys held, ``0x`` + 64 bytes
* ``POST /api/v1/eth1/sign/{identifier}`` (``{"data": "0x..."}``) signs opaque data in Web3Signer;
  here it is refused (403): this signer signs only what it can check
* ``POST /`` JSON-RPC 2.0: ``eth_accounts`` → ``[address]``; ``eth_signTransaction`` with one
  transaction object (``from``, ``to``, ``gas``, ``gasPrice`` or ``maxFeePerGas`` +
  ``maxPriorityFeePerGas``, ``value``, ``data``, ``nonce``) → the signed raw transaction (``0x``
  hex), as Web3Signer answers it

certledger's own (no Web3Signer equivalent):

* ``GET /api/v1/certledger/identity`` → ``{"address", "publicKey", "suite", "sm2PublicKey",
  "chainId", "anchorRegistry", "credentialTypes", "log": {"seq", "hash"}}``
* ``POST /api/v1/certledger/batches`` with ``{"identifier", "credentialType", "count", "leaves",
  "transaction": {"nonce", "gas", "maxFeePerGas", "maxPriorityFeePerGas" | "gasPrice"}}`` →
  ``{"root", "digest", "suite", "signature", "transaction": {"raw", "hash", "nonce", "from"},
  "log": {"seq", "hash"}}`` — the batch root's EIP-712 signature and its signed anchor
  transaction, in one call per batch.

Errors: REST ``{"error": {"code", "message", "details"}}`` with 400 (bad request) or 403
(refused by policy); JSON-RPC ``{"error": {"code", "message", "data"}}`` (-32602 bad params,
-32000 refused, -32601 unknown method).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from registry.signer.core import BadRequest, Signer
from registry.signer.policy import Refused

#: a batch of 100,000 leaves as JSON is ~7 MB
MAX_BODY = 16 * 1024 * 1024


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or {}}}, status_code=status
    )


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest(f"the request body exceeds {MAX_BODY} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("the request body is not JSON") from None


def create_app(signer: Signer) -> Starlette:
    async def upcheck(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def public_keys(request: Request) -> Response:
        return JSONResponse([signer.public_key])

    async def identity(request: Request) -> Response:
        p = signer.policy
        return JSONResponse(
            {
                "address": signer.address,
                "publicKey": signer.public_key,
                "suite": signer.suite,
                "sm2PublicKey": signer.sm2_public_key,
                "chainId": p.chain_id,
                "anchorRegistry": p.anchor_registry,
                "credentialTypes": sorted(p.credential_types),
                "log": {"seq": signer.log.head.seq, "hash": signer.log.head.hash},
            }
        )

    async def eth1_sign(request: Request) -> Response:
        exc = await asyncio.to_thread(signer.refuse_opaque, request.path_params["identifier"])
        return _error(403, exc.code, exc.message)

    async def batches(request: Request) -> Response:
        try:
            body = await _json(request)
            return JSONResponse(await asyncio.to_thread(signer.sign_batch, body))
        except BadRequest as exc:
            return _error(400, "bad_request", str(exc))
        except Refused as exc:
            return _error(403, exc.code, exc.message)

    async def json_rpc(request: Request) -> Response:
        try:
            call = await _json(request)
        except BadRequest as exc:
            return JSONResponse(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": str(exc)}}
            )
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return JSONResponse(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32600, "message": "not a JSON-RPC 2.0 request object"},
                }
            )
        rid, method, params = call.get("id"), call["method"], call.get("params") or []

        def answer(result: Any = None, error: dict | None = None) -> JSONResponse:
            return JSONResponse(
                {"jsonrpc": "2.0", "id": rid, **({"error": error} if error else {"result": result})}
            )

        if method == "eth_accounts":
            return answer([signer.address])
        if method == "eth_signTransaction":
            if not isinstance(params, list) or len(params) != 1:
                return answer(
                    error={"code": -32602, "message": "eth_signTransaction takes one transaction object"}
                )
            try:
                signed = await asyncio.to_thread(signer.sign_transaction, params[0])
            except BadRequest as exc:
                return answer(error={"code": -32602, "message": str(exc)})
            except Refused as exc:
                return answer(error={"code": -32000, "message": exc.message, "data": {"code": exc.code}})
            return answer(signed["raw"])
        return answer(
            error={
                "code": -32601,
                "message": f"method {method!r} is not served by this signer "
                "(eth_accounts, eth_signTransaction)",
            }
        )

    return Starlette(
        routes=[
            Route("/upcheck", upcheck, methods=["GET"]),
            Route("/api/v1/eth1/publicKeys", public_keys, methods=["GET"]),
            Route("/api/v1/eth1/sign/{identifier}", eth1_sign, methods=["POST"]),
            Route("/api/v1/certledger/identity", identity, methods=["GET"]),
            Route("/api/v1/certledger/batches", batches, methods=["POST"]),
            Route("/", json_rpc, methods=["POST"]),
        ]
    )
