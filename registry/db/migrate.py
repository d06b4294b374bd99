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


class PreBaselineDatabase(RuntimeError):
    """The database was created by a development version before the baseline migration."""


def upgrade(url: str, revision: str = "head") -> None:
    """Synchronous (runs its own event loop): call it from a thread inside async code.

    Refuses, with :class:`PreBaselineDatabase`, a database whose revision is not one of ours: one a
    development version made before migrations 0001-0012 were squashed into the baseline."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    cfg = alembic_config(url)
    at = current(url)
    if at is not None:
        try:
            ScriptDirectory.from_config(cfg).get_revision(at)
        except CommandError:
            raise PreBaselineDatabase(
                f"the database is at migration {at!r}, which this version does not know: it was created by "
                "a development version before the migrations were squashed into one baseline, and cannot "
                "be upgraded — create a new database (e.g. remove the data directory's registry.db)"
            ) from None
    command.upgrade(cfg, revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    engine = create_engine(sync_url)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
