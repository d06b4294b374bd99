"""The pledge state of a data asset proven from PledgeRegistry storage (docs/FORMAT.md, "Pledges"),
against a real anvil: not pledged, pledged (the sentence a bank reads), released, disputed,
ranked; the header under an operator's signature (trust bundle) and under the pinned validators'
seals; and every way a proof is refused."""

from __future__ import annotations

import copy
from datetime import UTC

import pytest
from eth_account import Account
from web3 import Web3

from ledger_node import DEV_KEYS, deploy
from ledger_node.node import DEV_VALIDATOR_KEYS
from verifier import TrustBundle, build_trust_bundle, eth_address, sign_trust_bundle
from verifier._anchor_proof import ValidatorPinnedTrust
from verifier._pledge_proof import (
    asset_key,
    fetch_pledge_proof,
    loan_ref_bytes,
    verify_pledge_proof,
)
from verifier._qbft import ValidatorSet
from verifier.errors import InvalidPledgeProof

pytestmark = pytest.mark.chain
OPERATOR_KEY = b"\x42" * 32
GOV, HOLDER, BANK_A, BANK_B = DEV_KEYS[0], DEV_KEYS[1], DEV_KEYS[2], DEV_KEYS[3]
FAR = 2**63 - 1
ISSUER = "did:certledger:31337:issuer:3"
NAMES = {Account.from_key(BANK_A).address.lower(): "示例银行"}
TYPES = {
    "Pledge": [
        {"name": "assetKey", "type": "bytes32"},
        {"name": "rank", "type": "uint8"},
        {"name": "holder", "type": "address"},
        {"name": "lender", "type": "address"},
        {"name": "loanRef", "type": "bytes32"},
        {"name": "nonce", "type": "uint32"},
        {"name": "deadline", "type": "uint64"},
    ]
}


@pytest.fixture(scope="module")
def world(chain, tmp_path_factory):
    dep, _ = deploy(chain, GOV, tmp_path_factory.mktemp("pledge") / "deployment.json")
    reg = chain.contract("PledgeRegistry", dep.pledge_registry)
    return chain, dep, reg


def _pledge(chain, reg, key, lender, loan: str, rank=1):
    a = reg.functions.assetOf(key).call()
    domain = {
        "name": "certledger-pledges",
        "version": "1",
        "chainId": chain.w3.eth.chain_id,
        "verifyingContract": reg.address,
    }
    msg = {
        "assetKey": key,
        "rank": rank,
        "holder": a[0],
        "lender": Account.from_key(lender).address,
        "loanRef": loan_ref_bytes(loan),
        "nonce": a[6],
        "deadline": FAR,
    }
    sigs = [bytes(Account.sign_typed_data(k, domain, TYPES, msg).signature) for k in (HOLDER, lender)]
    return chain.transact(reg.functions.pledge(key, rank, msg["lender"], msg["loanRef"], FAR, *sigs), GOV)


def _register(chain, reg, asset_id, ranks=1):
    key = asset_key(ISSUER, asset_id)
    chain.transact(reg.functions.registerAsset(key, Account.from_key(HOLDER).address, ranks), GOV)
    return key


def _bundle_trust(chain, dep):
    block = chain.w3.eth.get_block("latest")
    bundle = build_trust_bundle(
        chain_id=dep.chain_id,
        contracts={k: v.lower() for k, v in dep.contracts.items()},
        block={
            "number": block["number"],
            "hash": "0x" + bytes(block["hash"]).hex(),
            "timestamp": block["timestamp"],
            "stateRoot": "0x" + bytes(block["stateRoot"]).hex(),
        },
        issuers=[],
        anchors=[],
    )
    return TrustBundle.load(sign_trust_bundle(bundle, OPERATOR_KEY), operators=[eth_address(OPERATOR_KEY)])


def _prove(chain, dep, key, trust=None, **kw):
    proof = fetch_pledge_proof(chain.w3, dep.pledge_registry, key, OPERATOR_KEY, **kw)
    return verify_pledge_proof(
        proof, key=key, pledge_registry=dep.pledge_registry.lower(), trust=trust or _bundle_trust(chain, dep)
    )


def test_asset_key_is_keccak_of_issuer_slash_asset_id():
    assert asset_key(ISSUER, "DA-1") == bytes(Web3.keccak(text=ISSUER + "/DA-1"))


def test_not_pledged_then_pledged_then_released(world):
    chain, dep, reg = world
    key = _register(chain, reg, "DA-2026-0001")
    state = _prove(chain, dep, key)
    assert (state.state, state.pledged, state.describe(NAMES)) == ("registered", False, "not pledged")
    receipt = _pledge(chain, reg, key, BANK_A, "GZ-LOAN-2026-001")
    day = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    state = _prove(chain, dep, key)
    assert state.pledged and state.pledges[0].since == day
    from datetime import datetime

    when = datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%d")
    assert state.describe(NAMES) == f"pledged to 示例银行 since {when}, loan ref GZ-LOAN-2026-001"
    assert state.registration_no == reg.functions.assetOf(key).call()[1]
    chain.transact(reg.functions.release(key, 1, b""), BANK_A)
    assert _prove(chain, dep, key).describe(NAMES) == "not pledged"


def test_an_unregistered_asset_is_proven_absent(world):
    chain, dep, _ = world
    state = _prove(chain, dep, asset_key(ISSUER, "never"))
    assert state.state == "unregistered" and state.describe() == "asset not registered"


def test_dispute_and_ranked_pledges_are_shown(world):
    chain, dep, reg = world
    key = _register(chain, reg, "DA-RANKED", ranks=2)
    _pledge(chain, reg, key, BANK_A, "L-1", rank=1)
    _pledge(chain, reg, key, BANK_B, "L-2", rank=2)
    chain.transact(reg.functions.openDispute(key, b"\1" * 32), GOV)
    state = _prove(chain, dep, key)
    assert [p.rank for p in state.pledges] == [1, 2] and state.disputed
    text = state.describe(NAMES)
    assert text.startswith("pledged to 示例银行") and Account.from_key(BANK_B).address.lower() in text
    assert text.endswith("under dispute")


def test_validator_sealed_header(world):
    chain, dep, reg = world
    key = _register(chain, reg, "DA-SEALED")
    _pledge(chain, reg, key, BANK_A, "L-S")
    inner = _bundle_trust(chain, dep)
    trust = ValidatorPinnedTrust(
        inner, ValidatorSet(dep.chain_id, tuple(eth_address(k) for k in DEV_VALIDATOR_KEYS))
    )
    proof = fetch_pledge_proof(chain.w3, dep.pledge_registry, key, None, validator_keys=DEV_VALIDATOR_KEYS)
    state = verify_pledge_proof(proof, key=key, pledge_registry=dep.pledge_registry.lower(), trust=trust)
    assert state.pledged
    # an operator-signed header is not trusted in validator mode
    signed = fetch_pledge_proof(chain.w3, dep.pledge_registry, key, OPERATOR_KEY)
    with pytest.raises(InvalidPledgeProof, match="not sealed"):
        verify_pledge_proof(signed, key=key, pledge_registry=dep.pledge_registry.lower(), trust=trust)


def _flip(h: str) -> str:
    return h[:-1] + ("0" if h[-1] != "0" else "1")


def test_refusals(world):
    chain, dep, reg = world
    key = _register(chain, reg, "DA-REFUSE")
    _pledge(chain, reg, key, BANK_A, "L-R")
    trust = _bundle_trust(chain, dep)
    good = fetch_pledge_proof(chain.w3, dep.pledge_registry, key, OPERATOR_KEY)
    addr = dep.pledge_registry.lower()
    cases = []
    p = copy.deepcopy(good)
    p["storageProofs"][1][-1] = _flip(p["storageProofs"][1][-1])
    cases.append((p, "storage proof 1"))
    p = copy.deepcopy(good)
    p["accountProof"][-1] = _flip(p["accountProof"][-1])
    cases.append((p, "account proof"))
    p = copy.deepcopy(good)
    p["storageProofs"] = p["storageProofs"][:1]
    cases.append((p, "active pledge"))
    p = copy.deepcopy(good)
    p["storageProofs"] = p["storageProofs"][:2]
    cases.append((p, "two slots per rank"))
    p = copy.deepcopy(good)
    del p["headerSignature"]
    cases.append((p, "headerSignature is missing"))
    p = copy.deepcopy(good)
    p["blockHeader"] = "nothex"
    cases.append((p, "0x-hex"))
    other = fetch_pledge_proof(chain.w3, dep.pledge_registry, key, b"\x43" * 32)
    cases.append((other, "not a trusted operator"))
    for proof, message in cases:
        with pytest.raises(InvalidPledgeProof, match=message):
            verify_pledge_proof(proof, key=key, pledge_registry=addr, trust=trust)
    # the proof of one asset does not prove another's state
    with pytest.raises(InvalidPledgeProof):
        verify_pledge_proof(good, key=asset_key(ISSUER, "DA-OTHER"), pledge_registry=addr, trust=trust)
    # nor the state of another contract
    with pytest.raises(InvalidPledgeProof, match="account"):
        verify_pledge_proof(good, key=key, pledge_registry=dep.anchor_registry.lower(), trust=trust)


def test_the_pledge_check_of_a_data_asset_certificate(world):
    from verifier._pledge_proof import pledge_check

    chain, dep, reg = world
    key = _register(chain, reg, "DA-CHECK")
    cred = {"issuer": {"id": ISSUER}, "credentialSubject": {"assetId": "DA-CHECK"}}
    trust = _bundle_trust(chain, dep)
    addr = dep.pledge_registry

    def check(c=cred, proof="fetch", registry=addr):
        if proof == "fetch":
            proof = fetch_pledge_proof(chain.w3, dep.pledge_registry, key, OPERATOR_KEY)
        return pledge_check(c, proof, pledge_registry=registry, trust=trust, lender_names=NAMES)

    got = check()
    assert got.status == "passed" and "not pledged" in got.reason, got
    _pledge(chain, reg, key, BANK_A, "LOAN-7")
    got = check()
    assert (
        got.status == "passed" and "pledged to 示例银行" in got.reason and "loan ref LOAN-7" in got.reason
    ), got
    chain.transact(reg.functions.openDispute(key, b"\2" * 32), GOV)
    got = check()
    assert got.status == "failed" and "under dispute" in got.reason, got
    assert check(c={"issuer": {"id": ISSUER}, "credentialSubject": {}}).status == "skipped"
    assert check(proof=None).status == "skipped"
    assert check(registry=None).status == "skipped"
    bad = fetch_pledge_proof(chain.w3, dep.pledge_registry, key, OPERATOR_KEY)
    bad["accountProof"] = bad["accountProof"][:1]
    assert check(proof=bad).status == "failed"
    other = {"issuer": {"id": ISSUER}, "credentialSubject": {"assetId": "DA-NOT-REGISTERED"}}
    got = check(
        c=other,
        proof=fetch_pledge_proof(
            chain.w3, dep.pledge_registry, asset_key(ISSUER, "DA-NOT-REGISTERED"), OPERATOR_KEY
        ),
    )
    assert got.status == "failed" and "not registered" in got.reason


# -- certledger-verify --pledge (online) and --pledge-proof (offline) ------------------------


def _cli(*args, cwd):
    import json
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "certledger-verify"
    proc = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, (json.loads(lines[0]) if lines and lines[0].startswith("{") else None), proc


def test_cli_pledge_online_and_offline(world, tmp_path):
    """The pledge check appended to certledger-verify's checks: an (unanchored) certificate's other
    checks fail, so this asserts the pledge check itself and the exit code of bad input."""
    import json

    chain, dep, reg = world
    key = _register(chain, reg, "DA-CLI")
    _pledge(chain, reg, key, BANK_A, "CLI-LOAN")
    cred = {"issuer": {"id": ISSUER}, "credentialSubject": {"assetId": "DA-CLI"}}
    (tmp_path / "c.json").write_text(json.dumps(cred))
    (tmp_path / "d.json").write_text(json.dumps(dep.to_json()))
    (tmp_path / "lenders.json").write_text(json.dumps(NAMES, ensure_ascii=False))
    rpc = chain.rpc_url
    code, out, proc = _cli(
        "c.json",
        "--rpc",
        rpc,
        "--deployment",
        "d.json",
        "--pledge",
        "--lenders",
        "lenders.json",
        "--json",
        cwd=tmp_path,
    )
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["pledge"]["status"] == "passed" and "pledged to 示例银行" in checks["pledge"]["reason"], out
    assert "loan ref CLI-LOAN" in checks["pledge"]["reason"]
    # offline: the registry's operator-signed bundle names the pledge registry; the proof is a file
    trust = _bundle_trust(chain, dep)
    bundle = build_trust_bundle(
        chain_id=dep.chain_id,
        contracts={k: v.lower() for k, v in dep.contracts.items()},
        block={
            "number": trust.block_number,
            "hash": "0x" + bytes(chain.w3.eth.get_block(trust.block_number)["hash"]).hex(),
            "timestamp": trust.block_timestamp,
            "stateRoot": "0x" + bytes(chain.w3.eth.get_block(trust.block_number)["stateRoot"]).hex(),
        },
        issuers=[],
        anchors=[],
    )
    (tmp_path / "b.json").write_text(json.dumps(sign_trust_bundle(bundle, OPERATOR_KEY)))
    (tmp_path / "p.json").write_text(
        json.dumps(fetch_pledge_proof(chain.w3, dep.pledge_registry, key, OPERATOR_KEY))
    )
    code, out, proc = _cli(
        "c.json",
        "--bundle",
        "b.json",
        "--operator",
        eth_address(OPERATOR_KEY),
        "--pledge-proof",
        "p.json",
        "--json",
        "--max-age",
        "none",
        cwd=tmp_path,
    )
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["pledge"]["status"] == "passed" and "loan ref CLI-LOAN" in checks["pledge"]["reason"], out
    # bad input: one line, exit 2
    for args, message in (
        (("--bundle", "b.json", "--pledge", "--max-age", "none"), "--pledge asks the node"),
        (("--bundle", "b.json", "--pledge-proof", "missing.json", "--max-age", "none"), "pledge proof"),
        (("--bundle", "b.json", "--lenders", "lenders.json", "--max-age", "none"), "--lenders"),
        (("--rpc", rpc, "--deployment", "d.json", "--pledge", "--pledge-proof", "p.json"), "not both"),
    ):
        code, _, proc = _cli("c.json", *args, cwd=tmp_path)
        assert code == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
