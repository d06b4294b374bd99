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


# -- databases -----------------------------------------------------------------------------
PG_ADMIN_URL = os.environ.get("CERTLEDGER_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


def _pg_available() -> tuple[bool, str]:
    try:
        import psycopg
    except ImportError:
        return False, "psycopg not installed"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, f"no PostgreSQL at {PG_ADMIN_URL.split('@')[-1]}: {str(exc).splitlines()[0]}"


@pytest.fixture()
def pg_database_url():
    """A fresh PostgreSQL database (created and dropped by the test): an asyncpg SQLAlchemy URL."""
    ok, reason = _pg_available()
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
