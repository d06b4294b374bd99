"""Fresh proof packages (docs/FORMAT.md §12) for one credential: its anchor and status slots proven
by ``eth_getProof`` against the latest block, the header signed by the operator key and — on the
embedded development chain — wrapped in a QBFT header sealed by the development validators
(``ledger_node.node.DEV_VALIDATOR_KEYS``), so a bank can verify it in either trust mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from registry.core.errors import ChainUnavailable, Conflict
from registry.db.models import Batch, Credential
from registry.services.records import describe_state
from verifier import (
    anchor_storage_key,
    build_proof_package,
    keccak256,
    leaf_hash,
    seal_qbft_header,
    sealed_header_from_block,
    sign_header,
    status_storage_key,
)

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

__all__ = ["credential_proof_package"]


async def credential_proof_package(session: AsyncSession, ctx: ServiceContext, cred: Credential) -> dict:
    """The package for ``cred`` at the latest block; Conflict until its batch is anchored."""
    batch = await session.get(Batch, cred.batch_id) if cred.batch_id else None
    if batch is None or batch.state != "anchored":
        raise Conflict(
            f"credential {cred.id} is not anchored yet (state {describe_state(cred, batch)})",
            details={"state": describe_state(cred, batch)},
        )
    root = bytes.fromhex(batch.anchored().root[2:])
    leaf = leaf_hash(bytes.fromhex(cred.target_hash[2:]), bytes.fromhex(cred.subject_hash[2:]))
    registry = ctx.deployment.contracts["anchorRegistry"]
    provider = ctx.chain.w3.provider
    block = await provider.make_request("eth_getBlockByNumber", ["latest", False])
    if not isinstance(block.get("result"), dict):
        raise ChainUnavailable("the chain node did not return the latest block")
    slots = ["0x" + anchor_storage_key(root).hex(), "0x" + status_storage_key(root, leaf).hex()]
    reply = await provider.make_request(
        "eth_getProof", [ctx.chain.w3.to_checksum_address(registry), slots, block["result"]["number"]]
    )
    if not isinstance(reply.get("result"), dict):
        raise ChainUnavailable(f"the chain node refused eth_getProof: {reply.get('error')}")
    from ledger_node.node import DEV_CHAIN_ID, DEV_VALIDATOR_KEYS

    if ctx.deployment.chain_id == DEV_CHAIN_ID:  # anvil seals nothing: the development validators do
        header = seal_qbft_header(block["result"], DEV_VALIDATOR_KEYS)
    else:  # a Besu QBFT node's own header carries its validators' seals (checked against its block hash)
        header = sealed_header_from_block(block["result"])
    chain_id = ctx.deployment.chain_id
    result = reply["result"]
    return build_proof_package(
        chain_id=chain_id,
        anchor_registry=registry,
        header=header,
        account_proof=result["accountProof"],
        storage_proofs=[s["proof"] for s in result["storageProof"]],
        header_signature=sign_header(chain_id, keccak256(header), bytes.fromhex(ctx.operator_key[2:])),
    )
