"""Fixtures every test directory shares: a real anvil node (session), a fresh deployment, the
databases (SQLite and a real PostgreSQL server) and the registry service in-process.

What is not a fixture lives in tests/support (the anvil launcher, service requirements, samples).
A module marked ``sqlite_only`` runs its ``database_url`` tests on SQLite alone (pages: the page is
the same on either database, and the registry's own tests cover both).
"""

from __future__ import annotations

import pytest

from tests.support.anvil import ANVIL
from tests.support.services import PG_ADMIN_URL, pg_available, require_service


def pytest_collection_modifyitems(config, items):
    """Leave out the PostgreSQL variant of tests in ``sqlite_only`` modules (deselected, not skipped)."""
    keep, drop = [], []
    for item in items:
        param = getattr(getattr(item, "callspec", None), "params", {}).get("database_url")
        (drop if param == "postgres" and item.get_closest_marker("sqlite_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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


# -- databases -----------------------------------------------------------------------------
@pytest.fixture()
def pg_database_url():
    """A fresh PostgreSQL database (created and dropped by the test): an asyncpg SQLAlchemy URL."""
    ok, reason = pg_available()
    require_service(ok, reason)
    import uuid

    import psycopg

    name = f"certledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def sqlite_database_url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'certledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """Each test using this runs on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_database_url")
    return request.getfixturevalue("pg_database_url")


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


# -- the registry service ------------------------------------------------------------------
@pytest.fixture()
async def service(chain, deployment, database_url, tmp_path):
    """The registry service in-process on the session anvil and a fresh deployment (tests.support.service)."""
    from tests.support.service import running_service

    async with running_service(chain, deployment, database_url, tmp_path) as svc:
        yield svc
