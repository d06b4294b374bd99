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


async def test_a_batch_tree_is_built_outside_any_transaction_while_the_loop_runs(service, database_url, monkeypatch):
    """The pipeline builds a batch's Merkle tree (30-90 ms for 10,000 credentials) in a thread with
    no transaction open: meanwhile the event loop serves other work and another writer commits at
    once (on SQLite the write gate is free). The tree is held in the thread until released."""
    import threading

    from registry.services import pipeline as pipeline_module
    from tests.registry.samples import business_licence_record, make_uscc

    _, key = await service.create_org(name="广州市市场监督管理局", identifier=make_uscc(prefix="114401"),
                                      roles=["issuer"], types=["BusinessLicence"])
    r = await service.client.post("/v1/credentials", headers=service.h(key),
                                  json={"type": "BusinessLicence", "record": business_licence_record()})
    assert r.status_code == 202, r.text
    building, release = threading.Event(), threading.Event()
    real = pipeline_module._tree_of_pairs

    def held_tree(pairs):
        building.set()
        release.wait(30)
        return real(pairs)

    monkeypatch.setattr(pipeline_module, "_tree_of_pairs", held_tree)
    step = asyncio.create_task(service.drain())
    try:
        assert await asyncio.to_thread(building.wait, 30), "the tree was not built in a thread"
        await _no_write_held_up(service, database_url)
        assert not step.done()
    finally:
        release.set()
    await asyncio.wait_for(step, 30)
    r = await service.client.get(f"/v1/credentials/{r.json()['id']}", headers=service.h(key))
    assert r.json()["state"] == "anchored", r.text


async def test_the_anchor_transaction_is_signed_before_the_write_transaction(service, database_url, monkeypatch):
    """Signing the anchor transaction asks the chain for the nonce and fee: no transaction is open
    (on SQLite the write gate is free) while it waits for those answers, held here until released."""
    from registry.services.chain import ServiceChain
    from tests.registry.samples import business_licence_record, make_uscc

    _, key = await service.create_org(name="广州市市场监督管理局", identifier=make_uscc(prefix="114401"),
                                      roles=["issuer"], types=["BusinessLicence"])
    r = await service.client.post("/v1/credentials", headers=service.h(key),
                                  json={"type": "BusinessLicence", "record": business_licence_record()})
    assert r.status_code == 202, r.text
    signing, release = asyncio.Event(), asyncio.Event()
    real = ServiceChain.sign

    async def held_sign(self, *args, **kwargs):
        signing.set()
        await release.wait()
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(ServiceChain, "sign", held_sign)
    step = asyncio.create_task(service.drain())
    try:
        await asyncio.wait_for(signing.wait(), 30)
        await _no_write_held_up(service, database_url)
        assert not step.done()
    finally:
        release.set()
    await asyncio.wait_for(step, 30)
    r = await service.client.get(f"/v1/credentials/{r.json()['id']}", headers=service.h(key))
    assert r.json()["state"] == "anchored", r.text


async def _no_write_held_up(service, database_url: str) -> None:
    """No write transaction is open (SQLite: the gate is free; PostgreSQL: no session of the
    database idles in a transaction), and another writer commits at once."""
    if database_url.startswith("sqlite"):
        assert not service.ctx.write_gate.locked()
    else:
        async with service.ctx.sessions() as s:
            open_tx = (await s.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"))).scalar_one()
        assert open_tx == 0
    async with asyncio.timeout(2):
        async with service.ctx.writing() as s:
            await s.execute(text("UPDATE counters SET value = value WHERE name = 'status_index'"))
