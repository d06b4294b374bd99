"""A real registry service in-process: FastAPI app + lifespan, on the session anvil, with a
fresh deployment, on SQLite or PostgreSQL; requests through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.registry.samples import business_licence_record, data_asset_record  # noqa: F401  (re-export)


class Service:
    def __init__(self, app, ctx, client: httpx.AsyncClient, admin_key: str):
        self.app, self.ctx, self.client, self.admin_key = app, ctx, client, admin_key

    def h(self, key: str | None) -> dict:
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def create_org(self, *, name, identifier, roles, jurisdiction="CN-GD", types=(), suite="secp256k1"):
        r = await self.client.post("/v1/organisations", headers=self.h(self.admin_key), json={
            "name": name, "identifier": identifier, "jurisdiction": jurisdiction, "roles": list(roles),
            "suite": suite, "credentialTypes": list(types)})
        assert r.status_code == 201, r.text
        body = r.json()
        return body["organisation"], body["apiKey"]

    async def drain(self):
        await self.ctx.pipeline.drain()


@pytest.fixture()
async def service(chain, deployment, database_url, tmp_path, monkeypatch):
    from registry.api.app import create_app
    from registry.core.config import Settings
    from registry.services.context import ServiceContext

    (tmp_path / "deployment.json").write_text(json.dumps(deployment.to_json()))
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, rpc_url=chain.rpc_url,
                        manifest=tmp_path / "deployment.json", keystore_passphrase="test-passphrase",
                        batch_size=50, batch_window_seconds=0.2, pipeline_enabled=False, indexer_enabled=False)
    ctx = await ServiceContext.create(settings)
    app = create_app(settings, ctx=ctx)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            yield Service(app, ctx, client, ctx.admin_key_printed)
    await ctx.close()
