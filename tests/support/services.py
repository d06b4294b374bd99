"""The services a test may need beyond anvil: PostgreSQL and Chromium.

A test that needs one calls ``require_service(...)``: without it, it is skipped with a visible
reason, unless CERTLEDGER_REQUIRE_SERVICES=1 (set by .ci/run), where the absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get(
    "CERTLEDGER_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_service(available: bool, reason: str) -> None:
    if available:
        return
    if os.environ.get("CERTLEDGER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def pg_available() -> tuple[bool, str]:
    try:
        import psycopg
    except ImportError:
        return False, "psycopg not installed"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, f"no PostgreSQL at {PG_ADMIN_URL.split('@')[-1]}: {str(exc).splitlines()[0]}"
