"""The SQLite page cache per connection is a setting (issue 23: the service's memory grew with the
database until every connection's cache was full; BENCHMARKS.md "Scale", stop 31)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from registry.core.config import Settings
from registry.db.session import make_engine

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mib", [8, 64])
async def test_each_sqlite_connection_gets_the_page_cache_it_is_given(tmp_path, mib):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", sqlite_cache_mib=mib)
    try:
        async with engine.connect() as c:
            assert (await c.execute(text("PRAGMA cache_size"))).scalar() == -mib * 1024
    finally:
        await engine.dispose()


def test_the_setting_defaults_to_8_mib_and_refuses_what_is_not_a_size(monkeypatch):
    assert Settings().sqlite_cache_mib == 8
    monkeypatch.setenv("CERTLEDGER_SQLITE_CACHE_MIB", "64")
    assert Settings().sqlite_cache_mib == 64
    for bad in ("0", "-5", "lots", "5000"):
        monkeypatch.setenv("CERTLEDGER_SQLITE_CACHE_MIB", bad)
        with pytest.raises(ValidationError, match="sqlite_cache_mib"):
            Settings()
