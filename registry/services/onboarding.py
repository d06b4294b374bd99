"""An organisation's on-chain identity, through the outbox (issue #20, point 2).

Creating an organisation writes, in the same DB transaction as its row, one queued outbox row
(kind ``registration``, target ``org:<id>:<step>``) for each transaction governance sends for it:

- ``fund``: gas money for its account, where the chain charges for gas (the development chain);
- ``issuer``: ``IssuerRegistry.registerIssuer`` (its issuer id comes back in the receipt);
- ``participant``: ``DataFlowLedger.registerParticipant`` for an exporter;
- ``regulator``: ``DataFlowLedger.grantRole(REGULATOR_ROLE)``.

:func:`dispatch` then sends them in order, each recorded before it leaves, and applies each
receipt. A step the request could not finish (the node stopped answering, the process died) is
finished by the outbox's settle pass: a queued step is sent (governance signs it, so nothing of
the request is needed), a sent one is applied once mined. Nobody has to onboard the organisation
again, and a retry never registers a second issuer for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from web3.logs import DISCARD

from ledger_node.deploy import REGULATOR_ROLE
from ledger_node.node import DEV_CHAIN_ID
from registry.core.errors import ChainRejected, ChainUnavailable
from registry.db.models import Organisation, OutboxTx
from registry.db.session import get_one
from registry.services import audit, outbox
from registry.services.chain import Transfer
from registry.services.participants import participant_ids

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.services.chain import SentTx
    from registry.services.context import ServiceContext

SUITE_CODES = {"secp256k1": 0, "sm2-sm3": 1}
DEV_FUNDING_WEI = 10**21  # 1000 ETH on the development chain

#: the order the steps are sent in
STEPS = ("fund", "issuer", "participant", "regulator")


def target(org_id: int, step: str) -> str:
    return f"org:{org_id}:{step}"


async def queue(
    s: AsyncSession,
    ctx: ServiceContext,
    org: Organisation,
    *,
    sm2_public_key: str | None,
    credential_types: list[int],
    actor: str,
    request_id: str,
) -> list[int]:
    """Queue the organisation's onboarding transactions in ``s``'s transaction (with its row)."""
    steps: list[tuple[str, dict[str, Any]]] = []
    if int(await ctx.chain.w3.eth.gas_price) > 0:
        wei = DEV_FUNDING_WEI if ctx.deployment.chain_id == DEV_CHAIN_ID else 10**18
        steps.append(("fund", {"wei": str(wei)}))
    if "issuer" in org.roles:
        steps.append(
            (
                "issuer",
                {
                    "types": credential_types,
                    "suite": org.suite or "secp256k1",
                    "sm2PublicKey": sm2_public_key,
                },
            )
        )
    if "exporter" in org.roles:
        # its private id (FORMAT.md §11): the keyed commitment its certificates' subjectHash is
        steps.append(("participant", {"participantId": (await participant_ids(s)).hex(org.identifier)}))
    if "regulator" in org.roles:
        steps.append(("regulator", {}))
    ids = []
    for step, args in steps:
        ids.append(
            await outbox.record_queued(
                s,
                outbox.Kind.REGISTRATION,
                target(org.id, step),
                {
                    "step": step,
                    "account": org.chain_account,
                    "actor": actor,
                    "request_id": request_id,
                    **args,
                },
                org_id=org.id,
                wait=ctx.settings.tx_timeout_seconds + 5.0,
            )
        )
    return ids


def _call(ctx: ServiceContext, org: Organisation, payload: dict[str, Any]) -> Any:
    """The contract call (or transfer) of one onboarding step."""
    chain, account, step = ctx.chain, payload["account"], payload["step"]
    if step == "fund":
        return Transfer(account, int(payload["wei"]))
    if step == "issuer":
        sm2 = payload.get("sm2PublicKey")
        return chain.issuers.functions.registerIssuer(
            account,
            org.name,
            org.identifier,
            payload["types"],
            SUITE_CODES[payload["suite"]],
            bytes.fromhex(sm2[2:]) if sm2 else b"",
            0,
            0,
        )
    if step == "participant":
        return chain.flows.functions.registerParticipant(account, bytes.fromhex(payload["participantId"][2:]))
    if step == "regulator":
        return chain.flows.functions.grantRole(REGULATOR_ROLE, account)
    raise ValueError(f"unknown onboarding step {step!r}")


async def dispatch(ctx: ServiceContext, org_id: int) -> list[str]:
    """Send the organisation's queued onboarding steps in order and apply each receipt. Returns the
    steps still unfinished (the node stopped answering: the settle pass finishes them); raises
    ChainRejected if the chain refuses one (nothing else is sent then)."""
    async with ctx.sessions() as s:
        rows = await _open_rows(s, org_id)
    for i, row in enumerate(rows):
        if row.state != outbox.State.QUEUED:
            return [r.payload["step"] for r in rows[i:]]
        try:
            await _send(ctx, row, wait_for_receipt=True)
        except ChainUnavailable:
            async with ctx.sessions() as s:
                return [r.payload["step"] for r in await _open_rows(s, org_id)]
    return []


async def _open_rows(s: AsyncSession, org_id: int) -> list[OutboxTx]:
    from sqlalchemy import select

    rows = (
        await s.execute(
            select(OutboxTx).where(
                OutboxTx.kind == str(outbox.Kind.REGISTRATION),
                OutboxTx.org_id == org_id,
                OutboxTx.state.in_([str(outbox.State.QUEUED), str(outbox.State.SENT)]),
            )
        )
    ).scalars()
    return sorted(rows, key=lambda r: STEPS.index(r.payload["step"]))


async def _send(ctx: ServiceContext, row: OutboxTx, *, wait_for_receipt: bool) -> None:
    """Sign and send a queued step (recorded as sent before it leaves); with ``wait_for_receipt``,
    apply its receipt too (else the settle pass does, on a later look)."""
    async with ctx.sessions() as s:
        org = await get_one(s, Organisation, row.org_id)
    fn = _call(ctx, org, row.payload)
    wait = ctx.settings.tx_timeout_seconds + 5.0

    async def record(tx: SentTx) -> None:
        async with ctx.sessions() as s, s.begin():
            if not await outbox.mark_sent(s, row.id, tx, wait=wait):
                raise ChainUnavailable(f"onboarding step {row.target} was sent by another instance")

    if not wait_for_receipt:
        await ctx.chain.send(ctx.governance_key, fn, before_send=record)
        return
    try:
        receipt = await ctx.chain.transact(
            ctx.governance_key, fn, timeout=ctx.settings.tx_timeout_seconds, before_send=record
        )
    except ChainRejected as exc:
        async with ctx.sessions() as s, s.begin():
            await outbox.finish(s, row.id, outbox.State.FAILED, exc.message)
        raise
    ctx.crash_point("registration_mined")
    async with ctx.sessions() as s, s.begin():
        if await outbox.finish(s, row.id, outbox.State.CONFIRMED):
            await _apply(ctx, s, row, receipt)


async def _apply(ctx: ServiceContext, s: AsyncSession, row: OutboxTx, receipt: dict) -> None:
    """The DB takes a mined onboarding step: an issuer's id, and an audit entry either way."""
    org = await get_one(s, Organisation, row.org_id, with_for_update=True)
    step = row.payload["step"]
    details: dict[str, Any] = {"step": step, "tx": "0x" + bytes(receipt["transactionHash"]).hex()}
    if step == "issuer":
        events = ctx.chain.issuers.events.IssuerRegistered().process_receipt(receipt, errors=DISCARD)
        org.issuer_id = int(events[0]["args"]["issuerId"])
        details["issuerId"] = org.issuer_id
    await audit.append(
        s,
        actor=row.payload["actor"],
        action="register_on_chain",
        target=f"org:{org.id}",
        request_id=row.payload["request_id"],
        org_id=org.id,
        details=details,
    )


async def _send_queued(ctx: ServiceContext, row: OutboxTx) -> None:
    await _send(ctx, row, wait_for_receipt=False)


@outbox.settler(outbox.Kind.REGISTRATION, send=_send_queued)
async def _settle(ctx: ServiceContext, s: AsyncSession, row: OutboxTx, receipt: dict) -> None:
    """A step mined after its request gave up (or the process died)."""
    await _apply(ctx, s, row, receipt)
