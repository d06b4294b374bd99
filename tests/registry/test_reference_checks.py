"""A credential names an issuer and a batch that exist, on both databases: SQLite checks its
declared foreign keys; PostgreSQL checks the statement-level triggers of the baseline migration
(reference_triggers.py), which replaced the two per-row foreign keys. These tests hold both to
what a foreign key refuses, including under concurrent transactions on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from registry.db.migrate import upgrade
from registry.db.session import make_engine
from registry.services.docpack import pack
from registry.services.issuance import _RowWriter
from registry.services.prepare import sqlite_datetime

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 2, tzinfo=UTC)
ORG, OTHER_ORG, BATCH, OTHER_BATCH, MISSING = 1, 2, 1, 2, 99


async def _make(database_url: str):
    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    async with engine.begin() as c:
        for org in (ORG, OTHER_ORG):
            await c.execute(
                text(
                    "INSERT INTO organisations (id, name, identifier, jurisdiction, roles, "
                    "credential_types, created_at) VALUES (:id, :n, :n, 'CN', '[]', '[]', :t)"
                ),
                {"id": org, "n": f"org {org}", "t": NOW},
            )
        for batch in (BATCH, OTHER_BATCH):
            await c.execute(
                text(
                    "INSERT INTO batches (id, issuer_org_id, credential_type, state, count, attempts, "
                    "status, status_reason, created_at) VALUES (:id, 1, 1, 'sealed', 1, 0, 1, 0, :t)"
                ),
                {"id": batch, "t": NOW},
            )
    return engine


@pytest.fixture()
async def engine(database_url):
    engine = await _make(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture()
async def pg_engine(pg_database_url):
    engine = await _make(pg_database_url)
    yield engine
    await engine.dispose()


def _values(n: int, org: int = ORG, batch: int | None = BATCH) -> dict:
    return {
        "id": f"urn:uuid:c{n}",
        "ix": n,
        "org": org,
        "batch": batch,
        "h": "0x" + "11" * 32,
        "seed": b"\0" * 32,
        "t": NOW,
    }


async def _insert(c, n: int, org: int = ORG, batch: int | None = BATCH) -> None:
    await c.execute(
        text(
            "INSERT INTO credentials (id, status_index, issuer_org_id, credential_type, "
            "subject_identifier, target_hash, subject_hash, packed_document, salt_seed, accepted_at, status, "
            "status_reason, batch_id) VALUES (:id, :ix, :org, 1, 'S', :h, :h, :seed, :seed, :t, 1, 0, :batch)"
        ),
        _values(n, org, batch),
    )


async def _count(engine) -> int:
    async with engine.connect() as c:
        return (await c.execute(text("SELECT count(*) FROM credentials"))).scalar_one()


def _is_reference_error(exc: Exception) -> bool:
    """SQLite's foreign key error, or PostgreSQL's foreign_key_violation (SQLSTATE 23503; raised by
    asyncpg itself on the COPY path, which bypasses SQLAlchemy)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "23503" or "FOREIGN KEY constraint failed" in str(orig)


async def _refused(engine, statement) -> IntegrityError:
    with pytest.raises(IntegrityError) as info:
        async with engine.begin() as c:
            await statement(c)
    assert _is_reference_error(info.value), info.value
    return info.value


async def test_a_credential_naming_a_missing_issuer_or_batch_is_refused(engine, database_url):
    async with engine.begin() as c:
        await _insert(c, 1)
        await _insert(c, 2, batch=None)  # waiting for a batch: names none
    err = await _refused(engine, lambda c: _insert(c, 3, org=MISSING))
    if database_url.startswith("postgresql"):  # the trigger raises what the foreign key raised
        assert err.orig.sqlstate == "23503"
        assert (
            err.orig.__cause__.detail == 'Key (issuer_org_id)=(99) is not present in table "organisations".'
        )
    err = await _refused(engine, lambda c: _insert(c, 4, batch=MISSING))
    if database_url.startswith("postgresql"):
        assert err.orig.sqlstate == "23503"
        assert err.orig.__cause__.detail == 'Key (batch_id)=(99) is not present in table "batches".'
    assert await _count(engine) == 2


@pytest.mark.parametrize("bad", ["issuer", "batch"])
async def test_a_bulk_write_with_one_bad_reference_stores_nothing(engine, database_url, bad):
    """The upload's own path (COPY on PostgreSQL, executemany on SQLite): one row of 500 naming a
    missing issuer or batch refuses the statement, and its transaction stores no row."""
    sqlite = database_url.startswith("sqlite")
    at = sqlite_datetime(NOW) if sqlite else NOW
    rows, batch_ids = [], []
    for n in range(500):
        org = MISSING if bad == "issuer" and n == 250 else ORG
        rows.append(
            (
                f"urn:uuid:b{n}",
                n,
                "S",
                "0x" + "11" * 32,
                "0x" + "22" * 32,
                pack(b"{}"),
                b"\1" * 32,
                None,  # valid_until
                None,  # licence_key
                org,
                1,
                at,
                1,
                0,
            )
        )
        batch_ids.append(MISSING if bad == "batch" and n == 250 else BATCH)
    with pytest.raises((IntegrityError, asyncpg.ForeignKeyViolationError)) as info:
        async with engine.begin() as c:
            writer = _RowWriter(c, sqlite)
            await writer.write(rows, batch_ids)
    assert _is_reference_error(info.value)
    assert await _count(engine) == 0
    async with engine.begin() as c:  # the same rows with good references are stored
        rows[250] = rows[250][:9] + (ORG,) + rows[250][10:]
        batch_ids[250] = BATCH
        await _RowWriter(c, sqlite).write(rows, batch_ids)
    assert await _count(engine) == 500


async def test_moving_a_credential_to_a_missing_batch_or_issuer_is_refused(engine):
    async with engine.begin() as c:
        await _insert(c, 1)
        await _insert(c, 2)
    await _refused(
        engine, lambda c: c.execute(text("UPDATE credentials SET batch_id = 99 WHERE id = 'urn:uuid:c1'"))
    )
    await _refused(engine, lambda c: c.execute(text("UPDATE credentials SET issuer_org_id = 99")))
    async with engine.begin() as c:  # other changes, and moves to batches that exist, pass
        await c.execute(text("UPDATE credentials SET status = 2"))
        await c.execute(
            text("UPDATE credentials SET batch_id = 2, issuer_org_id = 2 WHERE id = 'urn:uuid:c1'")
        )
        await c.execute(text("UPDATE credentials SET batch_id = NULL WHERE id = 'urn:uuid:c2'"))
    async with engine.connect() as c:
        got = (
            await c.execute(text("SELECT id, batch_id, issuer_org_id, status FROM credentials ORDER BY id"))
        ).all()
    assert [tuple(r) for r in got] == [("urn:uuid:c1", 2, 2, 2), ("urn:uuid:c2", None, ORG, 2)]


async def test_a_batch_or_issuer_still_named_cannot_be_deleted_or_renumbered(engine, database_url):
    async with engine.begin() as c:
        await _insert(c, 1)
    await _refused(engine, lambda c: c.execute(text("DELETE FROM batches WHERE id = 1")))
    await _refused(engine, lambda c: c.execute(text("UPDATE batches SET id = 7 WHERE id = 1")))
    await _refused(engine, lambda c: c.execute(text("DELETE FROM organisations WHERE id = 1")))
    await _refused(engine, lambda c: c.execute(text("UPDATE organisations SET id = 7 WHERE id = 1")))
    if database_url.startswith("postgresql"):
        # (with their trees: batch_trees' declared key refuses a TRUNCATE of batches alone)
        await _refused(engine, lambda c: c.execute(text("TRUNCATE batches, batch_trees")))
        # CASCADE follows the declared keys (batches, API keys, ...), no longer to credentials
        await _refused(engine, lambda c: c.execute(text("TRUNCATE organisations CASCADE")))
    async with engine.begin() as c:  # a parent nothing names goes; so does one its rows leave first
        await c.execute(text("DELETE FROM batches WHERE id = 2"))
        await c.execute(text("UPDATE batches SET state = 'signed' WHERE id = 1"))  # not its id: no check
        await c.execute(text("UPDATE credentials SET batch_id = NULL"))  # how the sealer dissolves a batch
        await c.execute(text("DELETE FROM batches WHERE id = 1"))
    async with engine.connect() as c:
        assert (await c.execute(text("SELECT count(*) FROM batches"))).scalar_one() == 0
    if database_url.startswith("postgresql"):  # and with the credentials truncated in the same command
        async with engine.begin() as c:
            await c.execute(text("TRUNCATE credentials, organisations CASCADE"))


# -- PostgreSQL: concurrent transactions ----------------------------------------------------------


def _raw_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _wait_until_blocked(watch, pid: int) -> None:
    for _ in range(200):
        if await watch.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid) == "Lock":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first")


INSERT = (
    "INSERT INTO credentials (id, status_index, issuer_org_id, credential_type, subject_identifier, "
    "target_hash, subject_hash, packed_document, salt_seed, accepted_at, status, status_reason, batch_id) "
    "VALUES ($1, $2, 1, 1, 'S', 'h', 'h', '\\x00'::bytea, '\\x00'::bytea, now(), 1, 0, $3)"
)


@pytest.fixture()
async def three_connections(pg_database_url):
    """Three connections to a PostgreSQL database holding the two organisations and batches (SQLite
    has one writer at a time: nothing to race)."""
    engine = await _make(pg_database_url)  # the organisations and batches, then three plain connections
    await engine.dispose()
    conns = [await asyncpg.connect(_raw_url(pg_database_url)) for _ in range(3)]
    yield conns
    for c in conns:
        await c.close()


async def test_deleting_a_batch_an_open_transaction_fills_waits_and_then_fails(three_connections):
    filler, deleter, watch = three_connections
    tx = filler.transaction()
    await tx.start()
    await filler.execute(INSERT, "urn:uuid:x1", 1, BATCH)
    delete = asyncio.create_task(deleter.execute("DELETE FROM batches WHERE id = 1"))
    await _wait_until_blocked(watch, deleter.get_server_pid())
    assert not delete.done()
    await tx.commit()
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await delete
    assert await watch.fetchval("SELECT count(*) FROM batches WHERE id = 1") == 1


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_filling_a_batch_an_open_transaction_deletes_waits_for_its_outcome(three_connections, outcome):
    filler, deleter, watch = three_connections
    tx = deleter.transaction()
    await tx.start()
    await deleter.execute("DELETE FROM batches WHERE id = 1")
    insert = asyncio.create_task(filler.execute(INSERT, "urn:uuid:x1", 1, BATCH))
    await _wait_until_blocked(watch, filler.get_server_pid())
    assert not insert.done()
    if outcome == "commit":
        await tx.commit()
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="batches"):
            await insert
        assert await watch.fetchval("SELECT count(*) FROM credentials") == 0
    else:
        await tx.rollback()
        await insert
        assert await watch.fetchval("SELECT batch_id FROM credentials") == BATCH


async def test_a_batch_made_by_an_open_transaction_cannot_be_named_before_it_commits(three_connections):
    maker, filler, _ = three_connections
    tx = maker.transaction()
    await tx.start()
    made = await maker.fetchval(
        "INSERT INTO batches (id, issuer_org_id, credential_type, state, count, attempts, "
        "status, status_reason, created_at) VALUES (3, 1, 1, 'sealed', 1, 0, 1, 0, now()) "
        "RETURNING id"
    )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await filler.execute(INSERT, "urn:uuid:x1", 1, made)
    await tx.commit()
    await filler.execute(INSERT, "urn:uuid:x1", 1, made)


def test_the_baseline_installs_the_triggers_and_downgrades_them_away(pg_database_url):
    from alembic import command
    from sqlalchemy import create_engine

    from registry.db.migrate import alembic_config

    engine = create_engine(pg_database_url.replace("+asyncpg", "+psycopg"))

    def schema() -> tuple[list[str], list[str]]:
        with engine.connect() as c:
            keys = (
                c.execute(
                    text(
                        "SELECT conname FROM pg_constraint WHERE conrelid = 'credentials'::regclass "
                        "AND contype = 'f' ORDER BY conname"
                    )
                )
                .scalars()
                .all()
            )
            triggers = (
                c.execute(
                    text(
                        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                        "AND tgname LIKE 'credentials%' ORDER BY tgname"
                    )
                )
                .scalars()
                .all()
            )
        return keys, triggers

    upgrade(pg_database_url)
    keys, triggers = schema()
    assert keys == [] and len(triggers) == 6
    command.downgrade(alembic_config(pg_database_url), "base")  # the triggers and functions go too
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'certledger_%'")).scalar() == 0
    upgrade(pg_database_url)
    assert schema() == (keys, triggers)
    engine.dispose()


async def test_a_dump_restores_with_the_checks_in_force(pg_engine, pg_database_url):
    """OPERATIONS.md's backup: `pg_dump -Fc`, then `pg_restore` into an empty database and again
    with --clean. pg_dump puts triggers after the data (as it does foreign keys), so the rows load
    in any order, and the restored database refuses what the original refused."""
    import os
    import shutil
    import subprocess
    import uuid
    from urllib.parse import urlsplit

    import psycopg

    from tests.support.services import PG_ADMIN_URL, require_service

    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    require_service(bool(pg_dump and pg_restore), "no pg_dump / pg_restore on PATH")
    async with pg_engine.begin() as c:
        await _insert(c, 1)
        await _insert(c, 2, batch=None)
    url = urlsplit(_raw_url(pg_database_url))
    env = {
        **os.environ,
        "PGHOST": url.hostname,
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username,
        "PGPASSWORD": url.password or "",
    }
    dump = subprocess.run(
        [pg_dump, "-Fc", url.path.lstrip("/")], env=env, capture_output=True, check=True
    ).stdout
    copy = f"certledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{copy}"')
    try:
        for extra in ([], ["--clean", "--if-exists"]):
            subprocess.run(
                [pg_restore, "--exit-on-error", "-d", copy, *extra],
                input=dump,
                env=env,
                capture_output=True,
                check=True,
            )
        restored = make_engine(pg_database_url.rsplit("/", 1)[0] + "/" + copy)
        try:
            assert await _count(restored) == 2
            await _refused(restored, lambda c: c.execute(text("DELETE FROM batches WHERE id = 1")))
            await _refused(restored, lambda c: _insert(c, 3, batch=MISSING))
        finally:
            await restored.dispose()
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
