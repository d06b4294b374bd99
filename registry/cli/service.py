"""``certledger serve``, ``certledger db upgrade`` and ``certledger audit``: run the registry service,
prepare its database, compare it with the chain."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from registry.cli._common import console, fail, load_settings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the registry service (embedded defaults: local anvil, started if needed, and SQLite)."""
    import uvicorn

    from registry.api.app import create_app

    settings = load_settings()
    _check_startup(settings)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=settings.access_log)


def _check_startup(settings: Any) -> None:
    """The configuration mistakes an operator makes, as one line each before uvicorn starts
    (inside the app's start-up they would end in a traceback)."""
    from ledger_node.deploy import load_manifest
    from ledger_node.errors import LedgerNodeError
    from registry.db.migrate import upgrade

    url = settings.resolved_database_url
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        fail(
            f"unsupported CERTLEDGER_DATABASE_URL {url.split(':')[0]!r}: use sqlite+aiosqlite:// or "
            "postgresql+asyncpg://",
            2,
        )
    if settings.rpc_url:
        try:
            load_manifest(settings.manifest_path)
        except LedgerNodeError as exc:
            fail(str(exc), 2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(url)
    except Exception as exc:  # noqa: BLE001 - the database is unreachable or refuses us
        fail(
            f"cannot prepare the database at {url.split('@')[-1]}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            2,
        )


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(envvar="CERTLEDGER_DATABASE_URL")] = None,
) -> None:
    """Apply the migrations to the database (also done on every service start)."""
    from registry.db.migrate import upgrade

    settings = load_settings()
    url = database_url or settings.resolved_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(url)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        fail(f"migration failed on {url.split('@')[-1]}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    console.print(f"database at {url.split('@')[-1]} is up to date")


def audit_command(
    spot: Annotated[int, typer.Option(help="Anchors to spot-check with view calls.")] = 25,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt-chain-status",
            help="Where only a status differs (a change made on the chain outside the registry), write the chain's "
            "status, reason and date into the database, each with an audit entry.",
        ),
    ] = False,
) -> None:
    """Compare the chain with the registry's database; print every difference (exit 1 if any remains)."""
    import asyncio

    from registry.services.context import ServiceContext
    from registry.services.reconcile import adopt_chain_status, audit

    settings = load_settings()

    async def run():
        ctx = await ServiceContext.create(settings)
        try:
            report = await audit(ctx, spot=spot)
            adopted, skipped = await adopt_chain_status(ctx, report) if adopt else ([], [])
            if adopted:  # what is left
                report = await audit(ctx, spot=spot)
            return report, adopted, skipped
        finally:
            await ctx.close()

    try:
        report, adopted, skipped = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        fail(f"audit could not run: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", 2)
    if as_json:
        print(
            json.dumps(
                report.to_json() | ({"adopted": adopted, "notAdopted": skipped} if adopt else {}),
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for line in adopted:
            console.print(f"  [green]adopted[/green] {line}", highlight=False, soft_wrap=True)
        for line in skipped:
            console.print(f"  [yellow]not adopted[/yellow] {line}", highlight=False, soft_wrap=True)
        console.print(
            f"audit at block {report.block}: {report.anchors_checked} batches, "
            f"{report.credentials_checked} credentials, {report.spot_checked} anchors spot-checked"
        )
        for d in report.differences:
            console.print(f"  [red]✗[/red] {d}", highlight=False, soft_wrap=True)
        console.print(
            "[green]clean: the chain and the database agree[/green]"
            if report.clean
            else f"[red]{len(report.differences)} differences[/red]"
            + (
                ""
                if adopt or not report.status_differences
                else f" ({len(report.status_differences)} of status only: --adopt-chain-status takes the chain's)"
            ),
            soft_wrap=True,
        )
    raise typer.Exit(0 if report.clean else 1)
