"""Fixtures for the verifier tests: an offline world with issuers in both suites and batches."""

from __future__ import annotations

import pytest

from tests.verifier.factory import World


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
def anvil():
    """A real anvil node on a free port (skipped, with the reason, when node_modules lacks anvil)."""
    from tests.verifier.chain import ANVIL, Anvil

    if not ANVIL.exists():
        pytest.skip(f"no anvil at {ANVIL}: run `npm ci` to install @foundry-rs/anvil")
    node = Anvil()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def deployed(anvil):
    from tests.verifier.chain import Deployment

    return Deployment(anvil)
