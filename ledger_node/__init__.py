"""certledger chain layer: the local node, contract deployment and the chain event indexer.

    from ledger_node import Chain, AnvilNode, deploy

    node = AnvilNode(data_dir=".certledger")
    node.start()
    chain = Chain(node.rpc_url)
    manifest = deploy(chain, deployer_key=DEV_KEYS[0], manifest_path=node.data_dir / "deployment.json")

Depends on `verifier` only (never on `registry`).
"""

import sys
import types
from typing import TYPE_CHECKING

# Imported on first use (PEP 562): `ledger_node.chain` pulls in web3 and eth_account (1.5 s), which
# every `certledger` command would otherwise pay for at start, `certledger --help` included.
_WHERE = {
    "ARTIFACT_NAMES": "artifacts",
    "Artifact": "artifacts",
    "load_artifact": "artifacts",
    "Chain": "chain",
    "RevertError": "chain",
    "TxFailed": "chain",
    "Deployment": "deploy",
    "deploy": "deploy",
    "load_manifest": "deploy",
    "LedgerNodeError": "errors",
    "DEV_KEYS": "node",
    "DEV_VALIDATOR_KEYS": "node",
    "AnvilNode": "node",
    "NodeStatus": "node",
}


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'ledger_node' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"ledger_node.{where}"), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """`ledger_node.deploy` is a function here, as it was when this module imported it eagerly: the
    import system's binding of the submodule of that name on the package is not kept."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "deploy" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:
    from ledger_node.artifacts import ARTIFACT_NAMES, Artifact, load_artifact
    from ledger_node.chain import Chain, RevertError, TxFailed
    from ledger_node.deploy import Deployment, deploy, load_manifest
    from ledger_node.errors import LedgerNodeError
    from ledger_node.node import DEV_KEYS, DEV_VALIDATOR_KEYS, AnvilNode, NodeStatus

__all__ = [
    "ARTIFACT_NAMES",
    "AnvilNode",
    "Artifact",
    "Chain",
    "DEV_KEYS",
    "DEV_VALIDATOR_KEYS",
    "Deployment",
    "LedgerNodeError",
    "NodeStatus",
    "RevertError",
    "TxFailed",
    "deploy",
    "load_artifact",
    "load_manifest",
]
