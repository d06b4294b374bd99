"""A SQLite writer cancelled in the middle of a statement (a service shutting down, a request whose
client left) must not leave its write transaction holding the database's one write lock.

SQLAlchemy treats the cancellation as a lost connection: it closes the connection without closing
the statement's cursor first. On Python 3.11 the sqlite3 module then closes it with
``sqlite3_close_v2``, which, while a statement is not finalized, leaves a "zombie" connection that
keeps its transaction, and the write lock with it, until the cancelled task's traceback (which
holds the cursor) is garbage-collected. Seen in CI as "database is locked" after SQLite's 30 s busy
timeout, in a test that cancelled the pipeline while it leased batches."""

from __future__ import annotations

import asyncio
import gc

import pytest
from sqlalchemy import text

from registry.db.session import make_engine

pytestmark = pytest.mark.anyio

SLOW_INSERT = (  # ~1 s of work in one statement that returns rows (as the pipeline's lease does)
    "INSERT INTO t WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000000) "
    "SELECT i FROM c WHERE i % 1000000 = 0 RETURNING i"
)


@pytest.mark.parametrize("cursor", ["one trip", "server-side"])
async def test_a_writer_cancelled_mid_statement_leaves_the_database_writable(tmp_path, cursor):
    """The registry's own cursors (registry/db/sqlite_driver.py) finish and close their statement in
    the connection's thread whatever happens to the task; a server-side cursor (``stream``) keeps
    its statement open, and db/session.py closes it when SQLAlchemy drops the connection."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    gc.disable()  # (a collection would free the cursor, and so the lock, by chance)
    try:
        async with engine.begin() as c:
            await c.execute(text("CREATE TABLE t (i INTEGER)"))
        started = asyncio.Event()

        async def writer() -> None:
            async with engine.begin() as c:
                await c.execute(text("INSERT INTO t VALUES (0)"))  # the write transaction is open
                started.set()
                if cursor == "server-side":
                    async for _ in await c.stream(text(SLOW_INSERT)):
                        pass
                else:
                    await c.execute(text(SLOW_INSERT))

        task = asyncio.create_task(writer())
        await started.wait()
        await asyncio.sleep(0.1)  # in the slow statement, on the driver's thread
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()  # (and `task` still holds its traceback)
        async with engine.begin() as c:
            await c.execute(text("PRAGMA busy_timeout=2000"))
            await c.execute(text("INSERT INTO t VALUES (1)"))  # "database is locked" if it leaked
        async with engine.connect() as c:
            # the cancelled transaction was rolled back
            assert (await c.execute(text("SELECT i FROM t"))).scalars().all() == [1]
    finally:
        gc.enable()
        await engine.dispose()
