"""The service's own write transactions on SQLite queue in the process (ServiceContext.writing),
not in SQLite's busy handler; on PostgreSQL they run side by side."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def test_write_transactions_queue_on_sqlite_and_overlap_on_postgresql(service, database_url):
    events: list[str] = []
    inside = asyncio.Event()

    async def writer(name: str, hold: float) -> None:
        async with service.ctx.writing() as s:
            events.append(f"{name} in")
            inside.set()
            await s.execute(text("UPDATE counters SET value = value WHERE name = 'status_index'"))
            await asyncio.sleep(hold)
            events.append(f"{name} out")

    first = asyncio.create_task(writer("first", 0.5))
    await inside.wait()
    await writer("second", 0)
    await first
    if database_url.startswith("sqlite"):
        assert events == ["first in", "first out", "second in", "second out"]
    else:  # PostgreSQL: the second begins while the first is open (then waits for the row it updates)
        assert events.index("second in") < events.index("first out")


async def test_a_pipeline_pass_behind_an_open_write_transaction_anchors_once_it_commits(service, database_url):
    """SQLite: a pass that starts while another write transaction is open waits for it at the gate
    (not in SQLite's busy handler) and completes after it. PostgreSQL: it does not wait."""
    from tests.registry.samples import business_licence_record, make_uscc

    _, key = await service.create_org(name="广州市市场监督管理局", identifier=make_uscc(prefix="114401"),
                                      roles=["issuer"], types=["BusinessLicence"])
    r = await service.client.post("/v1/credentials", headers=service.h(key),
                                  json={"type": "BusinessLicence", "record": business_licence_record()})
    assert r.status_code == 202, r.text
    released = asyncio.Event()

    async def long_writer() -> None:
        async with service.ctx.writing() as s:
            await s.execute(text("UPDATE counters SET value = value WHERE name = 'status_index'"))
            await released.wait()

    holder = asyncio.create_task(long_writer())
    await asyncio.sleep(0.1)
    step = asyncio.create_task(service.drain())
    if database_url.startswith("sqlite"):
        await asyncio.sleep(0.3)
        assert not step.done() and service.ctx.write_gate.locked()
    else:
        await asyncio.wait_for(step, 30)
    released.set()
    await holder
    await asyncio.wait_for(step, 30)
    r = await service.client.get(f"/v1/credentials/{r.json()['id']}", headers=service.h(key))
    assert r.json()["state"] == "anchored", r.text
