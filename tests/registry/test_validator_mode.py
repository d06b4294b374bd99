"""The stolen operator passphrase (issue 18, point 6): a bundle forged with the operator key claims a
revoked certificate is fine. In bundle mode the bank is fooled; in validator mode it is not — the
status is proven from state sealed by the pinned validators. Real service (SQLite and PostgreSQL),
real anvil and its eth_getProof, the development validators' seals, certledger-verify as a process."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.samples import business_licence_record

pytestmark = [pytest.mark.chain, pytest.mark.anyio]
VERIFY = Path(sys.executable).parent / "certledger-verify"


async def test_a_forged_bundle_is_refused_in_validator_mode(service, tmp_path):
    from ledger_node.node import DEV_VALIDATOR_KEYS, dev_validator_set
    from verifier import (
        TrustBundle,
        ValidatorHeaderTrust,
        ValidatorSet,
        Verifier,
        eth_address,
        header_rlp_from_block,
        parse_qbft_header,
        sign_header,
        sign_trust_bundle,
    )
    from verifier._internal.keccak import keccak256

    c, h = service.client, service.h
    _, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier="11440100MB2C93176P",
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    r = await c.post(
        "/v1/credentials/bulk?type=BusinessLicence&atomic=true",
        headers=h(key),
        json=[business_licence_record() for _ in range(2)],
    )
    revoked_id, good_id = r.json()["ids"]
    await service.drain()
    before = (await c.get("/v1/trust-bundle", headers=h(key))).json()
    r = await c.post(f"/v1/credentials/{revoked_id}/revoke", headers=h(key), json={"reason": 2})
    assert r.status_code == 200, r.text

    # the attacker holds the operator key: it re-signs the bundle from before the revocation
    operator_key = bytes.fromhex(service.ctx.operator_key[2:])
    forged = sign_trust_bundle({k: v for k, v in before.items() if k != "signature"}, operator_key)
    trust = TrustBundle.load(forged, operators=[service.ctx.operator_address])
    holder = (await c.get(f"/v1/credentials/{revoked_id}", headers=h(key))).json()["credential"]
    assert Verifier(trust=trust).verify(holder).valid  # bundle mode alone: fooled

    pinned = ValidatorSet.from_json(dev_validator_set(service.ctx.deployment.chain_id))
    assert set(pinned.validators) == {eth_address(k) for k in DEV_VALIDATOR_KEYS}
    validator_mode = Verifier(trust=trust, header_trust=ValidatorHeaderTrust(pinned), proven_only=True)
    carried = copy.deepcopy(holder)
    carried["proof"]["proofPackage"] = (await c.get(f"/v1/credentials/{revoked_id}/proof")).json()[
        "proofPackage"
    ]
    result = validator_mode.verify(carried)
    assert not result.valid
    assert result.check("status").status == "failed" and result.check("status").reason.startswith(
        "revoked on "
    )
    assert result.check("anchor").status == "passed"

    # its batch-mate, proven the same way, is valid, its status proven under the validators' seals
    mate = (await c.get(f"/v1/credentials/{good_id}", headers=h(key))).json()["credential"]
    mate["proof"]["proofPackage"] = (await c.get(f"/v1/credentials/{good_id}/proof")).json()["proofPackage"]
    mate_result = validator_mode.verify(mate)
    assert mate_result.valid
    assert f"of {len(pinned.validators)} pinned validators" in mate_result.check("status").reason

    # the attacker's own header (the node's real one, operator-signed, not sealed) is refused ...
    unsealed = copy.deepcopy(carried)
    package = unsealed["proof"]["proofPackage"]
    number = parse_qbft_header(bytes.fromhex(package["blockHeader"][2:])).number
    block = await service.ctx.chain.w3.provider.make_request("eth_getBlockByNumber", [hex(number), False])
    raw = header_rlp_from_block(block["result"])
    package["blockHeader"] = "0x" + raw.hex()
    package["headerSignature"] = sign_header(package["chainId"], keccak256(raw), operator_key)
    refused = validator_mode.verify(unsealed).check("anchor")
    assert refused.status == "failed" and "blockHeader" in refused.reason
    # ... and so is a credential with no package at all
    bare = validator_mode.verify(holder).check("anchor")
    assert bare.status == "failed" and "no proof package" in bare.reason

    # the bank's command line: --validators FILE
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    (tmp_path / "validators.json").write_text(json.dumps(pinned.to_json()))
    (tmp_path / "revoked.json").write_text(json.dumps(carried, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "good.json").write_text(json.dumps(mate, ensure_ascii=False), encoding="utf-8")
    base = [str(VERIFY), "--bundle", "forged.json", "--validators", "validators.json", "--json"]
    bad = subprocess.run([*base, "revoked.json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    status = [x for x in json.loads(bad.stdout)["checks"] if x["name"] == "status"][0]
    assert status["status"] == "failed" and status["reason"].startswith("revoked on ")
    ok = subprocess.run([*base, "good.json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "other-chain.json").write_text(json.dumps({**pinned.to_json(), "chainId": 1}))
    wrong = subprocess.run(
        [*base[:3], "--validators", "other-chain.json", "good.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "validators file is for chain 1" in wrong.stderr
