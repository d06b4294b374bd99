"""Deploy the four contracts from the committed artifacts and write a deployment manifest.

The manifest (JSON) names the chain (id and genesis hash), the contract addresses, the deploy
block and its hash, the deployer and role holders, and the sha256 of each artifact it deployed.
Deploying again against the same chain reuses it; a manifest for another chain is refused.

What identifies the chain (:func:`check_manifest`): its id, its genesis, and the hash of the block
that deployed the IssuerRegistry (``deployBlockHash``). The deploy block holds this project's
deployer transaction and its timestamp, so another chain with the same id, even one started from
the same genesis (two anvils started in the same second have one), has another hash there.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from eth_account import Account
from web3 import Web3

from ledger_node.artifacts import load_artifact
from ledger_node.chain import Chain
from ledger_node.errors import InsufficientFunds, ManifestError, WrongChain

REGULATOR_ROLE = Web3.keccak(text="REGULATOR_ROLE")
GOVERNANCE_ROLE = Web3.keccak(text="GOVERNANCE_ROLE")


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    genesis_hash: str
    contracts: dict[str, str]
    deploy_block: int
    deployer: str
    governance: str
    regulators: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    deployed_at: str = ""
    deploy_block_hash: str | None = None  # None in a manifest written before it was recorded

    @property
    def issuer_registry(self) -> str:
        return self.contracts["issuerRegistry"]

    @property
    def anchor_registry(self) -> str:
        return self.contracts["anchorRegistry"]

    @property
    def data_flow_ledger(self) -> str:
        return self.contracts["dataFlowLedger"]

    @property
    def pledge_registry(self) -> str | None:
        """The PledgeRegistry (issue 22); None in a manifest written before it existed."""
        return self.contracts.get("pledgeRegistry")

    def to_json(self) -> dict:
        d = asdict(self)
        return {
            "chainId": d["chain_id"],
            "genesisHash": d["genesis_hash"],
            "contracts": d["contracts"],
            "deployBlock": d["deploy_block"],
            **({"deployBlockHash": d["deploy_block_hash"]} if d["deploy_block_hash"] else {}),
            "deployer": d["deployer"],
            "governance": d["governance"],
            "regulators": d["regulators"],
            "artifacts": d["artifacts"],
            "deployedAt": d["deployed_at"],
        }

    @classmethod
    def from_json(cls, data: dict) -> Deployment:
        try:
            contracts = {
                k: Web3.to_checksum_address(data["contracts"][k])
                for k in ("issuerRegistry", "anchorRegistry", "dataFlowLedger")
            }
            if data["contracts"].get("pledgeRegistry"):
                contracts["pledgeRegistry"] = Web3.to_checksum_address(data["contracts"]["pledgeRegistry"])
            return cls(
                chain_id=int(data["chainId"]),
                genesis_hash=str(data["genesisHash"]),
                contracts=contracts,
                deploy_block=int(data["deployBlock"]),
                deployer=str(data["deployer"]),
                governance=str(data["governance"]),
                regulators=list(data.get("regulators", [])),
                artifacts=dict(data.get("artifacts", {})),
                deployed_at=str(data.get("deployedAt", "")),
                deploy_block_hash=_block_hash(data.get("deployBlockHash")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"deployment manifest is malformed: missing or bad {exc}") from None


def _block_hash(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if len(text) != 66 or not text.startswith("0x") or any(c not in "0123456789abcdef" for c in text[2:]):
        raise ValueError(f"deployBlockHash {value!r} (not 0x + 64 hex digits)")
    return text


def load_manifest(path: str | Path) -> Deployment:
    path = Path(path)
    try:
        return Deployment.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ManifestError(f"no deployment manifest at {path}: run `certledger deploy`") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"deployment manifest {path} is not JSON: {exc}") from None


def check_manifest(chain: Chain, manifest: Deployment, path: Path | str = "manifest") -> None:
    """Refuse a manifest made for another chain: another chain id, another genesis, or (where the
    manifest records it) another block at the deploy block's height."""
    chain_id = chain.check_reachable()
    if manifest.chain_id != chain_id:
        raise WrongChain(
            f"deployment manifest {path} is for chain id {manifest.chain_id}, "
            f"but the node at {chain.rpc_url} is chain id {chain_id}"
        )
    if manifest.genesis_hash != chain.genesis_hash():
        raise WrongChain(
            f"deployment manifest {path} is for another chain with id {chain_id} "
            f"(genesis {manifest.genesis_hash[:12]}…, node's {chain.genesis_hash()[:12]}…)"
        )
    if manifest.deploy_block_hash is not None:
        node_hash = chain.block_hash(manifest.deploy_block)
        if node_hash != manifest.deploy_block_hash:
            shown = "none: the node has fewer blocks" if node_hash is None else f"{node_hash[:12]}…"
            raise WrongChain(
                f"deployment manifest {path} is for another chain with id {chain_id} "
                f"(block {manifest.deploy_block} {manifest.deploy_block_hash[:12]}…, node's {shown})"
            )


def deploy(
    chain: Chain,
    deployer_key: str,
    manifest_path: str | Path,
    *,
    regulators: tuple[str, ...] = (),
    force: bool = False,
) -> tuple[Deployment, bool]:
    """Deploy (or reuse) the contracts. Returns (deployment, reused)."""
    manifest_path = Path(manifest_path)
    chain_id = chain.check_reachable()
    if manifest_path.exists() and not force:
        manifest = load_manifest(manifest_path)
        check_manifest(chain, manifest, manifest_path)
        if all(chain.has_code(a) for a in manifest.contracts.values()):
            return manifest, True
        raise ManifestError(
            f"the contracts in {manifest_path} are not on chain {chain_id} (was the chain reset?): "
            "deploy anew with --force"
        )

    deployer = Account.from_key(deployer_key).address
    if chain.balance(deployer) == 0 and int(chain.w3.eth.gas_price) > 0:
        raise InsufficientFunds(
            f"deployer {deployer} has no funds on chain {chain_id}: fund it or use another key"
        )
    governance = deployer
    ir, receipt = chain.deploy_contract("IssuerRegistry", deployer_key, governance)
    ar, _ = chain.deploy_contract("AnchorRegistry", deployer_key, governance, ir)
    fl, _ = chain.deploy_contract("DataFlowLedger", deployer_key, governance, ar)
    pr, _ = chain.deploy_contract("PledgeRegistry", deployer_key, governance)
    ledger = chain.contract("DataFlowLedger", fl)
    regs = [Web3.to_checksum_address(r) for r in (regulators or (deployer,))]
    for reg in regs:
        chain.transact(ledger.functions.grantRole(REGULATOR_ROLE, reg), deployer_key)

    manifest = Deployment(
        chain_id=chain_id,
        genesis_hash=chain.genesis_hash(),
        contracts={"issuerRegistry": ir, "anchorRegistry": ar, "dataFlowLedger": fl, "pledgeRegistry": pr},
        deploy_block=int(receipt["blockNumber"]),
        deploy_block_hash="0x" + bytes(receipt["blockHash"]).hex(),
        deployer=deployer,
        governance=governance,
        regulators=regs,
        artifacts={
            n: load_artifact(n).sha256
            for n in ("IssuerRegistry", "AnchorRegistry", "DataFlowLedger", "PledgeRegistry")
        },
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_manifest(manifest, manifest_path)
    return manifest, False


def write_manifest(manifest: Deployment, path: Path) -> None:
    """Write atomically: a crash leaves the old manifest or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    os.replace(tmp, path)
