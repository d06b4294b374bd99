"""Fixtures for the verifier tests: an offline world with issuers in both suites and batches."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.factory import World


@pytest.fixture(scope="module")
def world() -> World:
    """Issuers in both suites, a batch of each credential type from each, and the signed bundle."""
    w = World()
    w.batches = {}  # type: ignore[attr-defined]
    for suite in ("secp256k1", "sm2-sm3"):
        issuer = w.add_issuer(suite, name=f"广东省政务服务和数据管理局 ({suite})")
        for type_name in ("BusinessLicence", "OperatingPermit", "DataAssetCertificate"):
            w.batches[(suite, type_name)] = w.issue(issuer, [w.document(issuer, type_name) for _ in range(6)])  # type: ignore[attr-defined]
    return w


@pytest.fixture(scope="module")
def trust(world):
    return world.trust()


@pytest.fixture(scope="session")
def anvil(anvil_node):
    """A private anvil for the verifier's chain tests (web3 deployments of their own); depends on
    ``anvil_node`` for its "no anvil" skip, a failure in CI."""
    from tests.support.anvil import PrivateAnvil

    node = PrivateAnvil()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def deployed(anvil):
    from tests.support.contracts import Deployment

    return Deployment(anvil)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """certledger-verify's inputs: credentials, a revoked one, fresh, old and tampered bundles."""
    import copy
    import json

    from tests.support.verify_cli import FRESH

    d = tmp_path_factory.mktemp("cli")
    w = World()
    issuer = w.add_issuer()
    copies = w.issue(issuer, [w.document(issuer, "DataAssetCertificate") for _ in range(3)])
    w.revoked[int(copies[2]["credentialStatus"][0]["statusListIndex"])] = {
        "reason": 2,
        "timestamp": 1_772_409_600,
    }
    (d / "creds").mkdir()
    for i, c in enumerate(copies[:2]):
        (d / "creds" / f"c{i}.json").write_text(json.dumps(c, ensure_ascii=False), encoding="utf-8")
    (d / "revoked.json").write_text(json.dumps(copies[2], ensure_ascii=False), encoding="utf-8")
    # Exported an hour before the verification time AT, within the default maximum age (24h).
    (d / "bundle.json").write_text(json.dumps(w.bundle(block_timestamp=FRESH)), encoding="utf-8")
    (d / "old-bundle.json").write_text(json.dumps(w.bundle()), encoding="utf-8")  # 2026-01-09
    tampered = copy.deepcopy(w.bundle(block_timestamp=FRESH))
    tampered["block"]["number"] += 1
    (d / "tampered-bundle.json").write_text(json.dumps(tampered), encoding="utf-8")
    return d, w


@pytest.fixture(scope="module")
def batch(anvil, deployed):
    """Six licences anchored; #1 revoked (superseded), #2 suspended (holder request), the rest valid
    (tests/verifier/test_proof_package.py, test_proof_bundle.py)."""
    from tests.support.contracts import ISSUER_KEY
    from tests.support.factory import World
    from tests.support.proofs import ISSUER_NAME, _b
    from verifier import eth_address

    w = World(chain_id=deployed.chain_id, anchor_registry=deployed.anchors.address.lower())
    issuer = w.add_issuer(name=ISSUER_NAME)
    issuer.id = deployed.register_issuer(ISSUER_KEY, ISSUER_NAME, issuer.uscc, [1, 2, 3])
    issuer.key, issuer.account = ISSUER_KEY, eth_address(ISSUER_KEY)
    copies = w.issue(issuer, [w.document(issuer) for _ in range(6)])
    root = _b(copies[0]["proof"]["merkleRoot"])
    receipt = deployed.anchor(ISSUER_KEY, root, 1, len(copies))
    for c in copies:
        c["proof"]["anchor"]["txHash"] = "0x" + bytes(receipt["transactionHash"]).hex()
        c["proof"]["anchor"]["blockNumber"] = int(receipt["blockNumber"])

    def args(c: dict[str, Any]) -> tuple[Any, ...]:
        p = c["proof"]
        return root, _b(p["targetHash"]), _b(p["subjectHash"]), [_b(x) for x in p["merkleProof"]]

    deployed.revoke_credential(ISSUER_KEY, *args(copies[1]), 2)
    deployed._send(deployed.anchors.functions.suspendCredential(*args(copies[2]), 7), ISSUER_KEY)
    return copies, root
