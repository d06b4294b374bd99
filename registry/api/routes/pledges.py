"""``GET /v1/credentials/{id}/pledge``: a fresh pledge proof (docs/FORMAT.md §17.3) for a data-asset
certificate — its asset's registration and pledge state in PledgeRegistry, proven by eth_getProof
under a header signed by the operator (``certledger-verify --pledge-proof``).

Public and rate-limited like the proof route. Read-only: the registry relays pledges, releases and
the asset's registration lifecycle in ``collateral.py`` (registry/services/collateral.py)."""

from fastapi import APIRouter, Depends

from registry.api.deps import CtxDep, public_rate_limit
from registry.api.openapi import also
from registry.core.errors import ChainUnavailable, Conflict
from registry.services import collateral, records
from registry.services.docpack import stored_document
from verifier import (
    credential_asset_key,
    keccak256,
    pledge_storage_keys,
    seal_qbft_header,
    sealed_header_from_block,
    sign_header,
)

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])


@router.get(
    "/{credential_id}/pledge", dependencies=[Depends(public_rate_limit)], responses=also(409, 503)
)  # not a data asset / no pledge registry; the chain node unreachable
async def credential_pledge(credential_id: str, ctx: CtxDep):
    """The asset's pledge state proven by eth_getProof against the latest block, operator-signed."""
    async with ctx.sessions() as s:
        cred = await records.load_credential(s, credential_id)
    key = credential_asset_key(stored_document(cred.packed_document))
    if key is None:
        raise Conflict(f"credential {cred.id} names no data asset (issuer.id and credentialSubject.assetId)")
    registry = ctx.deployment.pledge_registry
    if registry is None:
        raise Conflict("this deployment has no pledge registry (`certledger deploy --force` adds it)")
    provider = ctx.chain.w3.provider
    address = ctx.chain.w3.to_checksum_address(registry)
    block = await provider.make_request("eth_getBlockByNumber", ["latest", False])
    if not isinstance(block.get("result"), dict):
        raise ChainUnavailable("the chain node did not return the latest block")
    number = block["result"]["number"]
    first = await provider.make_request(
        "eth_getProof", [address, ["0x" + pledge_storage_keys(key, 0)[0].hex()], number]
    )
    if not isinstance(first.get("result"), dict):
        raise ChainUnavailable(f"the chain node refused eth_getProof: {first.get('error')}")
    ranks = (int(first["result"]["storageProof"][0]["value"], 16) >> 192) & 0xFF
    slots = ["0x" + k.hex() for k in pledge_storage_keys(key, ranks)]
    reply = await provider.make_request("eth_getProof", [address, slots, number])
    if not isinstance(reply.get("result"), dict):
        raise ChainUnavailable(f"the chain node refused eth_getProof: {reply.get('error')}")
    from ledger_node.node import DEV_CHAIN_ID, DEV_VALIDATOR_KEYS

    if ctx.deployment.chain_id == DEV_CHAIN_ID:  # anvil seals nothing: the development validators do
        header = seal_qbft_header(block["result"], DEV_VALIDATOR_KEYS)
    else:  # a Besu QBFT node's own header carries its validators' seals
        header = sealed_header_from_block(block["result"])
    proof = {
        "blockHeader": "0x" + header.hex(),
        "accountProof": list(reply["result"]["accountProof"]),
        "storageProofs": [list(sp["proof"]) for sp in reply["result"]["storageProof"]],
        "headerSignature": sign_header(
            ctx.deployment.chain_id, keccak256(header), bytes.fromhex(ctx.operator_key[2:])
        ),
    }
    # the history is the node's word (events are not in the proven state); the proof is what counts
    history = await collateral.history(ctx, key, to_block=number)
    return {
        "credentialId": cred.id,
        "assetKey": "0x" + key.hex(),
        "pledgeRegistry": registry.lower(),
        # the proof carries the history too (FORMAT.md §17.3: shown by the pledge check, not proven)
        "pledgeProof": proof | {"history": history},
        "history": history,
    }
