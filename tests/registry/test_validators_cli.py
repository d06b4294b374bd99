"""`certledger validators export`: the validators file a bank pins (docs/FORMAT.md §14.2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ledger_node.node import DEV_VALIDATOR_KEYS
from verifier import ValidatorSet, eth_address, seal_qbft_header, verify_sealed_header

CERTLEDGER = Path(sys.executable).parent / "certledger"


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(CERTLEDGER), "validators", "export", *args], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def test_dev_validators_export_pins_the_dev_keys_and_verifies_a_dev_sealed_header(tmp_path):
    proc = run(str(tmp_path / "v.json"), "--dev")
    assert proc.returncode == 0, proc.stderr
    pinned = ValidatorSet.load(tmp_path / "v.json")
    assert pinned.chain_id == 31337 and set(pinned.validators) == {eth_address(k) for k in DEV_VALIDATOR_KEYS}
    assert "4 validators of chain 31337" in proc.stdout and "final with 3 seals" in proc.stdout
    block = {
        "parentHash": "0x" + "00" * 32,
        "sha3Uncles": "0x" + "1d" * 32,
        "miner": "0x" + "00" * 20,
        "stateRoot": "0x" + "22" * 32,
        "transactionsRoot": "0x" + "56" * 32,
        "receiptsRoot": "0x" + "56" * 32,
        "logsBloom": "0x" + "00" * 256,
        "difficulty": "0x0",
        "number": "0x5",
        "gasLimit": "0x1c9c380",
        "gasUsed": "0x0",
        "timestamp": "0x6640618b",
        "extraData": "0x",
        "mixHash": "0x" + "00" * 32,
        "nonce": "0x0000000000000000",
    }
    assert verify_sealed_header(seal_qbft_header(block, DEV_VALIDATOR_KEYS), pinned).number == 5


def test_genesis_export_pins_the_genesis_validators(tmp_path):
    net = tmp_path / "net"
    gen = Path(__file__).resolve().parents[2] / "docker" / "generate-network.py"
    subprocess.run([sys.executable, str(gen), "--out", str(net)], check=True, capture_output=True, timeout=60)
    proc = run(str(tmp_path / "v.json"), "--genesis", str(net / "genesis.json"))
    assert proc.returncode == 0, proc.stderr
    assert ValidatorSet.load(tmp_path / "v.json") == ValidatorSet.load(net / "validators.json")


def test_bad_export_requests_are_refused(tmp_path):
    proc = run(str(tmp_path / "v.json"))
    assert proc.returncode == 2 and "say which validators" in proc.stderr
    (tmp_path / "g.json").write_text(json.dumps({"config": {"chainId": 5}, "extraData": "0x00"}))
    proc = run(str(tmp_path / "v.json"), "--genesis", str(tmp_path / "g.json"))
    assert proc.returncode == 2 and "is not a Besu QBFT genesis file" in proc.stderr
    assert not (tmp_path / "v.json").exists()
