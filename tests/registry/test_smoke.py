"""End to end through the API: onboard an issuer, issue, anchor, fetch the holder copy, verify."""

import asyncio

import pytest

from registry.services.anchoring import record_anchor_txs
from scripts.samples import business_licence_record
from tests.support.service import latest_anchor_tx

pytestmark = [pytest.mark.chain, pytest.mark.anyio]


async def test_issue_anchor_fetch_verify(service):
    org, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier="11440100MB2C93176P",
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    assert org["issuerId"] == 1
    r = await service.client.post(
        "/v1/credentials",
        headers=service.h(key),
        json={"type": "BusinessLicence", "record": business_licence_record()},
    )
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    await service.drain()
    r = await service.client.get(f"/v1/credentials/{cid}", headers=service.h(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "anchored"
    cred = body["credential"]
    r = await service.client.post("/v1/verify", headers=service.h(key), json={"credential": cred})
    assert r.status_code == 200, r.text
    assert r.json()["valid"], r.json()


async def test_concurrent_pipeline_passes_never_make_an_empty_or_double_batch(service):
    """The background loop and a drain (or two sealers) running at once in one process."""

    from sqlalchemy import func, select

    from registry.db.models import Batch, Credential
    from scripts.samples import make_uscc

    _, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier=make_uscc(prefix="114401"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    recs = "\n".join(__import__("json").dumps(business_licence_record()) for _ in range(120)).encode()
    r = await service.client.post(
        "/v1/credentials/bulk?type=BusinessLicence",
        content=recs,
        headers={**service.h(key), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 202, r.text
    p = service.pipeline
    await asyncio.gather(
        p._seal_one(*(await _group(service)), 50),
        p._seal_one(*(await _group(service)), 50),
        p.drain(),
        p.step(),
        p.step(),
    )
    await p.drain()
    async with service.ctx.sessions() as s:
        batches = (await s.execute(select(Batch))).scalars().all()
        per_batch = dict(
            (await s.execute(select(Credential.batch_id, func.count()).group_by(Credential.batch_id))).all()
        )
    assert None not in per_batch
    assert sum(per_batch.values()) == 120
    assert {b.id: b.count for b in batches} == per_batch
    assert {b.state for b in batches} == {"anchored"}


async def test_an_upload_stores_the_whole_tree_of_each_batch_it_seals_and_signing_keeps_it(
    service, monkeypatch
):
    """An upload of at least a batch seals its full batches and stores each one's whole Merkle tree
    (built in a thread as the upload goes on), so the signer builds and writes none: the root
    anchored is the stored tree's first node, the tree is the one built from the batch's credentials,
    and it is not written again. An atomic upload refused after it sealed a batch stores no tree."""
    from sqlalchemy import event, func, select

    from registry.db.models import Batch, BatchTree, Credential
    from registry.services import issuance as issuance_module
    from registry.services.batch_signing import _tree_of_pairs

    # through the workers, in chunks of 4: the first batch is sealed (its tree being built) before
    # the last chunk, with the refused record, comes back
    monkeypatch.setattr(issuance_module, "POOL_THRESHOLD", 5)
    monkeypatch.setattr(issuance_module, "CHUNK", 4)
    _, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier="11440100MB2C93176P",
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    service.configure(batch_size=5, batch_window_seconds=3600)
    records = [business_licence_record() for _ in range(12)]
    bad = [*records[:11], {**records[11], "credentialSubject": {}}]  # refused after two batches sealed
    r = await service.client.post(
        "/v1/credentials/bulk?type=BusinessLicence&atomic=true", headers=service.h(key), json=bad
    )
    assert r.status_code == 422, r.text
    async with service.ctx.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(BatchTree))).scalar_one() == 0
        assert (await s.execute(select(func.count()).select_from(Batch))).scalar_one() == 0

    r = await service.client.post(
        "/v1/credentials/bulk?type=BusinessLicence", headers=service.h(key), json=records
    )
    assert r.status_code == 202, r.text
    async with service.ctx.sessions() as s:
        stored = dict((await s.execute(select(BatchTree.batch_id, BatchTree.nodes))).all())
        pairs = (
            await s.execute(
                select(Credential.batch_id, Credential.target_hash, Credential.subject_hash).order_by(
                    Credential.id
                )
            )
        ).all()
    assert len(stored) == 2  # the two full batches; the last two credentials wait, in none
    for batch_id, nodes in stored.items():
        assert len(nodes) == 32 * (2 * 5 - 1)
        assert nodes == _tree_of_pairs([(t, h) for b, t, h in pairs if b == batch_id])

    tree_writes: list[str] = []

    def seen(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith(("UPDATE BATCH_TREES", "INSERT INTO BATCH_TREES")):
            tree_writes.append(statement)

    event.listen(service.ctx.engine.sync_engine, "before_cursor_execute", seen)
    try:  # passes until both are anchored (a loaded node may leave the confirming to a later pass);
        # they seal nothing more: the two credentials left are less than a batch, the window an hour
        for _ in range(100):
            await service.pipeline.step()
            async with service.ctx.sessions() as s:
                anchored = select(Batch.id, Batch.root).where(Batch.state == "anchored")
                roots = dict((await s.execute(anchored)).all())
            if len(roots) == len(stored):
                break
            await asyncio.sleep(0.1)
    finally:
        event.remove(service.ctx.engine.sync_engine, "before_cursor_execute", seen)
    assert roots == {b: "0x" + nodes[:32].hex() for b, nodes in stored.items()}
    assert tree_writes == []


async def _group(service):
    from sqlalchemy import select

    from registry.db.models import Credential

    async with service.ctx.sessions() as s:
        return (await s.execute(select(Credential.issuer_org_id, Credential.credential_type).limit(1))).one()


async def test_with_confirmations_a_batch_is_anchored_only_that_many_blocks_deep(service, chain):
    """CERTLEDGER_CONFIRMATIONS=2: the anchor tx is mined, but the batch stays `sending` (and its
    credentials have no holder copy yet) until two more blocks are on top of it."""
    from sqlalchemy import select

    from registry.db.models import Batch
    from scripts.samples import make_uscc

    service.configure(confirmations=2)
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
    cid = r.json()["id"]
    p = service.pipeline
    await p.seal_due(force=True)
    for _ in range(3):
        await p.advance_all()

    async def state() -> str:
        async with service.ctx.sessions() as s:
            return (await s.execute(select(Batch.state))).scalar_one()

    assert await state() == "sending"
    r = await service.client.get(f"/v1/credentials/{cid}", headers=service.h(key))
    assert r.status_code == 200 and r.json()["state"] == "anchoring" and r.json()["credential"] is None, (
        r.text
    )
    chain.w3.provider.make_request("evm_mine", [])
    await p.advance_all()
    assert await state() == "sending"
    chain.w3.provider.make_request("evm_mine", [])
    await p.advance_all()
    assert await state() == "anchored"
    r = await service.client.get(f"/v1/credentials/{cid}", headers=service.h(key))
    assert r.status_code == 200 and r.json()["state"] == "anchored", r.text


async def test_one_pass_anchors_many_batches_of_several_issuers_with_a_request_per_step(service, monkeypatch):
    """Twelve batches of two issuers, more than a round holds (5 here): one pass signs and sends
    them all, in rounds, each issuer's transactions with consecutive nonces; the chain is asked once
    per step and issuer, not once per batch."""
    import json

    from sqlalchemy import select

    from registry.db.models import Batch
    from registry.services import pipeline as pipeline_module
    from registry.services.chain import ServiceChain
    from scripts.samples import make_uscc

    monkeypatch.setattr(pipeline_module, "ROUND", 5)
    keys = []
    for prefix in ("114401", "114403"):
        _, key = await service.create_org(
            name="市场监督管理局",
            identifier=make_uscc(prefix=prefix),
            roles=["issuer"],
            types=["BusinessLicence"],
        )
        keys.append(key)
    service.configure(batch_size=5)
    for key in keys:  # six batches each, sealed by the upload that fills them
        recs = "\n".join(json.dumps(business_licence_record()) for _ in range(30)).encode()
        r = await service.client.post(
            "/v1/credentials/bulk?type=BusinessLicence",
            content=recs,
            headers={**service.h(key), "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 202, r.text
    requests: list[list[str]] = []
    real = ServiceChain.batch

    async def counted(self, calls):
        requests.append([method for method, _ in calls])
        return await real(self, calls)

    monkeypatch.setattr(ServiceChain, "batch", counted)
    p = service.pipeline
    await p.seal_due(force=True)
    moved = await p.advance_all()  # all twelve signed and sent in this pass, in three rounds
    for _ in range(100):  # anvil mines each transaction just after it arrives: confirmed now or next pass
        async with service.ctx.sessions() as s:
            batches = (await s.execute(select(Batch).order_by(Batch.id))).scalars().all()
        if {b.state for b in batches} == {"anchored"}:
            break
        await asyncio.sleep(0.05)
        moved += await p.advance_all()
    assert len(batches) == 12 and {b.state for b in batches} == {"anchored"}
    assert moved == 24  # twelve batches, two steps each: signed and sent in one, then confirmed
    txs = [await latest_anchor_tx(service.ctx, b.id) for b in batches]
    assert {t.state for t in txs} == {"confirmed"} and [t.tx_hash for t in txs] == [
        b.tx_hash for b in batches
    ]
    for sender in {t.sender for t in txs}:
        nonces = sorted(t.nonce for t in txs if t.sender == sender)
        assert nonces == list(range(nonces[0], nonces[0] + 6))
    # signing asks nonce and fee (with the dry runs) once per round and issuer, not per batch:
    # rounds of the oldest 5 (the first issuer's batches 1-5; its 6th and the second's 1-4; the
    # second's 5-6): 1 + 2 + 1; a broadcast carries a round's transactions
    assert sum(1 for r in requests if "eth_getTransactionCount" in r) == 4
    sent = [r for r in requests if r and r[0] == "eth_sendRawTransaction"]
    assert len(sent[0]) == 5 and max(r.count(r[0]) for r in requests if r) <= 5


async def test_a_resent_transaction_mined_meanwhile_is_not_signed_again(service):
    """The confirm step found no receipt, then re-broadcast the transaction just as it was mined: the
    node refuses it for its nonce. That nonce is used by the transaction itself, so the batch stays
    `sending` (the next look confirms it) instead of going back to `signed` for a new transaction."""
    from sqlalchemy import select, update

    from registry.db.models import Batch
    from registry.services.chain import SentTx

    await _one_accepted_licence(service)
    await service.drain()
    async with service.ctx.writing() as s:
        batch = (await s.execute(select(Batch))).scalar_one()
        await s.execute(update(Batch).where(Batch.id == batch.id).values(state="sending"))
    row = await latest_anchor_tx(service.ctx, batch.id)
    sent = SentTx(row.raw_tx, row.tx_hash, row.nonce, row.sender)
    assert await service.ctx.chain.send_raws([sent.raw]) != [None]  # the node refuses it now
    await service.pipeline._broadcast({batch.id: sent})
    async with service.ctx.sessions() as s:
        assert (await s.get(Batch, batch.id)).state == "sending"
    await service.drain()
    async with service.ctx.sessions() as s:
        again = await s.get(Batch, batch.id)
    assert again.state == "anchored" and again.tx_hash == batch.tx_hash and again.attempts == 1


async def test_a_resend_refused_for_its_nonce_waits_one_pass_then_is_signed_again(service, chain):
    """A batch whose transaction is unmined and whose resend the node refuses for its nonce, with no
    receipt: on the first look it stays `sending` (a node can refuse a transaction for its nonce as it
    mines it, before serving the receipt, and a new transaction would be wasted); refused again on
    the next pass, it is signed again with a fresh nonce and anchored once."""
    from sqlalchemy import select

    from registry.db.models import Batch, Organisation
    from registry.services.orgs import signing_key
    from scripts.samples import make_uscc

    org, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier=make_uscc(prefix="114401"),
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    for _ in range(2):
        r = await service.client.post(
            "/v1/credentials",
            headers=service.h(key),
            json={"type": "BusinessLicence", "record": business_licence_record()},
        )
        assert r.status_code == 202, r.text
        await service.drain()  # two batches, each anchored, nonces 0 and 1
    ctx, p = service.ctx, service.pipeline
    async with ctx.sessions() as s:
        first = (await s.execute(select(Batch).order_by(Batch.id))).scalars().first()
        secp = (await signing_key(s, first.issuer_org_id, ctx.settings.passphrase()))[1]
    r = await service.client.post(
        "/v1/credentials",
        headers=service.h(key),
        json={"type": "BusinessLicence", "record": business_licence_record()},
    )
    assert r.status_code == 202, r.text
    await p.seal_due(force=True)
    async with ctx.sessions() as s:
        third = (await s.execute(select(Batch).where(Batch.state == "sealed"))).scalar_one()
        issuer_id = (await s.get(Organisation, third.issuer_org_id)).issuer_id
    # signed but not sent: the issuer is suspended while it is signed, so the dry run of its anchor
    # transaction is refused and the signing step leaves it `signed`
    issuers = ctx.chain.issuers.functions
    await ctx.chain.transact(ctx.governance_key, issuers.suspendIssuer(issuer_id, 1))
    assert await p._sign([third.id]) == ([third.id], [])
    await ctx.chain.transact(ctx.governance_key, issuers.reinstateIssuer(issuer_id))
    async with ctx.sessions() as s:
        third = await s.get(Batch, third.id)
    assert (third.state, third.tx_hash) == ("signed", None)
    # its anchor tx signed with nonce 1, which the second batch's tx used: never to be mined
    stale = await ctx.chain.sign(
        secp,
        ctx.chain.anchors.functions.anchor(bytes.fromhex(third.root[2:]), third.credential_type, third.count),
        gas=120_000,
        nonce=1,
    )
    async with ctx.writing() as s:
        await record_anchor_txs(s, {third.id: stale}, {third.id: third.issuer_org_id})

    async def look() -> Batch:
        await p.advance_all()
        async with ctx.sessions() as s:
            return await s.get(Batch, third.id)

    b = await look()
    assert (b.state, b.tx_hash, b.attempts) == ("sending", stale.tx_hash, 1)
    tx = await latest_anchor_tx(
        ctx, third.id
    )  # the wait is a column of its outbox row; the text is for people
    assert (tx.state, tx.refused_resends, tx.nonce) == ("sent", 1, 1) and "nonce" in tx.last_error
    b = await look()
    assert b.state == "signed" and b.tx_hash == stale.tx_hash
    assert (await latest_anchor_tx(ctx, third.id)).state == "failed"  # refused again: given up, signed anew
    await service.drain()
    async with ctx.sessions() as s:
        b = await s.get(Batch, third.id)
    tx = await latest_anchor_tx(ctx, third.id)
    assert b.state == "anchored" and b.attempts == 2 and b.tx_hash != stale.tx_hash
    assert (tx.state, tx.tx_hash, tx.nonce) == ("confirmed", b.tx_hash, 2)
    receipt = chain.w3.eth.get_transaction_receipt(b.tx_hash)
    assert receipt["status"] == 1


async def test_a_transaction_mined_between_the_anchor_lookup_and_its_receipt_is_not_signed_again(
    service, monkeypatch
):
    """The confirm step asks the chain for the batch's anchor, then (in the same batch request) for
    its transaction's receipt; a transaction mined between the two has no anchor in the first answer
    and a successful receipt in the second. That is not a failed transaction: the batch stays
    `sending` and the next look confirms it (make test caught the old code re-signing such batches,
    and anchoring them again through a second transaction's dry run). The race is forced here by
    answering the first lookup as the node did a moment before mining."""

    from sqlalchemy import select

    from registry.db.models import Batch

    await _one_accepted_licence(service)
    ctx, p = service.ctx, service.pipeline
    real, asked = ctx.chain.anchors_and_receipts, []

    async def before_mining(roots, tx_hashes):  # the first lookup: anchors as the node answered before mining
        anchors, receipts = await real(roots, tx_hashes)
        if roots:
            asked.append(roots)
        return ([None] * len(roots) if len(asked) == 1 else anchors), receipts

    monkeypatch.setattr(ctx.chain, "anchors_and_receipts", before_mining)
    await p.seal_due(force=True)
    await (
        p.advance_all()
    )  # signed, sent (mined at once by anvil), looked up: "not anchored", receipt: success
    async with ctx.sessions() as s:
        b = (await s.execute(select(Batch))).scalar_one()
    assert asked and b.state == "sending" and b.attempts == 1
    tx = b.tx_hash
    for _ in range(100):  # the next look confirms it (once mined, if anvil had not yet when asked)
        await p.advance_all()
        async with ctx.sessions() as s:
            b = (await s.execute(select(Batch))).scalar_one()
        if b.state != "sending":
            break
        await asyncio.sleep(0.05)
    assert (b.state, b.tx_hash, b.attempts) == ("anchored", tx, 1)


async def test_an_anchor_visible_before_its_block_is_served_is_confirmed_on_the_next_look(
    service, monkeypatch
):
    """anvil under load answers calls on a new block's state before it serves the block: the anchor
    lookup finds the root, the receipt is not there yet, and the logs of that block are refused with
    "BlockOutOfRangeError" (make test on CI failed the whole pass on it). The batch now stays
    `sending` and the next look confirms it with its own transaction. The node's moment of
    inconsistency is forced by answering the receipt and the logs as it did."""
    from sqlalchemy import select
    from web3.exceptions import Web3RPCError

    from registry.db.models import Batch

    await _one_accepted_licence(service)
    ctx, p = service.ctx, service.pipeline
    real_receipts, served = ctx.chain.receipts, {"yet": False}
    real_lookup = ctx.chain.anchors_and_receipts
    events = ctx.chain.anchors.events.BatchAnchored

    async def not_served_yet(roots, hashes):  # the anchors as the node answers; receipts not yet
        anchors, receipts = await real_lookup(roots, hashes)
        return anchors, (receipts if served["yet"] else [None] * len(hashes))

    class _Logs:
        def __init__(self, real):
            self.real = real

        async def get_logs(self, **kw):
            if not served["yet"]:
                raise Web3RPCError(
                    "{'code': -32602, 'message': 'BlockOutOfRangeError: block height is 9 but "
                    "requested was 10'}"
                )
            return await self.real.get_logs(**kw)

    monkeypatch.setattr(ctx.chain, "anchors_and_receipts", not_served_yet)
    monkeypatch.setattr(ctx.chain.anchors.events, "BatchAnchored", lambda: _Logs(events()))
    await p.seal_due(force=True)
    await p.advance_all()  # signed, sent, the anchor visible; receipt and logs not served yet
    async with ctx.sessions() as s:
        b = (await s.execute(select(Batch))).scalar_one()
    assert b.state == "sending" and b.attempts == 1
    tx = b.tx_hash
    served["yet"] = True
    for _ in range(100):  # the node catches up (a busy session node can take a moment to serve the block)
        if (await real_receipts([tx]))[0] is not None:
            break
        await asyncio.sleep(0.1)
    await p.advance_all()
    async with ctx.sessions() as s:
        b = (await s.execute(select(Batch))).scalar_one()
    assert (b.state, b.tx_hash, b.attempts) == ("anchored", tx, 1)


async def _one_accepted_licence(service) -> None:
    """A new issuer and one business licence accepted from it (not yet sealed)."""
    from scripts.samples import make_uscc

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


async def test_an_upload_that_seals_batches_wakes_the_idle_pipeline(service):
    """The pipeline, idle with a poll interval of two minutes, takes up the batches an upload sealed
    at once (the upload sets ``ctx.batches_sealed`` once it has committed), not a poll interval
    later: it signs them; an upload that seals none leaves it asleep. (Sending and confirming them
    may take more passes, which a loaded node can leave to the next interval: drained here.)"""
    from sqlalchemy import func, select

    from registry.db.models import Batch, Credential
    from registry.services.pipeline import Pipeline

    _, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier="11440100MB2C93176P",
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    service.configure(batch_size=5, poll_interval_seconds=120, batch_window_seconds=3600)

    async def upload(n: int) -> None:
        r = await service.client.post(
            "/v1/credentials/bulk?type=BusinessLicence",
            headers=service.h(key),
            json=[business_licence_record() for _ in range(n)],
        )
        assert r.status_code == 202, r.text

    async def states() -> tuple[int, list[str]]:
        async with service.ctx.sessions() as s:
            unbatched = (
                await s.execute(
                    select(func.count()).select_from(Credential).where(Credential.batch_id.is_(None))
                )
            ).scalar_one()
            return unbatched, list((await s.execute(select(Batch.state).order_by(Batch.id))).scalars())

    pipeline = Pipeline(service.ctx)
    task = asyncio.create_task(pipeline.run_forever())
    try:
        await asyncio.sleep(0.5)  # its first pass found nothing: it waits
        await upload(3)  # less than a batch: sealed by no one (the batch window is an hour)
        await asyncio.sleep(0.5)
        assert await states() == (3, [])
        await upload(10)  # two full batches, sealed by the upload
        for _ in range(200):
            unbatched, batches = await states()
            if len(batches) == 2 and "sealed" not in batches:
                break
            await asyncio.sleep(0.05)
        assert unbatched == 3 and len(batches) == 2 and "sealed" not in batches, batches
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await pipeline.drain()  # (which seals the three left over too)
    assert await states() == (0, ["anchored", "anchored", "anchored"])


async def test_a_large_upload_s_log_is_copied_into_the_database_once_its_batches_are_anchored(service):
    """SQLite: an upload of at least ``POOL_THRESHOLD`` records leaves its rows in the write-ahead
    log, and the running pipeline copies them into the database file (``ctx.checkpoint_wal``) once a
    pass finds nothing to move: never while the upload's batches wait to be signed, and without
    fail after they are anchored. PostgreSQL keeps no such log: its uploads ask for nothing."""
    import os

    from sqlalchemy import select

    from registry.db.models import Batch
    from registry.services.issuance import POOL_THRESHOLD
    from registry.services.pipeline import Pipeline

    _, key = await service.create_org(
        name="广州市市场监督管理局",
        identifier="11440100MB2C93176P",
        roles=["issuer"],
        types=["BusinessLicence"],
    )
    service.configure(batch_size=POOL_THRESHOLD // 2, poll_interval_seconds=0.2, batch_window_seconds=3600)
    ctx = service.ctx
    sqlite = ctx.engine.dialect.name == "sqlite"
    pipeline = Pipeline(ctx)
    task = asyncio.create_task(pipeline.run_forever())
    try:
        await asyncio.sleep(0.5)  # idle, with nothing to copy
        assert not ctx.wal_grown.is_set()
        r = await service.client.post(
            "/v1/credentials/bulk?type=BusinessLicence",
            headers=service.h(key),
            json=[business_licence_record() for _ in range(POOL_THRESHOLD)],
        )
        assert r.status_code == 202, r.text
        if not sqlite:
            assert not ctx.wal_grown.is_set()
            return
        size = os.path.getsize(ctx.engine.url.database)
        samples = []
        for _ in range(1000):
            async with ctx.sessions() as s:
                states = list((await s.execute(select(Batch.state))).scalars())
            samples.append((states, os.path.getsize(ctx.engine.url.database)))
            # (the flag is cleared as the checkpoint starts: under load it ends some time later)
            if states == ["anchored", "anchored"] and samples[-1][1] - size > 1_000_000:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert states == ["anchored", "anchored"] and not ctx.wal_grown.is_set(), samples[-1]
    # the 2,000 rows (~900 bytes each) are in the database file now; not while a batch was sealed
    assert samples[-1][1] - size > 1_000_000, (size, samples[-1])
    assert all(grown == size for states, grown in samples if "sealed" in states), samples


async def test_a_pipeline_cancelled_as_an_upload_wakes_it_stops(service):
    """A service shut down just as an upload wakes its idle pipeline stops it: the cancellation
    is not lost to the wake (Python 3.11's ``asyncio.wait_for`` returned the event's result
    instead, and the pipeline ran on; shutting down then waited for it forever)."""
    from registry.services.pipeline import Pipeline

    service.configure(poll_interval_seconds=120)
    task = asyncio.create_task(Pipeline(service.ctx).run_forever())
    await asyncio.sleep(0.5)  # its first pass found nothing: it waits for a wake
    service.ctx.batches_sealed.set()  # an upload sealed batches ...
    task.cancel()  # ... as the service stops
    done, _ = await asyncio.wait([task], timeout=10)
    assert task in done and task.cancelled()
