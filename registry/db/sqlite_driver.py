"""SQLAlchemy's aiosqlite adaptation with one trip to the connection's thread per statement.

aiosqlite runs each call on a sqlite3 connection in that connection's own thread; every call is a
trip there and back (~75 µs on the 2-core machine: a queue, a thread woken, the event loop woken).
SQLAlchemy's adapted cursor makes four or five of them per statement: it opens an aiosqlite cursor,
executes, fetches the rows and closes the cursor, each a trip. A one-row SELECT took ~375 µs, of
which SQLite's own work is a few. Here a statement is one trip: the function run in the thread
opens a sqlite3 cursor, executes, fetches every row, notes the description, row count and last row
id, and closes the cursor. The same SELECT takes ~162 µs; the anchoring after an upload makes ~20
statements one after the other (docs/BENCHMARKS.md, stop 41).

The statement's cursor is closed in the thread whatever happens to the task awaiting it: a task
cancelled mid-statement leaves no open statement behind (see db/session.py and
tests/registry/test_sqlite_cancel.py for why that matters on SQLite).

Server-side cursors (``stream``, ``yield_per``) keep SQLAlchemy's own class: they fetch in parts.

``make_engine`` passes :func:`dbapi` as the engine's ``module``; the URL stays ``sqlite+aiosqlite``.
The classes build on SQLAlchemy 2.1's asyncio adaptation (``connectors/asyncio.py``; 2.0's differs,
hence pyproject's lower bound). What this needs from aiosqlite beyond its documented API is
``Connection._execute(fn)``, the call its own cursors make for every method, and ``_conn``, the
sqlite3 connection (both in aiosqlite 0.20, the lower bound, to 0.22; tests/registry/test_sqlite_driver.py
fails if either goes).
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


def _run(conn: sqlite3.Connection, many: bool, operation: str, parameters: Any) -> tuple:
    """In the connection's thread: one statement from cursor to close, as
    (description, rows, rowcount, lastrowid)."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement is one trip to the connection's thread (the module's docstring).
    What the statement gave — description, rows, row count, last row id — is kept here."""

    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: Any):  # (no aiosqlite cursor is opened: no trip)
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # (the base class's "nothing to close")
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _trip(self, many: bool, operation: Any, parameters: Any) -> None:
        async with self._adapt_connection._execute_mutex:
            conn: aiosqlite.Connection = self._connection
            self._description, rows, self._rowcount, self._lastrowid = await conn._execute(
                _run, conn._conn, many, operation, parameters
            )
            self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(False, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._trip(True, operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        return None  # (its statement's cursor was closed in the thread)

    def close(self) -> None:
        self._rows.clear()


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        # (SQLAlchemy's connect opens the aiosqlite connection, its thread a daemon; its adapter is
        # then swapped for ours, on the same connection)
        adapted = super().connect(*arg, **kw)
        return _Connection(self, adapted._connection)


def dbapi() -> Any:
    """The DB-API module to create a ``sqlite+aiosqlite`` engine with (``module=``)."""
    return _DBAPI(aiosqlite, sqlite3)
