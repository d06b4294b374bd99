"""Alembic environment: async engines (aiosqlite / asyncpg), both metadata sets."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from registry.db.migrate import target_metadata

config = context.config


def do_run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata(),
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata(),
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
