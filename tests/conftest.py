"""Shared fixtures: a real anvil node (session), a fresh deployment, and service requirements.

A test that needs PostgreSQL or Chromium calls `require_service(...)`: without the service it is
skipped with a visible reason, unless CERTLEDGER_REQUIRE_SERVICES=1 (set by .ci/run), where the
absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


def require_service(available: bool, reason: str) -> None:
    if available:
        return
    if os.environ.get("CERTLEDGER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory):
    """One real anvil node for the session, on a free port, state in a temporary directory."""
    require_service(ANVIL.exists(), f"no anvil: {ANVIL} missing (run `npm ci`)")
    from ledger_node.node import AnvilNode, free_port

    node = AnvilNode(tmp_path_factory.mktemp("anvil"), port=free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def chain(anvil_node):
    from ledger_node.chain import Chain

    return Chain(anvil_node.rpc_url)


@pytest.fixture()
def deployment(chain, tmp_path):
    """A fresh deployment of the three contracts (governance and regulator: dev key 0)."""
    from ledger_node import DEV_KEYS, deploy

    manifest, _ = deploy(chain, DEV_KEYS[0], tmp_path / "deployment.json")
    return manifest
