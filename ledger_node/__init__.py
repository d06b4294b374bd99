"""certledger chain layer: the local node, contract deployment and the chain event indexer.

    from ledger_node import Chain, AnvilNode, deploy

    node = AnvilNode(data_dir=".certledger")
    node.start()
    chain = Chain(node.rpc_url)
    manifest = deploy(chain, deployer_key=DEV_KEYS[0], manifest_path=node.data_dir / "deployment.json")

Depends on `verifier` only (never on `registry`).
"""

from ledger_node.artifacts import ARTIFACT_NAMES, Artifact, load_artifact
from ledger_node.chain import Chain, RevertError, TxFailed
from ledger_node.deploy import Deployment, deploy, load_manifest
from ledger_node.errors import LedgerNodeError
from ledger_node.node import DEV_KEYS, AnvilNode, NodeStatus

__all__ = [
    "ARTIFACT_NAMES",
    "AnvilNode",
    "Artifact",
    "Chain",
    "DEV_KEYS",
    "Deployment",
    "LedgerNodeError",
    "NodeStatus",
    "RevertError",
    "TxFailed",
    "deploy",
    "load_artifact",
    "load_manifest",
]
