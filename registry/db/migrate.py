"""Apply the Alembic migrations (on service start and by `certledger db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def target_metadata():
    from registry.db.models import Base

    metas = [Base.metadata]
    try:
        from ledger_node.projection import ChainBase

        metas.append(ChainBase.metadata)
    except ImportError:  # pragma: no cover - projection module always ships
        pass
    return metas


def alembic_config(url: str) -> Config:
    cfg = Config(str(INI))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Synchronous (runs its own event loop): call it from a thread inside async code."""
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    engine = create_engine(sync_url)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
