"""Trust bundle export: the chain as of one block (issuers from view calls at that block,
anchors and status from the registry's confirmed records), signed by the operator key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from registry.db.models import Batch, Credential, Organisation, unix_time
from verifier import AnchorRecord, IssuerKeyRecord, IssuerRecord, build_trust_bundle, sign_trust_bundle

if TYPE_CHECKING:
    from registry.services.context import ServiceContext
    from verifier import Verifier

SUITES = {0: "secp256k1", 1: "sm2-sm3"}
ISSUER_STATUS = {1: "active", 2: "suspended"}


async def _suspended_since(ctx: ServiceContext, issuer_id: int, number: int) -> tuple[int, int]:
    """(block, unix time) of the issuer's last ``IssuerSuspended`` at or before block ``number``
    (FORMAT.md §8: a verifier offline tells batches anchored before the suspension from later ones)."""
    chain = ctx.chain
    logs = await chain._rpc(
        chain.issuers.events.IssuerSuspended().get_logs(
            argument_filters={"issuerId": issuer_id}, from_block=ctx.deployment.deploy_block, to_block=number
        )
    )
    if not logs:
        return 0, 0
    block = int(logs[-1]["blockNumber"])
    return block, int((await chain._rpc(chain.w3.eth.get_block(block)))["timestamp"])


async def export_bundle(ctx: ServiceContext, *, proofs: bool = False) -> dict:
    """The signed bundle as of the latest block; with ``proofs``, carrying a sealed proof package
    for every anchored credential (FORMAT.md §16)."""
    chain = ctx.chain
    block = await chain._rpc(chain.w3.eth.get_block("latest"))
    number = int(block["number"])
    issuers = []
    count = await chain.call(chain.issuers.functions.issuerCount(), number)
    for i in range(1, count + 1):
        rec = await chain.call(chain.issuers.functions.issuer(i), number)
        keys = {}
        for v in range(1, rec[0] + 1):
            k = await chain.call(chain.issuers.functions.issuerKey(i, v), number)
            keys[v] = IssuerKeyRecord(
                version=v, account=k[0].lower(), valid_from=k[1], valid_until=k[2], sm2_public_key=bytes(k[3])
            )
        types = frozenset(
            [t for t in (1, 2, 3) if await chain.call(chain.issuers.functions.isAllowed(i, t), number)]
        )
        status = ISSUER_STATUS.get(rec[2], "suspended")
        since = await _suspended_since(ctx, i, number) if status == "suspended" else (0, 0)
        issuers.append(
            IssuerRecord(
                id=i,
                name=rec[7],
                uscc=rec[8],
                suite=SUITES[rec[1]],
                status=status,
                active_from=rec[4],
                active_until=rec[5],
                credential_types=types,
                keys=keys,
                status_block=since[0],
                status_timestamp=since[1],
            )
        )
    names: dict[int, str] = {}
    issuer_ids: dict[int, int | None] = {}
    async with ctx.sessions() as s:
        for org_id, issuer_id, name in (
            await s.execute(select(Organisation.id, Organisation.issuer_id, Organisation.name))
        ).all():
            names[org_id], issuer_ids[org_id] = name, issuer_id
        anchors = []
        for b in (
            await s.execute(
                select(Batch)
                .where(Batch.state == "anchored", Batch.block_number <= number)
                .order_by(Batch.block_number)
            )
        ).scalars():
            a, issuer_id = b.anchored(), issuer_ids[b.issuer_org_id]
            if a.anchored_at is None:
                raise RuntimeError(f"batch {b.id} is anchored without its date: the row was changed by hand")
            if issuer_id is None:
                raise RuntimeError(
                    f"batch {b.id} is anchored by organisation {b.issuer_org_id}, which has no issuer id"
                )
            anchors.append(
                AnchorRecord(
                    root=bytes.fromhex(a.root[2:]),
                    issuer_id=issuer_id,
                    key_version=a.key_version,
                    credential_type=b.credential_type,
                    count=b.count,
                    block_number=a.block_number,
                    timestamp=unix_time(a.anchored_at),
                    status=b.status,
                    reason=b.status_reason,
                    status_timestamp=unix_time(b.status_changed_at) or 0,
                )
            )
        revoked: dict[int, dict[str, Any]] = {}
        suspended: dict[int, dict[str, Any]] = {}
        for c in (
            await s.execute(
                select(
                    Credential.status_index,
                    Credential.status,
                    Credential.status_reason,
                    Credential.status_changed_at,
                    Credential.issuer_org_id,
                ).where(Credential.status.in_((2, 3)))
            )
        ).all():
            entry = {
                "reason": c.status_reason,
                "timestamp": unix_time(c.status_changed_at) or 0,
                "by": names.get(c.issuer_org_id, ""),
            }
            (revoked if c.status == 2 else suspended)[c.status_index] = entry
        top = (
            await s.execute(select(Credential.status_index).order_by(Credential.status_index.desc()).limit(1))
        ).scalar() or 0
    bits = max(131_072, ((top + 1 + 7) // 8) * 8)
    bundle = build_trust_bundle(
        chain_id=ctx.deployment.chain_id,
        contracts=ctx.deployment.contracts,
        block={
            "number": number,
            "hash": "0x" + bytes(block["hash"]).hex(),
            "timestamp": int(block["timestamp"]),
            "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
        },
        issuers=issuers,
        anchors=anchors,
        revoked=revoked,
        suspended=suspended,
        status_list_bits=bits,
    )
    if proofs:
        from registry.services.bundle_proofs import bundle_issuer_proof, bundle_proof_package
        from verifier import attach_bundle_proofs

        bundle = attach_bundle_proofs(
            bundle,
            await bundle_proof_package(ctx, number),
            issuer_proof=await bundle_issuer_proof(ctx, number, list(range(1, count + 1))),
        )
    return sign_trust_bundle(bundle, bytes.fromhex(ctx.operator_key[2:]))


async def current_verifier(ctx: ServiceContext) -> Verifier:
    """A Verifier over the registry's own signed trust bundle (/v1/verify, the verify page, flow
    declarations), refreshed every few seconds (``ctx.verifier_cache``; dropped at once when anchors
    or statuses change here)."""
    from verifier import TrustBundle, Verifier

    async def build() -> Verifier:
        bundle = await export_bundle(ctx)
        return Verifier(trust=TrustBundle.load(bundle, operators=[ctx.operator_address]))

    return await ctx.verifier_cache.get(build)
