"""Alembic environment: async engines (aiosqlite / asyncpg), both metadata sets."""

import asyncio

from alembic import context
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from registry.db.migrate import target_metadata
from registry.db.session import set_new_file_page_size

config = context.config


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Leave out of comparisons the foreign keys PostgreSQL checks with triggers (reference_triggers.py)."""
    if (
        type_ == "foreign_key_constraint"
        and not reflected
        and context.get_bind().dialect.name == "postgresql"
    ):
        from registry.db.models import TRIGGER_CHECKED_KEYS

        columns = tuple(c.name for c in obj.columns)
        return not (len(columns) == 1 and (obj.table.name, columns[0]) in TRIGGER_CHECKED_KEYS)
    return True


def do_run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    if engine.dialect.name == "sqlite":  # (a new database file is made here, by the first migration)
        event.listen(
            engine.sync_engine, "connect", lambda dbapi_conn, _record: set_new_file_page_size(dbapi_conn)
        )
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata(), literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
