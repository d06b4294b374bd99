"""The service's own write transactions on SQLite queue in the process (ServiceContext.writing),
not in SQLite's busy handler; on PostgreSQL they run side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

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


async def test_a_pipeline_pass_behind_an_open_write_transaction_anchors_once_it_commits(
    service, database_url
):
    """SQLite: a pass that starts while another write transaction is open waits for it at the gate
    (not in SQLite's busy handler) and completes after it. PostgreSQL: it does not wait."""
    key, credential_id = await _one_accepted_licence(service)
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
    await _assert_anchored(service, key, credential_id)


async def test_a_batch_tree_is_built_outside_any_transaction_while_the_loop_runs(
    service, database_url, monkeypatch
):
    """The pipeline builds a batch's Merkle tree (30-90 ms for 10,000 credentials) in a thread with
    no transaction open: meanwhile the event loop serves other work and another writer commits at
    once (on SQLite the write gate is free). The tree is held in the thread until released."""
    import threading

    from registry.services import batch_signing as signing_module

    key, credential_id = await _one_accepted_licence(service)
    building, release = threading.Event(), threading.Event()
    real = signing_module._tree_of_pairs

    def held_tree(pairs):
        building.set()
        release.wait(30)
        return real(pairs)

    monkeypatch.setattr(signing_module, "_tree_of_pairs", held_tree)
    await _pass_held_mid_way(
        service,
        database_url,
        key,
        credential_id,
        held=lambda: asyncio.to_thread(building.wait, 30),
        release=release.set,
    )


async def test_the_anchor_transaction_is_signed_before_the_write_transaction(
    service, database_url, monkeypatch
):
    """Signing the anchor transaction asks the chain for the nonce and fee: no transaction is open
    (on SQLite the write gate is free) while it waits for those answers, held here until released."""
    from registry.services.chain import ServiceChain

    key, credential_id = await _one_accepted_licence(service)
    signing, release = asyncio.Event(), asyncio.Event()
    real = ServiceChain.anchor_txs

    async def held_sign(self, *args, **kwargs):
        signing.set()
        await release.wait()
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(ServiceChain, "anchor_txs", held_sign)
    await _pass_held_mid_way(
        service,
        database_url,
        key,
        credential_id,
        held=lambda: asyncio.wait_for(signing.wait(), 30),
        release=release.set,
    )


async def test_a_keystore_is_decrypted_in_a_thread_outside_any_transaction(
    service, database_url, monkeypatch
):
    """The first signing of a batch decrypts the issuer's keystore (scrypt, ~0.5 s of CPU): in a
    thread, with no transaction open, so requests and other writers go on meanwhile."""
    import threading

    from registry.services import orgs

    key, credential_id = await _one_accepted_licence(service)
    decrypting, release = threading.Event(), threading.Event()
    real = orgs.decrypt_secret

    def held_decrypt(keystore, passphrase):
        decrypting.set()
        release.wait(30)
        return real(keystore, passphrase)

    monkeypatch.setattr(orgs, "decrypt_secret", held_decrypt)
    await _pass_held_mid_way(
        service,
        database_url,
        key,
        credential_id,
        held=lambda: asyncio.to_thread(decrypting.wait, 30),
        release=release.set,
    )


async def _pass_held_mid_way(
    service,
    database_url: str,
    key: str,
    credential_id: str,
    *,
    held: Callable[[], Awaitable[bool]],
    release: Callable[[], None],
) -> None:
    """Run a pipeline pass; once `held()` says it is held mid-way, check that no write is held up
    and the pass has not finished; release it; it then anchors the credential."""
    step = asyncio.create_task(service.drain())
    try:
        assert await held(), "the pass did not reach the held step"
        await _no_write_held_up(service, database_url)
        assert not step.done()
    finally:
        release()
    await asyncio.wait_for(step, 30)
    await _assert_anchored(service, key, credential_id)


async def _no_write_held_up(service, database_url: str) -> None:
    """No write transaction is open (SQLite: the gate is free; PostgreSQL: no session of the
    database idles in a transaction), and another writer commits at once."""
    if database_url.startswith("sqlite"):
        assert not service.ctx.write_gate.locked()
    else:
        async with service.ctx.sessions() as s:
            open_tx = (
                await s.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state LIKE 'idle in transaction%'"
                    )
                )
            ).scalar_one()
        assert open_tx == 0
    async with asyncio.timeout(2):
        async with service.ctx.writing() as s:
            await s.execute(text("UPDATE counters SET value = value WHERE name = 'status_index'"))


async def _one_accepted_licence(service) -> tuple[str, str]:
    """An issuer's API key and the id of one business licence it has had accepted (not anchored)."""
    from scripts.samples import business_licence_record, make_uscc

    _, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier=make_uscc(prefix="114401"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    r = await service.client.post(
        "/v1/credentials",
        headers=service.h(key),
        json={"type": "BusinessLicence", "record": business_licence_record()},
    )
    assert r.status_code == 202, r.text
    return key, r.json()["id"]


async def _assert_anchored(service, key: str, credential_id: str) -> None:
    r = await service.client.get(f"/v1/credentials/{credential_id}", headers=service.h(key))
    assert r.status_code == 200 and r.json()["state"] == "anchored", r.text
