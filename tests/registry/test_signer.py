"""`certledger signer` on its own: what it signs, what it refuses, its log — a real signer process
over HTTP (Web3Signer's eth1 API and certledger's batch path), and its command line."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import httpx
import pytest
import rlp
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

from registry.signer.log import LogCorrupt, SignerLog
from tests.registry.signer_procs import SignerProcess
from tests.support.procs import CERTLEDGER
from verifier import StandardMerkleTree, batch_digest, leaf_hash
from verifier._internal.suites import verify_batch_signature

DEPLOYMENT = SimpleNamespace(chain_id=31337, anchor_registry="0x" + "ab" * 20)
TX = {"nonce": "0x5", "gas": "0x1d4c0", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00"}


def pairs(n, seed=0):
    return [
        (bytes([seed, i % 256, i // 256]) + b"\1" * 29, bytes([seed, i % 256]) + b"\2" * 30) for i in range(n)
    ]


def leaves_of(ps):
    return ["0x" + leaf_hash(t, s).hex() for t, s in ps]


@pytest.fixture()
def signer(tmp_path):
    p = SignerProcess(
        tmp_path / "s",
        DEPLOYMENT,
        policy={"credentialTypes": [1, 3], "maxBatchSize": 100, "batchesPerHour": 3},
    ).start()
    yield p
    p.kill()


def sign_batch(signer, **over):
    ps = pairs(over.pop("n", 4), over.pop("seed", 0))
    body = {
        "identifier": signer.address,
        "credentialType": 1,
        "count": len(ps),
        "leaves": leaves_of(ps),
        "transaction": TX,
        **over,
    }
    return ps, httpx.post(signer.url + "/api/v1/certledger/batches", json=body, timeout=30)


def rpc(signer, method, params):
    return httpx.post(
        signer.url + "/", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, timeout=30
    ).json()


def test_web3signer_endpoints(signer):
    assert httpx.get(signer.url + "/upcheck").text == "OK"
    (public,) = httpx.get(signer.url + "/api/v1/eth1/publicKeys").json()
    assert len(bytes.fromhex(public[2:])) == 64
    assert rpc(signer, "eth_accounts", []) == {"jsonrpc": "2.0", "id": 7, "result": [signer.address]}
    assert rpc(signer, "eth_sign", [signer.address, "0x00"])["error"]["code"] == -32601
    # opaque data is never signed (and the refusal is logged)
    r = httpx.post(signer.url + f"/api/v1/eth1/sign/{public}", json={"data": "0x" + "00" * 32})
    assert r.status_code == 403 and r.json()["error"]["code"] == "opaque_data_refused"
    assert signer.entries()[-1]["code"] == "opaque_data_refused"


def test_batch_signature_is_over_the_root_it_computed_and_the_anchor_tx_calls_anchor(signer):
    ps, r = sign_batch(signer)
    assert r.status_code == 200, r.text
    out = r.json()
    root = StandardMerkleTree.of(ps).root  # the verifier's tree over the same credentials
    assert out["root"] == "0x" + root.hex()
    digest = batch_digest(
        root, 1, 4, chain_id=DEPLOYMENT.chain_id, anchor_registry=DEPLOYMENT.anchor_registry
    )
    assert out["digest"] == "0x" + digest.hex()
    assert verify_batch_signature(
        "secp256k1", digest, bytes.fromhex(out["signature"][2:]), account=signer.address
    )
    raw = bytes.fromhex(out["transaction"]["raw"][2:])
    assert Account.recover_transaction(raw).lower() == signer.address
    fields = rlp.decode(raw[1:])  # EIP-1559: chainId, nonce, tip, fee, gas, to, value, data, ...
    assert int.from_bytes(fields[0], "big") == DEPLOYMENT.chain_id and int.from_bytes(fields[1], "big") == 5
    assert "0x" + fields[5].hex() == DEPLOYMENT.anchor_registry
    selector = function_signature_to_4byte_selector("anchor(bytes32,uint16,uint32)")
    assert fields[7] == selector + root + (1).to_bytes(32, "big") + (4).to_bytes(32, "big")
    (entry,) = [e for e in signer.entries() if e["kind"] == "batch"]
    assert entry["root"] == out["root"] and entry["new"] is True and out["log"]["seq"] == entry["seq"]


@pytest.mark.parametrize(
    "change, code",
    [
        ({"credentialType": 2}, "credential_type_not_allowed"),
        ({"count": 5}, "count_mismatch"),
        ({"n": 101}, "batch_too_large"),
        ({"transaction": {**TX, "gas": hex(10**6)}}, "gas_too_high"),
        ({"transaction": {**TX, "maxFeePerGas": hex(10**15)}}, "fee_too_high"),
    ],
)
def test_batch_refusals(signer, change, code):
    _, r = sign_batch(signer, **change)
    assert r.status_code == 403 and r.json()["error"]["code"] == code, r.text
    assert signer.entries()[-1]["kind"] == "refused" and signer.entries()[-1]["code"] == code
    assert not [e for e in signer.entries() if e["kind"] == "batch"]


def test_duplicate_leaves_and_malformed_requests(signer):
    ps = pairs(2)
    body = {
        "identifier": signer.address,
        "credentialType": 1,
        "count": 2,
        "leaves": leaves_of(ps[:1]) * 2,
        "transaction": TX,
    }
    r = httpx.post(signer.url + "/api/v1/certledger/batches", json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "duplicate_leaves"
    for bad, says in [
        ({**body, "leaves": ["0x12"] * 2}, "each leaf"),
        ({**body, "identifier": "0x" + "1" * 40}, "holds"),
        ({**body, "leaves": leaves_of(ps), "transaction": {"gas": "0x1"}}, "nonce"),
        ({**body, "count": "2"}, "integers"),
    ]:
        r = httpx.post(signer.url + "/api/v1/certledger/batches", json=bad)
        assert r.status_code == 400 and says in r.json()["error"]["message"], r.text
    r = httpx.post(signer.url + "/api/v1/certledger/batches", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


def test_rate_limit_counts_new_roots_only_and_survives_a_restart(signer):
    for seed in range(3):
        assert sign_batch(signer, seed=seed)[1].status_code == 200
    assert sign_batch(signer, seed=0)[1].status_code == 200  # the same root again (a retry): not a new batch
    _, r = sign_batch(signer, seed=9)
    assert r.status_code == 403 and r.json()["error"]["code"] == "rate_limited"
    signer.kill()
    signer.start()  # the count comes back from the log
    _, r = sign_batch(signer, seed=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "rate_limited"


def test_status_and_anchor_transactions_only_for_roots_it_signed(signer):
    ps, r = sign_batch(signer)
    root = bytes.fromhex(r.json()["root"][2:])
    tree = StandardMerkleTree.of(ps)
    revoke = function_signature_to_4byte_selector("revokeCredential(bytes32,bytes32,bytes32,bytes32[],uint8)")
    from eth_abi import encode

    def tx(data: bytes, **over):
        return {
            "from": signer.address,
            "to": DEPLOYMENT.anchor_registry,
            "data": "0x" + data.hex(),
            "nonce": "0x6",
            "gas": "0x30000",
            "gasPrice": "0x3b9aca00",
            **over,
        }

    good = revoke + encode(
        ["bytes32", "bytes32", "bytes32", "bytes32[]", "uint8"], [root, *ps[1], tree.proof(1), 1]
    )
    out = rpc(signer, "eth_signTransaction", [tx(good)])
    assert Account.recover_transaction(out["result"]).lower() == signer.address
    # a credential not in the batch (its proof does not lead to the root)
    bad = revoke + encode(
        ["bytes32", "bytes32", "bytes32", "bytes32[]", "uint8"], [root, *pairs(1, 7)[0], tree.proof(1), 1]
    )
    assert rpc(signer, "eth_signTransaction", [tx(bad)])["error"]["data"]["code"] == "not_in_batch"
    other = function_signature_to_4byte_selector("revokeBatch(bytes32,uint8)") + encode(
        ["bytes32", "uint8"], [b"\7" * 32, 1]
    )
    assert rpc(signer, "eth_signTransaction", [tx(other)])["error"]["data"]["code"] == "root_not_signed"
    reanchor = function_signature_to_4byte_selector("anchor(bytes32,uint16,uint32)") + encode(
        ["bytes32", "uint16", "uint32"], [root, 1, 5]
    )
    assert (
        rpc(signer, "eth_signTransaction", [tx(reanchor)])["error"]["data"]["code"] == "root_signed_otherwise"
    )
    assert (
        rpc(signer, "eth_signTransaction", [tx(good, to="0x" + "cd" * 20)])["error"]["data"]["code"]
        == "wrong_contract"
    )
    assert (
        rpc(signer, "eth_signTransaction", [tx(good, chainId="0x1")])["error"]["data"]["code"]
        == "wrong_chain"
    )
    assert (
        rpc(signer, "eth_signTransaction", [tx(b"\xa9\x05\x9c\xbb" + b"\0" * 64)])["error"]["data"]["code"]
        == "function_not_allowed"
    )  # ERC-20 transfer: not an AnchorRegistry function
    assert (
        rpc(signer, "eth_signTransaction", [tx(good, value="0x1")])["error"]["data"]["code"]
        == "value_not_allowed"
    )
    assert rpc(signer, "eth_signTransaction", [])["error"]["code"] == -32602
    assert (
        rpc(signer, "eth_signTransaction", [tx(good, **{"from": "0x" + "1" * 40})])["error"]["code"] == -32602
    )


def test_sm2_signer_signs_in_its_suite(tmp_path):
    p = SignerProcess(tmp_path / "sm2", DEPLOYMENT, suite="sm2-sm3").start()
    try:
        ps, r = sign_batch(p)
        assert r.status_code == 200 and r.json()["suite"] == "sm2-sm3"
        digest = bytes.fromhex(r.json()["digest"][2:])
        assert verify_batch_signature(
            "sm2-sm3",
            digest,
            bytes.fromhex(r.json()["signature"][2:]),
            account="",
            sm2_public_key=bytes.fromhex(p.sm2_public_key[2:]),
        )
        assert httpx.get(p.url + "/api/v1/certledger/identity").json()["sm2PublicKey"] == p.sm2_public_key
    finally:
        p.kill()


# -- the log ---------------------------------------------------------------------------------------
def _log_with(tmp_path, n=3):
    log = SignerLog(tmp_path / "log.jsonl")
    for i in range(n):
        log.append({"kind": "test", "i": i})
    log.close()
    return tmp_path / "log.jsonl"


def test_log_detects_a_changed_entry(tmp_path):
    path = _log_with(tmp_path)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"i":1', '"i":9')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LogCorrupt, match="entry 2 was changed"):
        SignerLog(path)


def test_log_detects_a_removed_entry_and_a_cut_end(tmp_path):
    path = _log_with(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(LogCorrupt, match="seq 3, expected 2"):
        SignerLog(path)
    path.write_text("\n".join(lines[:2]) + "\n")
    with pytest.raises(LogCorrupt, match="cut off the end"):
        SignerLog(path)
    path.write_text("\n".join(lines) + "\n" + lines[0][:20])
    with pytest.raises(LogCorrupt, match="incomplete"):
        SignerLog(path)


def test_log_recomputed_whole_is_caught_by_its_head(tmp_path):
    """Rewriting the last entry and its hash keeps the chain valid; the head says otherwise."""
    from registry.signer.log import entry_hash

    path = _log_with(tmp_path)
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    last["i"] = 99
    last["hash"] = entry_hash(last)
    path.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    with pytest.raises(LogCorrupt, match="not the one its head recorded"):
        SignerLog(path)


# -- the command line --------------------------------------------------------------------------------
def run_cli(*args):
    return subprocess.run([str(CERTLEDGER), "signer", *args], capture_output=True, text=True, timeout=60)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    p = SignerProcess(tmp_path / "s", DEPLOYMENT)  # (keys and policy made, not started)
    base = p.command()[2:]
    (tmp_path / "bad-policy.json").write_text(json.dumps({"chainId": 1, "anchorRegistry": "0x12"}))
    (tmp_path / "wrong-pass").write_text("not it")
    cases = [
        (["--policy", str(tmp_path / "missing.json")], "cannot read the policy file"),
        (["--policy", str(tmp_path / "bad-policy.json")], "anchorRegistry must be"),
        (["--passphrase-file", str(tmp_path / "wrong-pass")], "cannot open the chain account keystore"),
        (["--keystore", str(tmp_path / "bad-policy.json")], "not a keystore"),
        (["--port", "0"], "--port must be"),
    ]
    for change, says in cases:
        args = list(base)
        for i in range(0, len(change), 2):
            args[args.index(change[i]) + 1] = change[i + 1]
        out = subprocess.run([str(CERTLEDGER), "signer", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, (change, out.stderr)
        assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    p.log.write_text('{"seq": 2}\n')
    out = subprocess.run([str(CERTLEDGER), "signer", *base], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "damaged, refusing to sign" in out.stderr
    out = run_cli("check-log", str(p.log))
    assert out.returncode == 1 and "seq 2, expected 1" in out.stderr
    out = run_cli("new-key", "--out", str(p.home / "keys"), "--passphrase-file", str(p.home / "passphrase"))
    assert out.returncode == 2 and "refusing to overwrite" in out.stderr
    assert "certledger/batches" in run_cli("run", "--help").stdout
