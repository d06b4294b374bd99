"""A trust bundle that carries proofs (docs/FORMAT.md §16): one proof package for every anchored
credential — the anchor slot of each batch and the status slot of each credential, proven by
``eth_getProof`` at the bundle's block — so that a bank in validator mode needs nothing but the
pinned validator set. On the embedded development chain the header is wrapped in a QBFT header
sealed by the development validators (``ledger_node.node.DEV_VALIDATOR_KEYS``, FORMAT.md §14.5);
on a Besu QBFT chain the node's own header carries its validators' seals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from registry.core.errors import ChainUnavailable
from registry.db.models import Batch, Credential
from verifier import (
    anchor_storage_key,
    build_proof_package,
    issuer_slots,
    leaf_hash,
    seal_qbft_header,
    sealed_header_from_block,
    status_storage_key,
)

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

__all__ = ["bundle_issuer_proof", "bundle_proof_package"]

_CHUNK = 1000  # storage slots per eth_getProof call


async def bundle_proof_package(ctx: ServiceContext, number: int) -> dict:
    """The package proving every credential of every batch anchored at or before block ``number``."""
    keys: dict[str, None] = {}
    async with ctx.sessions() as s:
        rows = await s.execute(
            select(Batch.root, Credential.target_hash, Credential.subject_hash)
            .join(Credential, Credential.batch_id == Batch.id)
            .where(Batch.state == "anchored", Batch.block_number <= number)
            .order_by(Batch.id, Credential.id)
        )
        for root_hex, target, subject in rows.all():
            assert root_hex is not None  # (anchored batches only)
            root = bytes.fromhex(root_hex[2:])
            keys.setdefault("0x" + anchor_storage_key(root).hex(), None)
            leaf = leaf_hash(bytes.fromhex(target[2:]), bytes.fromhex(subject[2:]))
            keys.setdefault("0x" + status_storage_key(root, leaf).hex(), None)
    provider = ctx.chain.w3.provider
    block = await provider.make_request("eth_getBlockByNumber", [hex(number), False])
    if not isinstance(block.get("result"), dict):
        raise ChainUnavailable(f"the chain node did not return block {number}")
    registry = ctx.deployment.contracts["anchorRegistry"]
    address = ctx.chain.w3.to_checksum_address(registry)
    slots = list(keys)
    account_proof: list[str] = []
    storage: list[list[str]] = []
    for i in range(0, max(len(slots), 1), _CHUNK):
        reply = await provider.make_request("eth_getProof", [address, slots[i : i + _CHUNK], hex(number)])
        if not isinstance(reply.get("result"), dict):
            raise ChainUnavailable(f"the chain node refused eth_getProof: {reply.get('error')}")
        account_proof = list(reply["result"]["accountProof"])
        storage.extend(list(p["proof"]) for p in reply["result"]["storageProof"])
    from ledger_node.node import DEV_CHAIN_ID, DEV_VALIDATOR_KEYS

    if ctx.deployment.chain_id == DEV_CHAIN_ID:  # anvil seals nothing: the development validators do
        header = seal_qbft_header(block["result"], DEV_VALIDATOR_KEYS)
    else:  # a Besu QBFT node's own header carries its validators' seals
        header = sealed_header_from_block(block["result"])
    return build_proof_package(
        chain_id=ctx.deployment.chain_id,
        anchor_registry=registry,
        header=header,
        account_proof=account_proof,
        storage_proofs=storage,
    )


async def bundle_issuer_proof(ctx: ServiceContext, number: int, issuer_ids: list[int]) -> dict:
    """``issuerProof`` (FORMAT.md §16.1): the IssuerRegistry slots of every issuer's record at block
    ``number`` (string lengths and key counts read first, so up to three rounds of ``eth_getProof``)."""
    provider = ctx.chain.w3.provider
    address = ctx.chain.w3.to_checksum_address(ctx.deployment.contracts["issuerRegistry"])
    known: dict[int, int] = {}
    proofs: dict[int, list[str]] = {}
    account: list[str] = []
    for _ in range(4):
        wanted = sorted(issuer_slots(issuer_ids, known) - set(proofs))
        if not wanted:
            break
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i : i + _CHUNK]
            reply = await provider.make_request(
                "eth_getProof", [address, [f"0x{x:064x}" for x in part], hex(number)]
            )
            if not isinstance(reply.get("result"), dict):
                raise ChainUnavailable(f"the chain node refused eth_getProof: {reply.get('error')}")
            account = list(reply["result"]["accountProof"])
            for slot, entry in zip(part, reply["result"]["storageProof"]):
                known[slot], proofs[slot] = int(entry["value"], 16), list(entry["proof"])
    pool = dict.fromkeys(str(n).lower() for nodes in proofs.values() for n in nodes)
    return {"accountProof": [str(n).lower() for n in account], "storageProof": list(pool)}
