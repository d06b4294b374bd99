"""Async engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from registry.core.config import SQLITE_CACHE_MIB
from registry.core.errors import BadRequest, NotFound
from registry.db import sqlite_driver

#: The page size of a new SQLite database file (an existing file keeps its own: SQLite changes it only
#: on a VACUUM). A credential row is ~800 bytes: with 16 KiB pages an upload inserts a row in ~7.2 µs,
#: against ~8.0 with SQLite's default 4 KiB, in a slightly smaller file (820 bytes a row, against
#: 832; 8 KiB gave 7.5 µs, 32 KiB 7.1 µs and 849 bytes; docs/BENCHMARKS.md, stop 41).
SQLITE_PAGE_SIZE = 16384
#: how much write-ahead log SQLite lets grow before it copies the log into the database itself
WAL_AUTOCHECKPOINT_BYTES = 64 * 1024 * 1024


def set_new_file_page_size(dbapi_conn: Any) -> None:
    """Give a SQLite database that has no page yet :data:`SQLITE_PAGE_SIZE` (before anything else
    writes its header: ``journal_mode=WAL`` does). A no-op on a database that has its pages."""
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cur.close()


def make_engine(url: str, *, sqlite_cache_mib: int = SQLITE_CACHE_MIB) -> AsyncEngine:
    """The engine for ``url``; on SQLite each connection gets WAL, foreign keys and a page cache of
    ``sqlite_cache_mib`` (Settings.sqlite_cache_mib)."""
    if url.startswith("sqlite"):
        cache_kib = int(sqlite_cache_mib) * 1024
        # (one trip to the connection's thread per statement: registry/db/sqlite_driver.py)
        engine = create_async_engine(url, connect_args={"timeout": 30}, module=sqlite_driver.dbapi())

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL: readers don't block the writer
            set_new_file_page_size(dbapi_conn)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA cache_size=-{cache_kib}")  # (negative: KiB, not pages)
            # A large upload's commit would otherwise also copy the log into the database (at the
            # default 1,000 pages, after every upload of ~3,000 credentials); the service does that
            # in the background after each one, once its batches are anchored (ServiceContext.checkpoint_wal),
            # and this is the backstop: 64 MiB of log, in pages of the database's own size.
            cur.execute("PRAGMA page_size")
            page_size = cur.fetchone()[0]
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_BYTES // page_size}")
            cur.close()

        @event.listens_for(engine.sync_engine, "handle_error")
        def _close_cursor_of_lost_connection(context):
            # A statement cancelled mid-way (shutdown, a request whose client left) counts as a lost
            # connection: SQLAlchemy closes the connection without closing the cursor. While the
            # cursor's statement is not finalized, sqlite3_close_v2 (Python 3.11) leaves a zombie
            # connection that keeps its transaction and the database's write lock until the
            # cancelled task's traceback, which holds the cursor, is garbage-collected. Close it.
            # (ExceptionContext.cursor is documented, but SQLAlchemy 2.1 never sets it: the
            # execution context's cursor is the same one.) The registry's own cursors finish and
            # close their statement in the connection's thread (db/sqlite_driver.py); this closes a
            # server-side cursor's (``stream``), whose statement stays open between fetches.
            cursor = getattr(context, "cursor", None) or getattr(context.execution_context, "cursor", None)
            if context.is_disconnect and cursor is not None:
                try:
                    cursor.close()
                except Exception:  # noqa: BLE001 - the connection is closed next anyway
                    pass

        return engine
    if url.startswith("postgresql+asyncpg"):
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    raise BadRequest(
        f"unsupported database URL {url.split(':')[0]!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Any) -> int:
    """The rows an UPDATE or DELETE matched (``Result`` is typed without it; the executed statement's
    result is a ``CursorResult``)."""
    from sqlalchemy.engine import CursorResult

    return cast(CursorResult[Any], result).rowcount


_Row = TypeVar("_Row")


async def get_one(
    session: AsyncSession, model: type[_Row], key: Any, *, with_for_update: bool = False
) -> _Row:
    """``session.get`` of a row that must be there (an id read from another row, or a principal's
    own organisation): NotFound, naming it, if it is not."""
    row = await session.get(model, key, with_for_update=with_for_update)
    if row is None:
        raise NotFound(f"{getattr(model, '__tablename__', model.__name__)} {key} does not exist")
    return row
