"""Background work inside `certledger serve`: the issuance pipeline and the chain indexer."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("certledger.runtime")


async def start_background(ctx) -> None:
    from registry.services.pipeline import Pipeline

    ctx.pipeline = Pipeline(ctx)
    if ctx.settings.pipeline_enabled:
        ctx.background.append(asyncio.create_task(ctx.pipeline.run_forever(), name="pipeline"))
    ctx.indexer = None
    if ctx.settings.indexer_enabled:
        try:
            from ledger_node.indexer import Indexer
        except ImportError:
            return
        ctx.indexer = Indexer(ctx.rpc_url, ctx.deployment, ctx.engine, confirmations=ctx.settings.confirmations)
        ctx.background.append(asyncio.create_task(_index_forever(ctx), name="indexer"))


async def _index_forever(ctx) -> None:
    while True:
        try:
            await ctx.indexer.run_forever(ctx.settings.poll_interval_seconds * 5)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep serving; /health reports the indexer lag
            log.exception("indexer stopped; restarting in 2 s")
            await asyncio.sleep(2)
