"""The registry's SQLite driver (registry/db/sqlite_driver.py): one trip to the connection's thread
per statement, with the same results as SQLAlchemy's own aiosqlite cursor (the reference); and the
page size of a new database file (registry/db/session.py)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from registry.db.migrate import upgrade
from registry.db.session import SQLITE_PAGE_SIZE, make_engine
from registry.db.sqlite_driver import OneTripCursor

pytestmark = pytest.mark.anyio

meta = MetaData()
things = Table(
    "things",
    meta,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), unique=True),
    Column("n", Integer),
)


async def _script(engine) -> list:
    """What a run of statements gives: rows, columns, row counts, last row ids, an executemany and
    the errors of bad statements, in order."""
    seen: list = []
    async with engine.begin() as c:
        await c.run_sync(meta.create_all)
        r = await c.execute(insert(things).values(name="a", n=1))
        seen.append(("insert", r.inserted_primary_key, r.rowcount))
        r = await c.execute(insert(things), [{"name": f"m{i}", "n": i} for i in range(5)])  # executemany
        seen.append(("insert many", r.rowcount))
        r = await c.execute(update(things).where(things.c.n < 3).values(n=things.c.n + 10))
        seen.append(("update", r.rowcount))
        r = await c.execute(update(things).where(things.c.n > 10).values(n=0).returning(things.c.name))
        seen.append(("update returning", sorted(r.scalars().all())))
        r = await c.execute(select(things).order_by(things.c.id))
        seen.append(("select", list(r.keys()), [tuple(row) for row in r]))
        r = await c.execute(select(things).where(things.c.name == "nobody"))
        seen.append(("select none", list(r.keys()), r.all()))
        r = await c.exec_driver_sql("SELECT count(*), max(n) FROM things")
        seen.append(("driver sql", r.all()))
        r = await c.exec_driver_sql("UPDATE things SET n = ? WHERE name = ?", [(7, "m1"), (8, "m2")])
        seen.append(("driver executemany", r.rowcount))
    for bad in ("SELECT nope FROM things", "INSERT INTO things (name, n) VALUES ('a', 1)"):
        async with engine.connect() as c:
            try:
                await c.exec_driver_sql(bad)
            except Exception as exc:  # noqa: BLE001 - what each raises is what is compared
                seen.append(("error", type(exc).__name__, str(exc.orig)))
    return seen


async def test_statements_give_what_sqlalchemys_own_cursor_gives(tmp_path):
    ours = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ours.db'}")
    reference = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}")
    try:
        got, expected = await _script(ours), await _script(reference)
    finally:
        await ours.dispose()
        await reference.dispose()
    assert got == expected
    assert ("error", "IntegrityError", "UNIQUE constraint failed: things.name") in got


async def test_a_statement_is_one_trip_to_the_connections_thread(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        async with engine.connect() as c:
            raw = (await c.get_raw_connection()).driver_connection
            assert isinstance(c.sync_connection.connection.dbapi_connection.cursor(), OneTripCursor)
            trips = []
            execute = raw._execute

            async def counted(fn, *args, **kwargs):
                trips.append(fn)
                return await execute(fn, *args, **kwargs)

            raw._execute = counted
            await c.execute(text("SELECT 1"))  # (the connection's first statement may begin more)
            trips.clear()
            assert (await c.execute(text("SELECT 2 UNION SELECT 3"))).scalars().all() == [2, 3]
            assert len(trips) == 1  # (SQLAlchemy's own cursor: open, execute, fetch, close)
    finally:
        await engine.dispose()


async def test_a_new_database_gets_16_kib_pages_and_an_old_one_keeps_its_own(tmp_path):
    migrated = tmp_path / "migrated.db"
    await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{migrated}")  # (as `certledger` makes it)
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as c:  # a database made before: SQLite's default page size
        c.execute("CREATE TABLE t (i INTEGER)")
        c.execute("INSERT INTO t VALUES (1)")
    c.close()
    for path, pages in ((migrated, SQLITE_PAGE_SIZE), (tmp_path / "new.db", SQLITE_PAGE_SIZE), (old, 4096)):
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            async with engine.begin() as c:
                await c.exec_driver_sql("CREATE TABLE IF NOT EXISTS u (i INTEGER)")
                await c.exec_driver_sql("INSERT INTO u VALUES (2)")
            async with engine.connect() as c:
                assert (await c.exec_driver_sql("PRAGMA page_size")).scalar() == pages, path.name
                assert (await c.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
                # the log is copied into the database at 64 MiB, whatever the page size
                assert (await c.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() * pages == 64 << 20
                assert (await c.exec_driver_sql("SELECT i FROM u")).scalars().all() == [2]
        finally:
            await engine.dispose()
