"""Background work inside `certledger serve`: the issuance pipeline and the chain indexer."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger_node.indexer import Indexer
    from registry.services.context import ServiceContext
    from registry.services.pipeline import Pipeline

log = logging.getLogger("certledger.runtime")


#: The service's recursion limit: Python's default. py_ecc, which eth_account imports, raises it
#: process-wide to 100,000 for code of its own the service never runs; at that limit a request
#: body of JSON nested some tens of thousands deep overflows the C stack while it is decoded, and
#: the process dies of SIGSEGV instead of raising RecursionError (a 400).
RECURSION_LIMIT = 1000


def bound_recursion() -> None:
    """Put the recursion limit back to :data:`RECURSION_LIMIT`, after py_ecc has raised it (it does
    so once, when first imported: imported here first if it was not yet)."""
    import eth_account  # noqa: F401 - (imports py_ecc)

    sys.setrecursionlimit(RECURSION_LIMIT)


def settle_heap() -> None:
    """Once the service has started: collect, then move every object alive now (modules, ORM
    mappers, schemas, ABIs — they live as long as the process) out of the cyclic GC's scans
    (:func:`gc.freeze`). Otherwise each full collection during a bulk upload rescans them all: that
    was ~13% of the service process's CPU while writing 20,000 credentials. Objects allocated later
    are collected as usual."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Background:
    """The service's background work: the issuance pipeline (always there: tests and the demo drive
    it by hand when it does not run), the chain indexer (when enabled) and their tasks. Made by the
    API's lifespan, kept on ``app.state.background`` and injected into the routes that read it
    (registry.api.deps.BackgroundDep)."""

    pipeline: Pipeline
    indexer: Indexer | None = None
    tasks: tuple[asyncio.Task[None], ...] = ()

    async def stop(self) -> None:
        """Cancel the tasks, wait for them, and close the indexer."""
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        if self.indexer is not None:
            try:
                await self.indexer.close()
            except Exception:  # noqa: BLE001 - shutting down
                pass


def start_background(ctx: ServiceContext) -> Background:
    """The pipeline, and the tasks the settings ask for: the pipeline and the outbox's settle pass
    (``pipeline_enabled``), the indexer (``indexer_enabled``)."""
    from registry.services.pipeline import Pipeline

    pipeline = Pipeline(ctx)
    tasks: list[asyncio.Task[None]] = []
    if ctx.settings.pipeline_enabled:
        tasks.append(asyncio.create_task(pipeline.run_forever(), name="pipeline"))
        tasks.append(asyncio.create_task(_settle_forever(ctx), name="settle"))
    indexer = None
    if ctx.settings.indexer_enabled:
        from ledger_node.indexer import Indexer

        indexer = Indexer(ctx.rpc_url, ctx.deployment, ctx.engine, confirmations=ctx.settings.confirmations)
        tasks.append(asyncio.create_task(_index_forever(ctx, indexer), name="indexer"))
    return Background(pipeline, indexer, tuple(tasks))


async def _settle_forever(ctx: ServiceContext, every: float = 5.0) -> None:
    """Transactions whose receipt never reached the request that sent them (it timed out, or the
    process died), and intents never sent: the outbox's one settle pass (registry/services/outbox.py)
    over every kind whose settler is registered (status changes, flow declarations and decisions,
    registrations, pledge-registry transactions)."""
    from registry.core.errors import ChainUnavailable
    from registry.flows import decide, ledger  # noqa: F401 - register the flow declaration and decision settlers
    from registry.services import collateral, lifecycle  # noqa: F401 - register the pledge and status settlers
    from registry.services.outbox import settle

    while True:
        try:
            report = await settle(ctx)
            if report:
                log.info("outbox settled: %s", report)
            if report.applied:
                ctx.anchors_changed()
        except asyncio.CancelledError:
            raise
        except ChainUnavailable:
            pass  # /health reports the node; try again later
        except Exception:  # noqa: BLE001 - keep serving; try again later
            log.exception("settling the outbox failed")
        await asyncio.sleep(every)


async def _index_forever(ctx: ServiceContext, indexer: Indexer) -> None:
    while True:
        try:
            await indexer.run_forever(ctx.settings.poll_interval_seconds * 5)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep serving; /health reports the indexer lag
            log.exception("indexer stopped; restarting in 2 s")
            await asyncio.sleep(2)
