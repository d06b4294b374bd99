"""A registry with a few credentials for the verify page: a data authority holding a data asset
certificate over a known dataset (and a second one, to revoke), a market regulator's business
licence; the app served over real HTTP (uvicorn, in the test's event loop) for Chromium."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.samples import business_licence_record, data_asset_record, make_uscc
from tests.support.pages import DIGEST, anchored_copy, data_authority
from tests.support.services import CHROMIUM, CHROMIUM_ARGS


@dataclass
class Issued:
    service: object
    authority_key: str
    regulator_key: str
    certificate: dict  # holder copy of a DataAssetCertificate over DATASET
    certificate_id: str
    revocable: dict  # a second certificate, for the revocation case
    revocable_id: str
    licence: dict  # holder copy of a BusinessLicence
    licence_id: str
    relying_party: str
    holder_uscc: str
    extra: dict = field(default_factory=dict)

    async def revoke(self, credential_id: str, reason: str = "dataInaccurate") -> dict:
        s = self.service
        r = await s.client.post(
            f"/v1/credentials/{credential_id}/revoke",
            headers=s.h(self.authority_key),
            json={"reason": reason},
        )
        assert r.status_code == 200, r.text
        # the page verifies against a trust bundle cached for 5 s: take the fresh one now
        s.ctx.anchors_changed()
        return r.json()


@pytest.fixture()
async def issued(service):  # noqa: F811
    s = service
    authority_key = await data_authority(s)
    _, regulator_key = await s.create_org(
        name="广州市市场监督管理局",
        identifier="11440100MB2C93176P",
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    holder, bank = make_uscc(prefix="914406"), make_uscc(prefix="914401")
    ids = {}
    for name, key, typ, record in (
        ("certificate", authority_key, "DataAssetCertificate", data_asset_record(holder, bank, DIGEST)),
        (
            "revocable",
            authority_key,
            "DataAssetCertificate",
            data_asset_record(make_uscc(prefix="914406"), bank, DIGEST),
        ),
        ("licence", regulator_key, "BusinessLicence", business_licence_record()),
    ):
        r = await s.client.post("/v1/credentials", headers=s.h(key), json={"type": typ, "record": record})
        assert r.status_code == 202, r.text
        ids[name] = r.json()["id"]
    await s.drain()
    return Issued(
        service=s,
        authority_key=authority_key,
        regulator_key=regulator_key,
        certificate=await anchored_copy(s, authority_key, ids["certificate"]),
        certificate_id=ids["certificate"],
        revocable=await anchored_copy(s, authority_key, ids["revocable"]),
        revocable_id=ids["revocable"],
        licence=await anchored_copy(s, regulator_key, ids["licence"]),
        licence_id=ids["licence"],
        relying_party=bank,
        holder_uscc=holder,
    )


class Served:
    """The service's app on a real loopback port (uvicorn in this event loop, lifespan already run)."""

    def __init__(self, app):
        self.app = app
        self.server = None
        self.task = None
        self.base = ""

    async def __aenter__(self):
        import uvicorn

        from ledger_node.node import free_port

        port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
        )
        self.task = asyncio.create_task(self.server.serve())
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(400):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.025)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc):
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


@pytest.fixture()
async def served(issued):
    async with Served(issued.service.app) as srv:
        yield srv


@pytest.fixture()
async def browser():
    from tests.support.services import require_service

    require_service(CHROMIUM.exists(), "no Chromium at /usr/bin/chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


def write_json(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
