"""A real registry service in-process: FastAPI app + lifespan, on a given chain and deployment, on
SQLite or PostgreSQL; requests through httpx's ASGI transport (the ``service`` fixture)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx


class Service:
    def __init__(self, app, client: httpx.AsyncClient, admin_key: str):
        self.app, self.client, self.admin_key = app, client, admin_key
        #: issuances of contexts replaced (closed when the service stops, before its engine)
        self.retired: list = []

    @property
    def ctx(self):
        """The context the app serves with now (frozen: :meth:`replace_context` swaps it)."""
        return self.app.state.ctx

    @property
    def pipeline(self):
        return self.app.state.background.pipeline

    def h(self, key: str | None) -> dict:
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def create_org(self, *, name, identifier, roles, jurisdiction="CN-GD", types=(), suite="secp256k1"):
        r = await self.client.post(
            "/v1/organisations",
            headers=self.h(self.admin_key),
            json={
                "name": name,
                "identifier": identifier,
                "jurisdiction": jurisdiction,
                "roles": list(roles),
                "suite": suite,
                "credentialTypes": list(types),
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return body["organisation"], body["apiKey"]

    def configure(self, **changes: Any) -> None:
        """Settings are frozen: the service continues with a copy that has ``changes``."""
        self.replace_context(settings=self.ctx.settings.model_copy(update=changes))

    def replace_context(self, **fields: Any) -> None:
        """The service continues with a context that differs in ``fields`` (the context is frozen):
        the app, its issuance and its pipeline all take the new one, as a restart would. The
        engine, chain connection and caches are the same objects."""
        from registry.services.issuance import Issuance
        from registry.services.pipeline import Pipeline
        from registry.services.runtime import Background

        state = self.app.state
        assert not state.background.tasks, "replace the context of a service whose pipeline runs by hand"
        state.ctx = dataclasses.replace(state.ctx, **fields)
        self.retired.append(state.issuance)
        state.issuance = Issuance(state.ctx)
        state.background = Background(Pipeline(state.ctx))

    async def drain(self):
        await self.pipeline.drain()


async def anchor_txs(ctx: Any, batch_id: int | None = None) -> list:
    """The anchor transactions the registry recorded (its outbox rows of kind anchor), oldest first;
    with ``batch_id``, that batch's."""
    from sqlalchemy import select

    from registry.db.models import OutboxTx
    from registry.services.anchoring import anchor_target

    q = select(OutboxTx).where(OutboxTx.kind == "anchor").order_by(OutboxTx.id)
    if batch_id is not None:
        q = q.where(OutboxTx.target == anchor_target(batch_id))
    async with ctx.sessions() as s:
        return list((await s.execute(q)).scalars())


async def latest_anchor_tx(ctx: Any, batch_id: int) -> Any:
    """The batch's latest anchor transaction (its outbox row)."""
    rows = await anchor_txs(ctx, batch_id)
    assert rows, f"batch {batch_id} has no anchor transaction"
    return rows[-1]


@asynccontextmanager
async def running_service(
    chain: Any, deployment: Any, database_url: str, tmp_path: Path
) -> AsyncIterator[Service]:
    from registry.api.app import create_app
    from registry.core.config import Settings
    from registry.services.context import ServiceContext

    (tmp_path / "deployment.json").write_text(json.dumps(deployment.to_json()))
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        rpc_url=chain.rpc_url,
        manifest=tmp_path / "deployment.json",
        keystore_passphrase="test-passphrase",
        batch_size=50,
        batch_window_seconds=0.2,
        pipeline_enabled=False,
        indexer_enabled=False,
    )
    ctx = await ServiceContext.create(settings)
    try:
        app = create_app(settings, ctx=ctx)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
                service = Service(app, client, app.state.first_admin_key)
                try:
                    yield service
                finally:
                    for issuance in service.retired:
                        await issuance.close()
    finally:
        await ctx.close()


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD implied by GET is left out)."""
    try:  # FastAPI >= 0.16x keeps included routers lazily
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = list(app.routes)
    out = set()
    for r in routes:
        path, methods = getattr(r, "path", None), getattr(r, "methods", None)
        assert path is not None, f"a route without a path: {r!r}"
        for m in methods or ():
            if m != "HEAD":
                out.add((m, path))
    return out
