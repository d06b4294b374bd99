"""Revoke, suspend, reinstate — one credential or a batch. On-chain first (signed by the issuing
organisation's own key, or governance for an admin), the DB after the transaction is mined.
The contract enforces the same rule as the API: a compromised API cannot make one issuer
change another issuer's credential, because it would have to sign with that issuer's key."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import update

from registry.core.errors import BadRequest, ChainRejected, ChainUnavailable, Conflict, Forbidden
from registry.db.models import Batch, Credential
from registry.services import audit
from registry.services.orgs import Principal, signing_key
from registry.services.records import load_credential, proof_from_tree
from verifier._internal.merkle import leaf_hash

ACTIONS = {"revoke": 2, "suspend": 3, "reinstate": 1}
#: What the contract answers when the requested status already holds on-chain.
_ALREADY = {"AlreadyRevoked", "AlreadySuspended", "NotSuspended"}
REASONS = {"unspecified": 0, "keyCompromise": 1, "superseded": 2, "cessationOfOperation": 3,
           "affiliationChanged": 4, "privilegeWithdrawn": 5, "dataInaccurate": 6, "holderRequest": 7,
           "courtOrder": 8}


def forget_verifier(ctx) -> None:
    """Drop /v1/verify's cached trust bundle: this instance's next verification sees the change."""
    ctx.__dict__.pop("_verifier_cache", None)


def reason_code(reason: str | int | None) -> int:
    if reason is None:
        return 0
    if isinstance(reason, int) and 0 <= reason <= 255:
        return reason
    if isinstance(reason, str) and reason in REASONS:
        return REASONS[reason]
    raise BadRequest(f"unknown reason {reason!r}: one of {', '.join(REASONS)}")


async def _signer(ctx, session, principal: Principal, issuer_org_id: int) -> str:
    if principal.has("admin"):
        return ctx.governance_key
    if principal.has("issuer") and principal.org_id == issuer_org_id:
        _, key, _ = await signing_key(session, principal.org_id, ctx.settings.passphrase())
        return key
    raise Forbidden("only the issuing organisation (or an admin) may change this status")


def _already(exc: ChainRejected, action: str, chain_status: int) -> bool:
    """The chain refused because the status ``action`` asks for holds on-chain already."""
    return (exc.details or {}).get("error") in _ALREADY and chain_status == ACTIONS[action]


async def _transact(ctx, key: str, fn) -> dict:
    try:
        return await ctx.chain.transact(key, fn, timeout=ctx.settings.tx_timeout_seconds)
    except ChainUnavailable as exc:
        raise ChainUnavailable(
            f"{exc.message}. It may still be mined: repeat the request to bring the registry up to date "
            "(a repeat never changes the status twice)", details=exc.details) from None


async def change_credential(ctx, principal: Principal, credential_id: str, action: str, reason,
                            request_id: str) -> dict:
    code = reason_code(reason)
    async with ctx.sessions() as s:
        cred = await load_credential(s, credential_id)
        key = await _signer(ctx, s, principal, cred.issuer_org_id)
        batch = await s.get(Batch, cred.batch_id) if cred.batch_id else None
        if batch is None or batch.state != "anchored":
            raise Conflict(f"credential {credential_id} is not anchored yet; its status can change once it is")
        target, subject = bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:])
        leaf = leaf_hash(target, subject)
        root = bytes.fromhex(batch.root[2:])
        proof = proof_from_tree(batch.tree, leaf)
    f = ctx.chain.anchors.functions
    if action == "revoke":
        fn = f.revokeCredential(root, target, subject, proof, code)
    elif action == "suspend":
        fn = f.suspendCredential(root, target, subject, proof, code)
    elif action == "reinstate":
        fn = f.reinstateCredential(root, leaf)
    else:
        raise BadRequest(f"unknown action {action!r}")
    try:
        receipt = await _transact(ctx, key, fn)
    except ChainRejected as exc:
        on_chain = await ctx.chain.call(ctx.chain.anchors.functions.credentialStatusOf(root, leaf))
        if not (_already(exc, action, on_chain[0] or 1) and cred.status != ACTIONS[action]):
            raise
        # An earlier request's transaction was mined after that request gave up (503): the chain
        # holds the status already, the DB catches up to it now.
        code = on_chain[1]
        async with ctx.sessions() as s, s.begin():
            await s.execute(update(Credential).where(Credential.id == credential_id).values(
                status=ACTIONS[action], status_reason=code, status_tx=None,
                status_changed_at=datetime.fromtimestamp(on_chain[2], timezone.utc)))
            await audit.append(s, actor=principal.org_name, action=f"{action}_credential", target=credential_id,
                               request_id=request_id, org_id=principal.org_id,
                               details={"reason": code, "tx": None, "settledFromChain": True})
        forget_verifier(ctx)
        return {"id": credential_id, "status": {1: "valid", 2: "revoked", 3: "suspended"}[ACTIONS[action]],
                "reason": code, "txHash": None, "blockNumber": None, "settledFromChain": True}
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    async with ctx.sessions() as s, s.begin():
        await s.execute(update(Credential).where(Credential.id == credential_id).values(
            status=ACTIONS[action], status_reason=code if action != "reinstate" else 0,
            status_changed_at=datetime.now(timezone.utc), status_tx=tx))
        await audit.append(s, actor=principal.org_name, action=f"{action}_credential", target=credential_id,
                           request_id=request_id, org_id=principal.org_id, details={"reason": code, "tx": tx})
    forget_verifier(ctx)
    return {"id": credential_id, "status": {1: "valid", 2: "revoked", 3: "suspended"}[ACTIONS[action]],
            "reason": code, "txHash": tx, "blockNumber": receipt["blockNumber"]}


async def change_batch(ctx, principal: Principal, batch_id: int, action: str, reason, request_id: str) -> dict:
    code = reason_code(reason)
    async with ctx.sessions() as s:
        batch = await s.get(Batch, batch_id)
        if batch is None:
            from registry.core.errors import NotFound

            raise NotFound(f"no batch {batch_id}")
        key = await _signer(ctx, s, principal, batch.issuer_org_id)
        if batch.state != "anchored":
            raise Conflict(f"batch {batch_id} is not anchored yet")
        root = bytes.fromhex(batch.root[2:])
    f = ctx.chain.anchors.functions
    fn = {"revoke": lambda: f.revokeBatch(root, code), "suspend": lambda: f.suspendBatch(root, code),
          "reinstate": lambda: f.reinstateBatch(root)}.get(action)
    if fn is None:
        raise BadRequest(f"unknown action {action!r}")
    try:
        receipt = await _transact(ctx, key, fn())
    except ChainRejected as exc:
        anchor = await ctx.chain.anchor_of(batch.root)
        if anchor is None or not (_already(exc, action, anchor["status"]) and batch.status != ACTIONS[action]):
            raise
        code = anchor["reason"]  # mined after an earlier request gave up: the DB catches up
        async with ctx.sessions() as s, s.begin():
            await s.execute(update(Batch).where(Batch.id == batch_id).values(
                status=ACTIONS[action], status_reason=code))
            await audit.append(s, actor=principal.org_name, action=f"{action}_batch", target=f"batch:{batch_id}",
                               request_id=request_id, org_id=principal.org_id,
                               details={"reason": code, "tx": None, "settledFromChain": True})
        forget_verifier(ctx)
        return {"id": batch_id, "status": {1: "valid", 2: "revoked", 3: "suspended"}[ACTIONS[action]],
                "reason": code, "txHash": None, "settledFromChain": True}
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    async with ctx.sessions() as s, s.begin():
        await s.execute(update(Batch).where(Batch.id == batch_id).values(
            status=ACTIONS[action], status_reason=code if action != "reinstate" else 0))
        await audit.append(s, actor=principal.org_name, action=f"{action}_batch", target=f"batch:{batch_id}",
                           request_id=request_id, org_id=principal.org_id, details={"reason": code, "tx": tx})
    forget_verifier(ctx)
    return {"id": batch_id, "status": {1: "valid", 2: "revoked", 3: "suspended"}[ACTIONS[action]],
            "reason": code, "txHash": tx}
