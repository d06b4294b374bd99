"""Deployment: the manifest, reuse, refusal of a manifest for another chain, funds, missing code,
malformed manifests, and the roles granted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from ledger_node import DEV_KEYS, Chain, deploy, load_manifest
from ledger_node.artifacts import BUILD_DIR
from ledger_node.errors import InsufficientFunds, ManifestError, RpcUnreachable, WrongChain
from ledger_node.node import free_port

pytestmark = pytest.mark.chain

GOVERNANCE_ROLE = Web3.keccak(text="GOVERNANCE_ROLE")
REGULATOR_ROLE = Web3.keccak(text="REGULATOR_ROLE")
NAMES = {
    "issuerRegistry": "IssuerRegistry",
    "anchorRegistry": "AnchorRegistry",
    "dataFlowLedger": "DataFlowLedger",
    "pledgeRegistry": "PledgeRegistry",
}
DEPLOYER = Account.from_key(DEV_KEYS[0]).address


@pytest.fixture()
def manifest_path(tmp_path) -> Path:
    return tmp_path / "sub" / "deployment.json"


def test_deploy_writes_manifest(chain, manifest_path):
    before = chain.block_number()
    dep, reused = deploy(chain, DEV_KEYS[0], manifest_path)
    assert reused is False
    data = json.loads(manifest_path.read_text())
    assert set(data) >= {
        "chainId",
        "genesisHash",
        "contracts",
        "deployBlock",
        "deployer",
        "governance",
        "regulators",
        "artifacts",
        "deployedAt",
    }
    assert data["chainId"] == 31337 == dep.chain_id
    assert (
        data["genesisHash"] == chain.genesis_hash() == "0x" + bytes(chain.w3.eth.get_block(0)["hash"]).hex()
    )
    assert set(data["contracts"]) == set(NAMES)
    assert before < data["deployBlock"] <= chain.block_number()
    receipt_block = chain.w3.eth.get_block(data["deployBlock"])
    assert len(receipt_block["transactions"]) >= 1
    assert data["deployBlockHash"] == "0x" + bytes(receipt_block["hash"]).hex() == dep.deploy_block_hash
    assert (data["deployer"], data["governance"], data["regulators"]) == (DEPLOYER, DEPLOYER, [DEPLOYER])
    for key, name in NAMES.items():
        assert chain.has_code(data["contracts"][key])
        assert (
            data["artifacts"][name] == hashlib.sha256((BUILD_DIR / f"{name}.json").read_bytes()).hexdigest()
        )
        runtime = json.loads((BUILD_DIR / f"{name}.json").read_text())["deployedBytecode"]
        onchain = "0x" + bytes(chain.w3.eth.get_code(data["contracts"][key])).hex()
        # immutables are patched in at deploy time; compare the code length and the metadata tail
        assert len(onchain) == len(runtime) and onchain[-100:] == runtime[-100:]
    assert load_manifest(manifest_path) == dep
    # wired together
    ar = chain.contract("AnchorRegistry", dep.anchor_registry)
    fl = chain.contract("DataFlowLedger", dep.data_flow_ledger)
    assert chain.call(ar.functions.issuerRegistry()) == dep.issuer_registry
    assert chain.call(fl.functions.anchorRegistry()) == dep.anchor_registry


def test_roles_granted(chain, manifest_path):
    dep, _ = deploy(chain, DEV_KEYS[0], manifest_path)
    for key, name in NAMES.items():
        c = chain.contract(name, dep.contracts[key])
        role = Web3.keccak(text="DATA_AUTHORITY_ROLE") if name == "PledgeRegistry" else GOVERNANCE_ROLE
        assert chain.call(c.functions.hasRole(role, DEPLOYER)) is True
        assert chain.call(c.functions.hasRole(b"\0" * 32, DEPLOYER)) is True
    fl = chain.contract("DataFlowLedger", dep.data_flow_ledger)
    assert chain.call(fl.functions.hasRole(REGULATOR_ROLE, DEPLOYER)) is True


def test_named_regulators(chain, tmp_path):
    regs = [Account.from_key(k).address for k in (DEV_KEYS[10], DEV_KEYS[11])]
    dep, _ = deploy(chain, DEV_KEYS[0], tmp_path / "m.json", regulators=tuple(r.lower() for r in regs))
    assert dep.regulators == regs
    fl = chain.contract("DataFlowLedger", dep.data_flow_ledger)
    for r in regs:
        assert chain.call(fl.functions.hasRole(REGULATOR_ROLE, r)) is True
    assert chain.call(fl.functions.hasRole(REGULATOR_ROLE, DEPLOYER)) is False


def test_rerun_reuses(chain, manifest_path):
    first, _ = deploy(chain, DEV_KEYS[0], manifest_path)
    text = manifest_path.read_text()
    block = chain.block_number()
    again, reused = deploy(chain, DEV_KEYS[0], manifest_path)
    assert reused is True
    assert again == first and again.contracts == first.contracts
    assert chain.block_number() == block  # no transaction sent
    assert manifest_path.read_text() == text


def test_force_deploys_anew(chain, manifest_path):
    first, _ = deploy(chain, DEV_KEYS[0], manifest_path)
    second, reused = deploy(chain, DEV_KEYS[0], manifest_path, force=True)
    assert reused is False
    assert set(second.contracts.values()).isdisjoint(first.contracts.values())
    assert load_manifest(manifest_path) == second


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_manifest_for_another_chain_id(chain, manifest_path):
    deploy(chain, DEV_KEYS[0], manifest_path)
    _edit(manifest_path, chainId=1)
    with pytest.raises(WrongChain) as e:
        deploy(chain, DEV_KEYS[0], manifest_path)
    assert "chain id 1" in str(e.value) and "chain id 31337" in str(e.value)
    assert json.loads(manifest_path.read_text())["chainId"] == 1  # untouched


def test_manifest_for_another_genesis(chain, manifest_path):
    deploy(chain, DEV_KEYS[0], manifest_path)
    _edit(manifest_path, genesisHash="0x" + "ab" * 32)
    block = chain.block_number()
    with pytest.raises(WrongChain) as e:
        deploy(chain, DEV_KEYS[0], manifest_path)
    assert "another chain" in str(e.value)
    assert chain.block_number() == block


def test_manifest_for_another_deploy_block(chain, manifest_path):
    """Same chain id and genesis (two anvils started in the same second share one), another chain:
    the block at the deploy height is not the one that deployed the contracts."""
    deploy(chain, DEV_KEYS[0], manifest_path)
    _edit(manifest_path, deployBlockHash="0x" + "cd" * 32)
    with pytest.raises(WrongChain) as e:
        deploy(chain, DEV_KEYS[0], manifest_path)
    assert "another chain" in str(e.value) and "0xcdcdcdcdcd" in str(e.value)


def test_manifest_whose_deploy_block_the_node_does_not_have(chain, manifest_path):
    deploy(chain, DEV_KEYS[0], manifest_path)
    _edit(manifest_path, deployBlock=chain.block_number() + 1000)
    with pytest.raises(WrongChain) as e:
        deploy(chain, DEV_KEYS[0], manifest_path)
    assert "the node has fewer blocks" in str(e.value)


def test_manifest_without_deploy_block_hash_is_checked_on_id_and_genesis(chain, manifest_path):
    """A manifest written before deployBlockHash was recorded (or by hand) is still accepted."""
    dep, _ = deploy(chain, DEV_KEYS[0], manifest_path)
    data = json.loads(manifest_path.read_text())
    del data["deployBlockHash"]
    manifest_path.write_text(json.dumps(data))
    again, reused = deploy(chain, DEV_KEYS[0], manifest_path)
    assert reused is True and again.deploy_block_hash is None and again.contracts == dep.contracts


def test_a_malformed_deploy_block_hash_is_refused(chain, manifest_path):
    deploy(chain, DEV_KEYS[0], manifest_path)
    _edit(manifest_path, deployBlockHash="0x1234")
    with pytest.raises(ManifestError) as e:
        load_manifest(manifest_path)
    assert "deployBlockHash" in str(e.value)


def test_deployer_without_funds(chain, manifest_path):
    key = "0x" + Account.create().key.hex().removeprefix("0x")
    block = chain.block_number()
    with pytest.raises(InsufficientFunds) as e:
        deploy(chain, key, manifest_path)
    assert Account.from_key(key).address in str(e.value)
    assert not manifest_path.exists()
    assert chain.block_number() == block


def test_manifest_without_code(chain, manifest_path):
    dep, _ = deploy(chain, DEV_KEYS[0], manifest_path)
    _edit(manifest_path, contracts={k: "0x" + f"{i + 1:02x}" * 20 for i, k in enumerate(NAMES)})
    with pytest.raises(ManifestError) as e:
        deploy(chain, DEV_KEYS[0], manifest_path)
    assert "--force" in str(e.value)
    fresh, reused = deploy(chain, DEV_KEYS[0], manifest_path, force=True)
    assert reused is False and all(chain.has_code(a) for a in fresh.contracts.values())
    assert load_manifest(manifest_path) == fresh


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        "[]",
        "{}",
        json.dumps({"chainId": 31337}),
        json.dumps(
            {
                "chainId": "x",
                "genesisHash": "0x",
                "deployBlock": 1,
                "deployer": "a",
                "governance": "a",
                "contracts": {"issuerRegistry": "0x1", "anchorRegistry": "0x2", "dataFlowLedger": "0x3"},
            }
        ),
    ],
)
def test_malformed_manifest(chain, manifest_path, content):
    manifest_path.parent.mkdir(parents=True)
    manifest_path.write_text(content)
    with pytest.raises(ManifestError):
        deploy(chain, DEV_KEYS[0], manifest_path)
    assert manifest_path.read_text() == content
    with pytest.raises(ManifestError):
        load_manifest(manifest_path)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path / "none.json")
    assert "certledger deploy" in str(e.value)


def test_unreachable_chain(tmp_path):
    with pytest.raises(RpcUnreachable):
        deploy(Chain(f"http://127.0.0.1:{free_port()}", timeout=2), DEV_KEYS[0], tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_a_manifest_written_before_the_pledge_registry_still_loads(chain, manifest_path):
    dep, _ = deploy(chain, DEV_KEYS[0], manifest_path)
    assert dep.pledge_registry and chain.has_code(dep.pledge_registry)
    data = json.loads(manifest_path.read_text())
    del data["contracts"]["pledgeRegistry"]
    manifest_path.write_text(json.dumps(data))
    old = load_manifest(manifest_path)
    assert old.pledge_registry is None and old.anchor_registry == dep.anchor_registry
