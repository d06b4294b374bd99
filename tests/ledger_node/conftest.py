"""Fixtures for the indexer tests: a private in-memory anvil made for long histories."""

from __future__ import annotations

import pytest

from tests.support.anvil import BULK_ARGS, PrivateAnvil


@pytest.fixture(scope="module")
def bulk_anvil(anvil_node):
    """A private in-memory anvil with a high gas limit and no base fee (tests.support.anvil), so the
    session's ``anvil_node`` stays small. Depends on ``anvil_node`` for its "no anvil" skip/failure."""
    node = PrivateAnvil(*BULK_ARGS)
    yield node
    node.stop()


@pytest.fixture()
def bulk_deployment(bulk_anvil, tmp_path):
    """A fresh deployment on the private anvil (governance and regulator: dev key 0)."""
    return bulk_anvil.deploy(tmp_path / "deployment.json")
