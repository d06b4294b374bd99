"""`certledger index`: follow the contracts' events into the database (mounted by registry.cli).

    certledger index --once                 # catch up to head - confirmations, then exit
    certledger index --confirmations 2      # catch up, then follow new blocks

Also runnable alone: `python -m ledger_node.index_cli --once`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger_node.cli import DataDir, Port, console, fail
from ledger_node.errors import LedgerNodeError


def index_command(
    data_dir: DataDir = Path(".certledger"),
    rpc: Annotated[
        str | None,
        typer.Option(envvar="CERTLEDGER_RPC_URL", help="JSON-RPC endpoint (default: the local node)."),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="Deployment manifest (default: DATA_DIR/deployment.json).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="CERTLEDGER_DATABASE_URL",
            help="SQLAlchemy async URL (default: sqlite+aiosqlite:///DATA_DIR/registry.db).",
        ),
    ] = None,
    confirmations: Annotated[
        int, typer.Option(min=0, help="Index only blocks this deep below the head.")
    ] = 0,
    once: Annotated[
        bool, typer.Option("--once", help="Catch up, then exit (default: keep following).")
    ] = False,
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between polls when following.")
    ] = 2.0,
    page_size: Annotated[int, typer.Option(min=1, help="Largest eth_getLogs block window.")] = 2000,
    port: Port = None,
) -> None:
    """Index the contracts' events (issuers, anchors, statuses, data flows) into the chain_* tables.

    Resumes from its checkpoint; survives restarts at any point and chain reorganisations.
    """
    from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError

    from ledger_node.deploy import load_manifest
    from ledger_node.node import AnvilNode, rpc_chain_id

    url = rpc or AnvilNode(data_dir, port=port).status().rpc_url
    manifest_path = manifest or data_dir / "deployment.json"
    db_url = database_url or f"sqlite+aiosqlite:///{data_dir / 'registry.db'}"
    try:
        deployment = load_manifest(manifest_path)
        chain_id = rpc_chain_id(url, timeout=5.0)
    except LedgerNodeError as exc:
        fail(str(exc))
    if chain_id != deployment.chain_id:
        fail(
            f"deployment manifest {manifest_path} is for chain id {deployment.chain_id}, "
            f"but the node at {url} is chain id {chain_id}"
        )
    try:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(db_url)
    except (ArgumentError, NoSuchModuleError, InvalidRequestError, ImportError, ValueError) as exc:
        fail(
            f"bad database URL {db_url!r}: {_first_line(exc)} "
            "(use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASS@HOST/DB)",
            2,
        )
    try:
        asyncio.run(
            _index(
                url,
                deployment,
                engine,
                confirmations=confirmations,
                once=once,
                poll_interval=poll_interval,
                page_size=page_size,
            )
        )
    except KeyboardInterrupt:
        console.print("indexer stopped")


async def _index(
    url, deployment, engine, *, confirmations: int, once: bool, poll_interval: float, page_size: int
) -> None:
    from ledger_node.indexer import Indexer, IndexerError, IndexProgress
    from ledger_node.projection import create_chain_tables

    try:
        try:
            await create_chain_tables(engine)
        except Exception as exc:  # noqa: BLE001 - any driver error: one line, no traceback
            fail(
                f"cannot open the database {engine.url.render_as_string(hide_password=True)}: "
                f"{_first_line(exc)}"
            )
        progress = Progress(
            TextColumn("indexing blocks"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[events]} events"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        task = None

        def on_progress(p: IndexProgress) -> None:
            nonlocal task
            if task is None:
                task = progress.add_task("index", total=max(1, p.target - p.start_block), events=0)
            progress.update(
                task,
                completed=p.block - p.start_block,
                total=max(1, p.target - p.start_block),
                events=p.events,
            )

        async with Indexer(
            url, deployment, engine, confirmations=confirmations, page_size=page_size, on_progress=on_progress
        ) as indexer:
            try:
                with progress:
                    stats = await indexer.run_once()
            except (LedgerNodeError, IndexerError) as exc:
                fail(str(exc))
            console.print(
                f"indexed {stats.events} events up to block {stats.end_block} "
                f"({stats.events_per_second:,.0f} events/s"
                + (f", {stats.reorgs} reorgs" if stats.reorgs else "")
                + ")"
            )
            if once:
                return
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
            indexer.on_progress = None
            console.print(f"following new blocks every {poll_interval:g}s (Ctrl-C to stop)")
            await indexer.run_forever(poll_interval)
    finally:
        await engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


if __name__ == "__main__":
    typer.run(index_command)
