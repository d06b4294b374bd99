"""The registry's side of issue 18's bundles: ``GET /v1/trust-bundle?proofs=true`` carries a sealed
proof package for every anchored credential (docs/FORMAT.md §16), and ``certledger bundle cosign``
adds operator signatures (§8.1). Real service on SQLite and PostgreSQL, real anvil ``eth_getProof``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.samples import business_licence_record

pytestmark = [pytest.mark.chain, pytest.mark.anyio]
CERTLEDGER = Path(sys.executable).parent / "certledger"


async def test_a_bundle_with_proofs_proves_every_credential_and_survives_a_forged_status_list(service):
    from ledger_node.node import dev_validator_set
    from verifier import (
        TrustBundle,
        ValidatorHeaderTrust,
        ValidatorPinnedTrust,
        ValidatorSet,
        Verifier,
        open_bundle_proofs,
        sign_trust_bundle,
    )
    from verifier._internal.statuslist import encode_status_list

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
        json=[business_licence_record() for _ in range(3)],
    )
    ids = r.json()["ids"]
    await service.drain()
    r = await c.post(f"/v1/credentials/{ids[1]}/revoke", headers=h(key), json={"reason": 2})
    assert r.status_code == 200, r.text
    plain = (await c.get("/v1/trust-bundle", headers=h(key))).json()
    assert "proofPackage" not in plain
    r = await c.get("/v1/trust-bundle?proofs=true", headers=h(key))
    assert r.status_code == 200, r.text
    bundle = r.json()
    package = bundle["proofPackage"]
    assert (
        "headerSignature" not in package
        and package["anchorRegistry"] == bundle["contracts"]["anchorRegistry"]
    )

    # the stolen operator key: the status lists say nothing is revoked, the signature is good
    operator_key = bytes.fromhex(service.ctx.operator_key[2:])
    forged = dict(bundle)
    forged["statusLists"] = {
        p: {"encodedList": encode_status_list([], 131_072), "details": {}}
        for p in ("revocation", "suspension")
    }
    trust = TrustBundle.load(
        sign_trust_bundle(forged, operator_key), operators=[service.ctx.operator_address]
    )
    holders = [(await c.get(f"/v1/credentials/{i}", headers=h(key))).json()["credential"] for i in ids]
    assert all(Verifier(trust=trust).verify(x).valid for x in holders)  # bundle mode alone: fooled

    pinned = ValidatorSet.from_json(dev_validator_set(service.ctx.deployment.chain_id))
    proofs = open_bundle_proofs(trust, pinned)
    assert proofs.header is not None and proofs.header.number == bundle["block"]["number"]
    verifier = Verifier(
        trust=ValidatorPinnedTrust(trust, pinned),
        header_trust=ValidatorHeaderTrust(pinned),
        proven_only=True,
        proof_package=proofs.package,
    )
    results = [verifier.verify(x) for x in holders]  # the holder copies carry no package of their own
    assert [x.valid for x in results] == [True, False, True]
    # the issuer records are proven too: the registry's bundle carries issuerProof for every issuer
    assert set(bundle["issuerProof"]) == {"accountProof", "storageProof"}
    for rec in bundle["issuers"]:
        proven = proofs.issuers.issuer(rec["id"])
        assert proven is not None and proven.name == rec["name"] and proven.uscc == rec["uscc"]
        assert [k.account for k in proven.keys.values()] == [k["account"] for k in rec["keys"]]
    assert results[1].check("status").reason.startswith("revoked on ")
    assert "4 of 4 pinned validators" in results[0].check("status").reason


def test_cosign_adds_operator_signatures_and_refuses_a_tampered_bundle(tmp_path):
    from registry.services.keys import encrypt_secret
    from verifier import TrustBundle, build_trust_bundle, eth_address, sign_trust_bundle

    keys = [bytes([0x21 + i]) * 32 for i in range(3)]
    (tmp_path / "pass").write_text("correct horse")
    for i, k in enumerate(keys):
        (tmp_path / f"op{i}.json").write_text(encrypt_secret("0x" + k.hex(), "correct horse"))
    body = build_trust_bundle(
        chain_id=31337,
        contracts={
            "issuerRegistry": "0x" + "11" * 20,
            "anchorRegistry": "0x" + "22" * 20,
            "dataFlowLedger": "0x" + "33" * 20,
        },
        block={
            "number": 5,
            "hash": "0x" + "44" * 32,
            "timestamp": 1_780_000_000,
            "stateRoot": "0x" + "55" * 32,
        },
        issuers=[],
        anchors=[],
    )
    (tmp_path / "b.json").write_text(json.dumps(sign_trust_bundle(body, keys[0])))

    def cosign(src: str, dst: str, i: int) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [
                str(CERTLEDGER),
                "bundle",
                "cosign",
                src,
                dst,
                "--keystore",
                f"op{i}.json",
                "--passphrase-file",
                "pass",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in proc.stdout + proc.stderr
        return proc

    assert cosign("b.json", "b2.json", 1).returncode == 0
    proc = cosign("b2.json", "b3.json", 2)
    assert proc.returncode == 0 and "3 operator signature(s)" in proc.stdout, proc.stderr
    ops = [eth_address(k) for k in keys]
    loaded = TrustBundle.load(json.loads((tmp_path / "b3.json").read_text()), operators=ops, threshold=3)
    assert set(loaded.signers) == set(ops)
    assert cosign("b3.json", "b4.json", 2).returncode == 0  # the same operator again counts once
    assert len(json.loads((tmp_path / "b4.json").read_text())["signatures"]) == 3
    tampered = json.loads((tmp_path / "b3.json").read_text())
    tampered["block"]["number"] = 6
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    bad = cosign("t.json", "t2.json", 1)
    assert bad.returncode == 2 and "not co-signed" in bad.stderr and "does not verify" in bad.stderr
    assert not (tmp_path / "t2.json").exists()
    wrong = subprocess.run(
        [
            str(CERTLEDGER),
            "bundle",
            "cosign",
            "b.json",
            "x.json",
            "--keystore",
            "op1.json",
            "--passphrase-file",
            "nope",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "passphrase file" in wrong.stderr
