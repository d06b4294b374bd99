"""Data assets as loan collateral, through the registry (issue #22; docs/FORMAT.md §17).

The data authority — the organisation that issued the data-asset certificate, or an admin —
registers the certificate's asset in PledgeRegistry (first registration, with its number), opens and
resolves a dispute, and cancels the asset or a pledge. A lender registers a pledge with the holder's
and its own EIP-712 consent (``PledgeRegistry.pledgeDigest``), and releases it with its ``Release``
signature. The chain holds the state and its rules: one active pledge per rank (``AlreadyPledged``
on a double pledge), none while disputed, consents bound to the asset's nonce.

The registry relays each transaction signed by governance (it holds the data authority role, and
anyone may relay a pledge whose consents are signed) through the outbox (kind ``pledge_registry``):
recorded before it is sent, applied — an audit entry naming the transaction and what it did — by
the request or, if the request gave up or the process died, by the settle pass; never twice. One
transaction per asset is open at a time (the consents of the next are bound to the nonce this one
changes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.core.errors import BadRequest, Conflict, Forbidden
from registry.services import audit, outbox
from registry.services.issuance import document_of
from registry.services.orgs import Principal
from registry.services.records import anchored_batch, load_credential
from verifier import credential_asset_key, decode_history

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.db.models import OutboxTx
    from registry.services.context import ServiceContext

#: what each action is, on-chain, and who may ask for it
_AUTHORITY = frozenset({"register", "dispute", "resolve", "cancel", "cancel_pledge", "transfer", "change"})
_LENDER = frozenset({"pledge", "release"})
ACTIONS = _AUTHORITY | _LENDER
_STATES = {0: "none", 1: "registered", 2: "cancelled"}
_PLEDGE_STATES = {0: "none", 1: "active", 2: "released", 3: "cancelled"}


class AssetChangeUnconfirmed(Conflict):
    """An earlier transaction of the same asset was sent and is not mined yet."""

    code = "asset_change_unconfirmed"


@dataclass(frozen=True)
class Asset:
    credential_id: str
    key: bytes
    issuer_org_id: int

    @property
    def target(self) -> str:
        return f"asset:0x{self.key.hex()}"


def _b32(value: str, what: str) -> bytes:
    """A 32-byte value given as 0x + 64 hex digits, or a short text (UTF-8, right-padded) — a case
    or loan reference."""
    if value.startswith("0x") and len(value) == 66:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raw = value.encode()
    if not raw or len(raw) > 32:
        raise BadRequest(f"{what} is 1–32 bytes of text or 0x + 64 hex digits")
    return raw.ljust(32, b"\0")


def _sig(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value[2:]) if value.startswith("0x") else b""
    except ValueError:
        raw = b""
    if len(raw) != 65:
        raise BadRequest(f"{what} is a 65-byte secp256k1 signature (0x + 130 hex digits)")
    return raw


async def _asset(ctx: ServiceContext, principal: Principal, credential_id: str, action: str) -> Asset:
    """The asset of ``credential_id``'s certificate (404: no such credential; 403: an authority's
    action asked by another organisation; 409: the credential names no data asset)."""
    async with ctx.sessions() as s:
        cred = await load_credential(s, credential_id)
        if action in _AUTHORITY and not (
            principal.has("admin") or (principal.has("issuer") and principal.org_id == cred.issuer_org_id)
        ):
            raise Forbidden(
                f"{action} is the data authority's: the organisation that issued credential {credential_id}, "
                "or an admin"
            )
        key = credential_asset_key(document_of(cred, ctx.deployment))
        if action in ("pledge", "register") and cred.status != 1:
            what = {2: "revoked", 3: "suspended"}.get(cred.status, f"in status {cred.status}")
            raise Conflict(f"credential {credential_id} is {what}: its asset cannot be {action}d")
    if key is None:
        raise Conflict(
            f"credential {credential_id} names no data asset (issuer.id and credentialSubject.assetId)"
        )
    return Asset(credential_id, key, cred.issuer_org_id)


async def _reissued(ctx: ServiceContext, asset: Asset, new_id: str) -> str:
    """The targetHash of the certificate a transfer re-issued to the new holder: a valid, anchored
    certificate of the same asset (same issuer and assetId), not the old one."""
    if new_id == asset.credential_id:
        raise BadRequest("a transfer names the certificate re-issued to the new holder, not the old one")
    async with ctx.sessions() as s:
        new = await load_credential(s, new_id)
        doc = document_of(new, ctx.deployment)
        anchored = await anchored_batch(s, new)
    if credential_asset_key(doc) != asset.key:
        raise Conflict(
            f"credential {new_id} is not a certificate of the same data asset (issuer and assetId)"
        )
    if new.status != 1 or not anchored:
        raise Conflict(f"credential {new_id} is not a valid, anchored certificate yet")
    return str(new.target_hash)


def _registry(ctx: ServiceContext) -> Any:
    if ctx.chain.pledges is None:
        raise Conflict("this deployment has no pledge registry (`certledger deploy --force` adds it)")
    return ctx.chain.pledges


def _call(ctx: ServiceContext, asset: Asset, action: str, body: dict[str, Any]) -> Any:
    """The contract call of ``action`` on ``asset`` from the request's body (checked here)."""
    f = _registry(ctx).functions
    w3 = ctx.chain.w3
    k = asset.key
    if action == "register":
        holder, ranks = body["holder"], body.get("ranks", 1)
        if not w3.is_address(holder):
            raise BadRequest("holder is the holder's account address (0x + 40 hex digits)")
        return f.registerAsset(k, w3.to_checksum_address(holder), ranks)
    if action in ("dispute", "resolve"):
        ref = _b32(body["caseRef"], "caseRef")
        return f.openDispute(k, ref) if action == "dispute" else f.resolveDispute(k, ref)
    if action == "cancel":
        return f.cancelAsset(k, body.get("reason", 0))
    if action == "transfer":
        holder = body["holder"]
        if not w3.is_address(holder):
            raise BadRequest("holder is the new holder's account address (0x + 40 hex digits)")
        return f.transferAsset(k, w3.to_checksum_address(holder), bytes.fromhex(body["newCertificate"][2:]))
    if action == "change":
        return f.changeAsset(k, _b32(body["changeDigest"], "changeDigest"))
    if action == "cancel_pledge":
        return f.cancelPledge(k, body["rank"], body.get("reason", 0))
    if action == "pledge":
        lender = body["lender"]
        if not w3.is_address(lender):
            raise BadRequest("lender is the lender's account address (0x + 40 hex digits)")
        return f.pledge(
            k,
            body["rank"],
            w3.to_checksum_address(lender),
            _b32(body["loanRef"], "loanRef"),
            body["deadline"],
            _sig(body["holderSignature"], "holderSignature"),
            _sig(body["lenderSignature"], "lenderSignature"),
        )
    if action == "release":
        return f.release(k, body["rank"], _sig(body["lenderSignature"], "lenderSignature"))
    raise BadRequest(f"unknown action {action!r}: one of {', '.join(sorted(ACTIONS))}")


async def act(
    ctx: ServiceContext,
    principal: Principal,
    credential_id: str,
    action: str,
    body: dict[str, Any],
    request_id: str,
) -> dict:
    """Relay ``action`` on the asset of ``credential_id``'s certificate; the mined outcome, or
    ChainRejected naming the contract's error (``AlreadyPledged``, ``AssetDisputed``, …)."""
    asset = await _asset(ctx, principal, credential_id, action)
    if action == "transfer":
        body = {**body, "newCertificate": await _reissued(ctx, asset, body["newCredentialId"])}
    fn = _call(ctx, asset, action, body)
    async with ctx.sessions() as s:
        waiting = await outbox.open_tx(s, outbox.Kind.PLEDGE_REGISTRY, asset.target)
    if waiting is not None:
        raise AssetChangeUnconfirmed(
            f"an earlier transaction of this asset ({waiting}) is not mined yet; the registry applies it by "
            "itself once it is",
            details={"txHash": waiting},
        )
    payload = {
        "action": action,
        "credentialId": credential_id,
        "rank": body.get("rank"),
        "request": {k: v for k, v in body.items() if not k.endswith("Signature")},
        "actor": principal.org_name,
        "request_id": request_id,
    }
    receipt, row_id = await outbox.transact_recorded(
        ctx,
        ctx.governance_key,
        fn,
        outbox.Kind.PLEDGE_REGISTRY,
        asset.target,
        payload,
        org_id=principal.org_id,
        sent_note="It was sent; the registry applies it by itself once it is mined (another transaction of "
        "this asset waits until then)",
    )
    ctx.crash_point("pledge_mined")
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    async with ctx.sessions() as s, s.begin():
        if await outbox.finish(s, row_id, outbox.State.CONFIRMED):
            await _apply(s, asset.target, payload, tx, receipt["blockNumber"], org_id=principal.org_id)
    return {
        "credentialId": credential_id,
        "action": action,
        "txHash": tx,
        "blockNumber": receipt["blockNumber"],
    } | (await state_of(ctx, asset, body.get("rank")))


async def state_of(ctx: ServiceContext, asset: Asset, rank: int | None = None) -> dict:
    """The asset's registration (and one rank's pledge) as the chain holds it now."""
    f = _registry(ctx).functions
    a = await ctx.chain.call(f.assetOf(asset.key))
    out: dict[str, Any] = {
        "assetKey": "0x" + asset.key.hex(),
        "asset": {
            "holder": a[0],
            "registrationNo": a[1],
            "ranks": a[2],
            "activePledges": a[3],
            "disputed": a[4],
            "state": _STATES.get(a[5], str(a[5])),
            "nonce": a[6],
        },
    }
    if rank is not None:
        p = await ctx.chain.call(f.pledgeOf(asset.key, rank))
        out["pledge"] = {
            "rank": rank,
            "lender": p[0],
            "since": p[1],
            "state": _PLEDGE_STATES.get(p[2], str(p[2])),
            "loanRef": "0x" + bytes(p[3]).hex(),
        }
    return out


async def _apply(
    s: AsyncSession,
    target: str,
    payload: dict,
    tx: str | None,
    block: int,
    *,
    org_id: int | None,
    settled: bool = False,
) -> None:
    await audit.append(
        s,
        actor=payload["actor"],
        action=f"asset_{payload['action']}",
        target=target,
        request_id=payload["request_id"],
        org_id=org_id,
        details={
            "credentialId": payload["credentialId"],
            "request": payload["request"],
            "tx": tx,
            "blockNumber": block,
        }
        | ({"settledFromChain": True} if settled else {}),
    )


@outbox.settler(outbox.Kind.PLEDGE_REGISTRY)
async def _settle(ctx: ServiceContext, s: AsyncSession, row: OutboxTx, receipt: dict) -> None:
    """A PledgeRegistry transaction mined after its request gave up (it timed out, or the process
    died): its audit entry, once."""
    await _apply(
        s, row.target, row.payload, row.tx_hash, receipt["blockNumber"], org_id=row.org_id, settled=True
    )


async def history(ctx: ServiceContext, key: bytes, *, to_block: str = "latest") -> list[dict[str, Any]]:
    """The asset's PledgeRegistry events, oldest first (``verifier.decode_history``): what the node
    says, not proven — for the pledge route and the regulator's trace."""
    registry = _registry(ctx)
    logs = await ctx.chain.w3.provider.make_request(
        "eth_getLogs",
        [
            {
                "address": registry.address,
                "fromBlock": hex(ctx.deployment.deploy_block),
                "toBlock": to_block,
                "topics": [None, "0x" + key.hex()],
            }
        ],
    )
    return decode_history(logs["result"]) if isinstance(logs.get("result"), list) else []


async def asset_history_of(ctx: ServiceContext, credential_id: str) -> list[dict[str, Any]] | None:
    """The history of the asset a certificate names, or None (not a data asset, or no pledge registry)."""
    if ctx.chain.pledges is None:
        return None
    async with ctx.sessions() as s:
        cred = await load_credential(s, credential_id)
        key = credential_asset_key(document_of(cred, ctx.deployment))
    return None if key is None else await history(ctx, key)
