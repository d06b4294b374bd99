"""What the proof-package and proof-bundle tests share: the operator key that signs their bundles,
a credential's leaf, and an operator-signed bundle that knows the issuer but no anchor."""

from __future__ import annotations

from typing import Any

from verifier import RpcTrust, TrustBundle, build_trust_bundle, eth_address, sign_trust_bundle

OPERATOR_KEY = b"\x42" * 32
ISSUER_NAME = "广东省市场监督管理局"


def _b(h: str) -> bytes:
    return bytes.fromhex(h[2:])


def _leaf(c: dict[str, Any]) -> bytes:
    from verifier import leaf_hash

    return leaf_hash(_b(c["proof"]["targetHash"]), _b(c["proof"]["subjectHash"]))


def _trust(anvil, deployed, operator_key: bytes = OPERATOR_KEY) -> TrustBundle:
    """An operator-signed bundle that knows the issuer but no anchor and no revocation."""
    rpc = RpcTrust(anvil.url, deployed.manifest())
    block = anvil.w3.eth.get_block(rpc.block_number)
    bundle = build_trust_bundle(
        chain_id=deployed.chain_id,
        contracts={k: v.lower() for k, v in deployed.manifest()["contracts"].items()},
        block={
            "number": rpc.block_number,
            "hash": "0x" + bytes(block["hash"]).hex(),
            "timestamp": rpc.block_timestamp,
            "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
        },
        issuers=[rpc.issuer(1)],
        anchors=[],
    )
    return TrustBundle.load(sign_trust_bundle(bundle, operator_key), operators=[eth_address(operator_key)])
