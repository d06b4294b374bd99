"""The chain event indexer: follows the three contracts' events into the projection tables.

    indexer = Indexer(rpc_url, deployment, engine, confirmations=2)
    stats = await indexer.run_once()          # catch up to head - confirmations
    await indexer.run_forever(poll_interval=2.0)

How it stays exact:
1. Logs are fetched with one `eth_getLogs` for the three addresses per block window, from the
   deploy block on. The window halves when the node refuses a range ("query returned more than
   10000 results", a response-size limit) and grows back while pages are small. RPC failures
   (connection, timeout, 5xx) are retried with exponential back-off (`_rpc.AsyncRpc`).
2. Each page is applied in ONE database transaction together with the checkpoint (last block
   number and hash) and the recent-block hash window: a crash at any point leaves the page
   applied with its checkpoint, or neither — a restart resumes without a gap or a duplicate.
   The raw events go to `chain_events` (unique on block hash + log index), and the projection
   rows the page touches are loaded, folded (`projection.ProjectionState`) and written back.
3. The page is consistent with one chain: the hashes of the checkpoint block and of the page's
   last block are read before and after `eth_getLogs` and must not change, and every log's
   block hash must equal its header's; otherwise the page is fetched again.
4. Reorgs: before each page the checkpoint's hash is compared with the chain's. On a mismatch
   the indexer walks its window of recent block hashes (`indexer_blocks`) down to the newest one
   still on the chain, deletes the raw events above it, recomputes every projection row those
   events touched by replaying the remaining events of the same entities, moves the checkpoint
   back, and carries on. A fork below the window re-indexes from the deploy block.

Only standard JSON-RPC is used (eth_blockNumber, eth_getLogs, eth_getBlockByNumber, eth_call).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ledger_node._rpc import AsyncRpc, RangeTooLarge, RpcError, RpcUnavailable
from ledger_node.artifacts import _canonical_type, load_artifact
from ledger_node.deploy import Deployment
from ledger_node.errors import LedgerNodeError
from ledger_node.projection import (
    CREATING_EVENTS,
    ChainAnchor,
    ChainCredentialStatus,
    ChainEvent,
    ChainEventRow,
    ChainFlow,
    ChainIssuer,
    IndexerBlock,
    IndexerCheckpoint,
    ProjectionState,
    delete_entities,
    load_events,
    load_state,
    write_entities,
)

__all__ = [
    "EventDecoder",
    "IndexProgress",
    "IndexStats",
    "Indexer",
    "IndexerError",
    "SpotCheck",
    "chain_events",
    "chain_snapshot",
    "spot_check",
]

log = logging.getLogger("ledger_node.indexer")

CONTRACTS = {
    "issuerRegistry": "IssuerRegistry",
    "anchorRegistry": "AnchorRegistry",
    "dataFlowLedger": "DataFlowLedger",
}
HASH_WINDOW = 64  # recent block hashes kept for reorg detection


class IndexerError(LedgerNodeError):
    """The indexer cannot go on (e.g. the node keeps refusing a one-block range)."""


class _PageRaced(Exception):
    """The chain (or another indexer) moved while a page was read: read it again."""


class _Reorg(Exception):
    """The checkpoint's block is no longer on the chain."""


# -- decoding ----------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _checksum(raw20: bytes) -> str:
    return to_checksum_address(raw20)


def _static_word(typ: str) -> Callable[[bytes], Any] | None:
    """A decoder for one 32-byte word of a simple static type, or None."""
    if typ.startswith("uint"):
        return lambda w: int.from_bytes(w, "big")
    if typ == "address":
        return lambda w: _checksum(bytes(w[12:]))
    if typ == "bool":
        return lambda w: w[31] != 0
    if typ.startswith("bytes") and typ != "bytes":
        n = int(typ[5:])
        return lambda w: "0x" + w[:n].hex()
    return None


def _jsonable(param: dict, value: Any) -> Any:
    t = param["type"]
    if t.startswith("tuple"):
        return {c["name"]: _jsonable(c, v) for c, v in zip(param["components"], value)}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if t == "address":
        return to_checksum_address(value)
    return value


@dataclass(frozen=True)
class _EventSpec:
    name: str
    indexed: tuple[tuple[str, Callable[[bytes], Any]], ...]
    data_params: tuple[dict, ...]
    data_static: tuple[Callable[[bytes], Any], ...] | None  # fast path when every data field is simple
    data_types: tuple[str, ...]


class EventDecoder:
    """topic0 → event ABI over the three contracts; decodes raw logs into `ChainEvent`s."""

    def __init__(self, deployment: Deployment):
        self.contract_of = {addr.lower(): key for key, addr in deployment.contracts.items()}
        self.specs: dict[str, _EventSpec] = {}
        for _key, artifact in CONTRACTS.items():
            for item in load_artifact(artifact).abi:
                if item["type"] != "event" or item.get("anonymous"):
                    continue
                sig = f"{item['name']}({','.join(_canonical_type(i) for i in item['inputs'])})"
                topic0 = "0x" + keccak(text=sig).hex()
                indexed = []
                for i in item["inputs"]:
                    if i["indexed"]:
                        dec = _static_word(i["type"]) or (lambda w: "0x" + bytes(w).hex())  # hashed dynamic
                        indexed.append((i["name"], dec))
                data = tuple(i for i in item["inputs"] if not i["indexed"])
                statics = [_static_word(i["type"]) for i in data]
                self.specs[topic0] = _EventSpec(
                    item["name"],
                    tuple(indexed),
                    data,
                    tuple(statics) if all(s is not None for s in statics) else None,  # type: ignore[misc]
                    tuple(_canonical_type(i) for i in data),
                )

    def decode(self, raw: dict, timestamp: int) -> ChainEvent | None:
        """One eth_getLogs entry → ChainEvent (None for a log of no known event)."""
        topics = raw["topics"]
        spec = self.specs.get(topics[0]) if topics else None
        contract = self.contract_of.get(raw["address"].lower())
        if spec is None or contract is None:
            return None
        args: dict[str, Any] = {}
        for (name, dec), topic in zip(spec.indexed, topics[1:]):
            args[name] = dec(bytes.fromhex(topic[2:]))
        data = bytes.fromhex(raw["data"][2:])
        if spec.data_static is not None:
            for k, (param, dec) in enumerate(zip(spec.data_params, spec.data_static)):
                args[param["name"]] = dec(data[32 * k : 32 * k + 32])
        else:
            values = abi_decode(list(spec.data_types), data)
            for param, v in zip(spec.data_params, values):
                args[param["name"]] = _jsonable(param, v)
        return ChainEvent(
            block_number=int(raw["blockNumber"], 16),
            block_hash=raw["blockHash"],
            block_timestamp=timestamp,
            log_index=int(raw["logIndex"], 16),
            tx_hash=raw["transactionHash"],
            contract=contract,
            event=spec.name,
            args=args,
        )


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexProgress:
    start_block: int
    block: int  # last block indexed
    target: int
    events: int  # events indexed in this run so far


@dataclass(frozen=True)
class IndexStats:
    start_block: int  # checkpoint when the run began
    end_block: int  # checkpoint when it ended
    target_block: int
    events: int
    pages: int
    reorgs: int
    rolled_back_events: int
    window_shrinks: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Checkpoint:
    block: int
    hash: str | None
    exists: bool


# -- the indexer -------------------------------------------------------------------------------
class Indexer:
    """Follows the deployment's events into the chain_* tables (see the module docstring)."""

    def __init__(
        self,
        rpc_url: str,
        deployment: Deployment,
        db: AsyncEngine | async_sessionmaker[AsyncSession],
        *,
        confirmations: int = 0,
        page_size: int = 2000,
        name: str = "main",
        target_events_per_page: int = 5000,
        rpc_timeout: float = 30.0,
        rpc_retries: int = 8,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ):
        if confirmations < 0 or page_size < 1:
            raise ValueError("confirmations must be >= 0 and page_size >= 1")
        self.rpc_url = rpc_url
        self.deployment = deployment
        self.sessions = (
            db if isinstance(db, async_sessionmaker) else async_sessionmaker(db, expire_on_commit=False)
        )
        self.confirmations = confirmations
        self.max_window = page_size
        self.window = min(page_size, 32)  # grows (doubling) while pages stay small
        self.name = name
        self.target_events = target_events_per_page
        self.on_progress = on_progress
        self.rpc = AsyncRpc(rpc_url, timeout=rpc_timeout, retries=rpc_retries)
        self.decoder = EventDecoder(deployment)
        self.addresses = [a for k, a in deployment.contracts.items() if k in CONTRACTS]
        self._stop = asyncio.Event()

    async def close(self) -> None:
        await self.rpc.close()

    async def __aenter__(self) -> Indexer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public -------------------------------------------------------------------------------
    async def checkpoint(self) -> tuple[int, str | None]:
        """(last indexed block, its hash); (deploy_block - 1, None) before the first page."""
        async with self.sessions() as s:
            cp = await self._read_checkpoint(s, lock=False)
        return cp.block, cp.hash

    async def target_block(self) -> int:
        return await self.rpc.block_number() - self.confirmations

    async def run_once(self, *, target: int | None = None) -> IndexStats:
        """Catch up to `target` (default: head - confirmations); handles reorgs on the way."""
        t0 = time.perf_counter()
        if target is None:
            target = await self.target_block()
        start = (await self.checkpoint())[0]
        events = pages = reorgs = rolled = shrinks = 0
        races = 0
        while True:
            async with self.sessions() as s:
                cp = await self._read_checkpoint(s, lock=False)
            try:
                if cp.block >= target:
                    if cp.hash is not None and not await self._on_chain(cp.block, cp.hash):
                        raise _Reorg
                    break
                frm, to = cp.block + 1, min(target, cp.block + self.window)
                n = await self._index_page(cp, frm, to)
            except _Reorg:
                reorgs += 1
                rolled += await self._handle_reorg()
                continue
            except _PageRaced:
                races += 1
                if races > 50:
                    raise IndexerError(
                        "the chain keeps changing under the indexer (50 inconsistent pages)"
                    ) from None
                await asyncio.sleep(min(0.05 * races, 1.0))
                continue
            except RangeTooLarge as exc:
                if self.window == 1:
                    raise IndexerError(f"the node refuses eth_getLogs even for one block: {exc}") from None
                self.window = max(1, self.window // 2)
                shrinks += 1
                log.info("eth_getLogs range too large; window now %d blocks", self.window)
                continue
            events += n
            pages += 1
            races = 0
            self._adapt_window(n)
            if self.on_progress is not None:
                self.on_progress(IndexProgress(start, to, target, events))
        end = (await self.checkpoint())[0]
        return IndexStats(
            start, end, target, events, pages, reorgs, rolled, shrinks, time.perf_counter() - t0
        )

    async def run_forever(self, poll_interval: float = 2.0) -> None:
        """Index, then poll for new blocks every `poll_interval` s until `stop()` (or cancellation).

        RPC outages are logged and retried at the next poll; they never end the loop.
        """
        self._stop.clear()
        while not self._stop.is_set():
            try:
                stats = await self.run_once()
                if stats.events or stats.reorgs:
                    log.info(
                        "indexed %d events to block %d (%d reorgs)",
                        stats.events,
                        stats.end_block,
                        stats.reorgs,
                    )
            except (RpcUnavailable, RpcError) as exc:
                log.warning("indexer: %s; retrying in %.1fs", exc, poll_interval)
            try:  # (asyncio.timeout: wait_for can lose a cancellation that comes as the event is set)
                async with asyncio.timeout(poll_interval):
                    await self._stop.wait()
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()

    # -- pages --------------------------------------------------------------------------------
    def _adapt_window(self, n: int) -> None:
        if n > 2 * self.target_events and self.window > 1:
            self.window = max(1, self.window // 2)
        elif n < self.target_events // 2 and self.window < self.max_window:
            self.window = min(self.max_window, self.window * 2)

    async def _on_chain(self, number: int, block_hash: str) -> bool:
        hdr = (await self.rpc.headers([number]))[number]
        return hdr is not None and hdr["hash"] == block_hash

    async def _index_page(self, cp: _Checkpoint, frm: int, to: int) -> int:
        anchors = [to] if cp.hash is None else [cp.block, to]
        before = await self.rpc.headers(anchors)
        if cp.hash is not None and (before[cp.block] is None or before[cp.block]["hash"] != cp.hash):
            raise _Reorg
        if before[to] is None:
            raise _PageRaced  # the chain got shorter since we read its head
        logs = await self.rpc.get_logs(self.addresses, frm, to)
        numbers = sorted({int(lg["blockNumber"], 16) for lg in logs} | set(anchors))
        after = await self.rpc.headers(numbers)
        for n in anchors:
            if after[n] is None or after[n]["hash"] != before[n]["hash"]:
                raise _PageRaced
        events: list[ChainEvent] = []
        for lg in logs:
            if lg.get("removed"):
                raise _PageRaced
            n = int(lg["blockNumber"], 16)
            hdr = after[n]
            if hdr is None or hdr["hash"] != lg["blockHash"]:
                raise _PageRaced
            ev = self.decoder.decode(lg, int(hdr["timestamp"], 16))
            if ev is not None:
                events.append(ev)
        events.sort(key=lambda e: (e.block_number, e.log_index))
        window = [(n, after[n]["hash"]) for n in numbers if n > cp.block][-HASH_WINDOW:]
        async with self.sessions() as s, s.begin():
            current = await self._read_checkpoint(s, lock=True)
            if (current.block, current.hash) != (cp.block, cp.hash):
                raise _PageRaced  # another indexer moved the checkpoint
            await self._apply(s, events)
            await self._write_checkpoint(s, current, to, after[to]["hash"])
            await s.execute(
                insert(IndexerBlock.__table__),
                [{"name": self.name, "block_number": n, "block_hash": h} for n, h in window],
            )
            await self._trim_window(s)
        return len(events)

    async def _apply(self, s: AsyncSession, events: list[ChainEvent]) -> None:
        if not events:
            return
        rows = [ev.row() for ev in events]
        for i in range(0, len(rows), 5000):
            await s.execute(insert(ChainEventRow.__table__), rows[i : i + 5000])
        first: dict[str, str] = {}
        for ev in events:
            e = ev.entity
            if e is not None and e not in first:
                first[e] = ev.event
        stored = [e for e, name in first.items() if name not in CREATING_EVENTS]
        state = await load_state(s, stored) if stored else ProjectionState()
        state.apply_all(events)
        if stored:
            await delete_entities(s, stored)
        await write_entities(s, state, first)

    # -- checkpoint ---------------------------------------------------------------------------
    async def _read_checkpoint(self, s: AsyncSession, *, lock: bool) -> _Checkpoint:
        q = select(IndexerCheckpoint).where(IndexerCheckpoint.name == self.name)
        if lock:
            q = q.with_for_update()
        row = (await s.execute(q)).scalar_one_or_none()
        if row is None:
            return _Checkpoint(self.deployment.deploy_block - 1, None, False)
        return _Checkpoint(row.block_number, row.block_hash, True)

    async def _write_checkpoint(
        self, s: AsyncSession, current: _Checkpoint, block: int, block_hash: str | None
    ) -> None:
        t = IndexerCheckpoint.__table__
        if current.exists:
            await s.execute(
                update(t).where(t.c.name == self.name).values(block_number=block, block_hash=block_hash)
            )
        else:
            await s.execute(insert(t).values(name=self.name, block_number=block, block_hash=block_hash))

    async def _trim_window(self, s: AsyncSession) -> None:
        t = IndexerBlock.__table__
        cutoff = (
            select(t.c.block_number)
            .where(t.c.name == self.name)
            .order_by(t.c.block_number.desc())
            .offset(HASH_WINDOW - 1)
            .limit(1)
            .scalar_subquery()
        )
        await s.execute(delete(t).where(t.c.name == self.name, t.c.block_number < cutoff))

    # -- reorgs -------------------------------------------------------------------------------
    async def _handle_reorg(self) -> int:
        """Roll back to the newest remembered block still on the chain; returns events dropped."""
        async with self.sessions() as s, s.begin():
            current = await self._read_checkpoint(s, lock=True)
            t = IndexerBlock.__table__
            known = (
                await s.execute(
                    select(t.c.block_number, t.c.block_hash)
                    .where(t.c.name == self.name)
                    .order_by(t.c.block_number.desc())
                )
            ).all()
            chain = await self.rpc.headers([n for n, _ in known]) if known else {}
            ancestor: tuple[int, str | None] = (self.deployment.deploy_block - 1, None)
            for n, h in known:
                hdr = chain.get(n)
                if hdr is not None and hdr["hash"] == h:
                    ancestor = (n, h)
                    break
            if ancestor[1] is None:
                log.warning(
                    "reorg below the %d-block hash window: re-indexing from block %d",
                    HASH_WINDOW,
                    self.deployment.deploy_block,
                )
            dropped = await self._rollback_to(s, current, *ancestor)
        log.warning(
            "reorg: rolled back from block %d to %d (%d events dropped)", current.block, ancestor[0], dropped
        )
        return dropped

    async def _rollback_to(
        self, s: AsyncSession, current: _Checkpoint, block: int, block_hash: str | None
    ) -> int:
        ev = ChainEventRow.__table__
        entities = [
            e
            for (e,) in (
                await s.execute(
                    select(ev.c.entity).where(ev.c.block_number > block, ev.c.entity.is_not(None)).distinct()
                )
            ).all()
        ]
        dropped = (await s.execute(delete(ev).where(ev.c.block_number > block))).rowcount or 0
        if entities:
            await delete_entities(s, entities)
            state = ProjectionState().apply_all(await load_events(s, entities=entities))
            await write_entities(s, state, entities)
        await self._write_checkpoint(s, current, block, block_hash)
        t = IndexerBlock.__table__
        await s.execute(delete(t).where(t.c.name == self.name, t.c.block_number > block))
        return dropped


# -- rebuilt straight from the chain -----------------------------------------------------------
async def chain_events(
    rpc: AsyncRpc, deployment: Deployment, *, to_block: int | None = None, page_size: int = 2000
) -> list[ChainEvent]:
    """Every event of the deployment up to `to_block` (default head), decoded, without a database."""
    decoder = EventDecoder(deployment)
    addresses = [a for k, a in deployment.contracts.items() if k in CONTRACTS]
    if to_block is None:
        to_block = await rpc.block_number()
    out: list[ChainEvent] = []
    frm, window = deployment.deploy_block, page_size
    while frm <= to_block:
        to = min(to_block, frm + window - 1)
        try:
            logs = await rpc.get_logs(addresses, frm, to)
        except RangeTooLarge:
            if window == 1:
                raise
            window //= 2
            continue
        numbers = sorted({int(lg["blockNumber"], 16) for lg in logs})
        headers = await rpc.headers(numbers) if numbers else {}
        for lg in logs:
            hdr = headers[int(lg["blockNumber"], 16)]
            ev = decoder.decode(lg, int(hdr["timestamp"], 16))
            if ev is not None:
                out.append(ev)
        frm = to + 1
    out.sort(key=lambda e: (e.block_number, e.log_index))
    return out


async def chain_snapshot(
    rpc_url: str, deployment: Deployment, *, to_block: int | None = None, include_events: bool = True
) -> dict[str, list[dict]]:
    """The projection rebuilt from the chain's events alone, in `projection_snapshot`'s form."""
    async with AsyncRpc(rpc_url) as rpc:
        events = await chain_events(rpc, deployment, to_block=to_block)
    snap = ProjectionState().apply_all(events).snapshot()
    if include_events:
        snap["events"] = [ev.row() for ev in events]
    return snap


# -- spot checks against the contracts' views --------------------------------------------------
@dataclass(frozen=True)
class SpotCheck:
    block: int
    checked: int
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


async def spot_check(
    rpc_url: str,
    deployment: Deployment,
    session: AsyncSession,
    *,
    sample: int = 25,
    seed: int | None = None,
    block: int | None = None,
) -> SpotCheck:
    """Compare a random sample of projection rows with the contracts' views (`anchorOf`,
    `credentialStatusOf`, `flow`, `issuer`) at `block` (default: the rows' checkpoint)."""
    from web3 import AsyncHTTPProvider, AsyncWeb3

    from ledger_node.projection import ANCHOR_STATUS, DECISION, ISSUER_STATUS, jurisdiction

    rnd = random.Random(seed)
    if block is None:
        block = (
            await session.execute(
                select(IndexerCheckpoint.block_number)
                .order_by(IndexerCheckpoint.block_number.desc())
                .limit(1)
            )
        ).scalar()
        if block is None:
            return SpotCheck(0, 0)
    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url))
    c = {
        k: w3.eth.contract(address=a, abi=load_artifact(CONTRACTS[k]).abi)
        for k, a in deployment.contracts.items()
        if k in CONTRACTS  # (the pledge registry is not indexed)
    }
    mismatches: list[str] = []
    checked = 0

    def cmp(what: str, ours: dict, theirs: dict) -> None:
        for k, v in ours.items():
            if theirs[k] != v:
                mismatches.append(f"{what}: {k} is {v!r} in the projection, {theirs[k]!r} on chain")

    async def sample_of(model: Any) -> list[Any]:
        rows = (await session.execute(select(model))).scalars().all()
        return rnd.sample(list(rows), min(sample, len(rows)))

    for a in await sample_of(ChainAnchor):
        r = (
            await c["anchorRegistry"]
            .functions.anchorOf(bytes.fromhex(a.root[2:]))
            .call(block_identifier=block)
        )
        cmp(
            f"anchor {a.root}",
            {
                "issuer_id": a.issuer_id,
                "key_version": a.key_version,
                "credential_type": a.credential_type,
                "count": a.count,
                "block_number": a.block_number,
                "block_timestamp": a.block_timestamp,
                "status": a.status,
                "reason": a.reason,
            },
            {
                "issuer_id": r[0],
                "key_version": r[1],
                "credential_type": r[2],
                "count": r[3],
                "block_number": r[4],
                "block_timestamp": r[5],
                "status": ANCHOR_STATUS[r[6]],
                "reason": r[7],
            },
        )
        checked += 1
    for cs in await sample_of(ChainCredentialStatus):
        r = (
            await c["anchorRegistry"]
            .functions.credentialStatusOf(bytes.fromhex(cs.root[2:]), bytes.fromhex(cs.leaf[2:]))
            .call(block_identifier=block)
        )
        cmp(
            f"credential {cs.leaf} in {cs.root}",
            {"status": cs.status, "reason": cs.reason, "timestamp": cs.timestamp},
            {"status": ANCHOR_STATUS[r[0]], "reason": r[1], "timestamp": r[2]},
        )
        checked += 1
    for f in await sample_of(ChainFlow):
        r = await c["dataFlowLedger"].functions.flow(f.flow_id).call(block_identifier=block)
        cmp(
            f"flow {f.flow_id}",
            {
                "asset_leaf": f.asset_leaf,
                "asset_root": f.asset_root,
                "exporter_id": f.exporter_id,
                "importer_id": f.importer_id,
                "exporter": f.exporter,
                "parent_flow_id": f.parent_flow_id,
                "declared_at": f.declared_at,
                "from_jurisdiction": f.from_jurisdiction,
                "to_jurisdiction": f.to_jurisdiction,
                "decision": f.decision,
                "decided_at": f.decided_at or 0,
                "payload_digest": f.payload_digest,
                "declaration_hash": f.declaration_hash,
            },
            {
                "asset_leaf": "0x" + bytes(r[0]).hex(),
                "asset_root": "0x" + bytes(r[1]).hex(),
                "exporter_id": "0x" + bytes(r[2]).hex(),
                "importer_id": "0x" + bytes(r[3]).hex(),
                "exporter": r[4],
                "parent_flow_id": r[5],
                "declared_at": r[6],
                "from_jurisdiction": jurisdiction("0x" + bytes(r[7]).hex()),
                "to_jurisdiction": jurisdiction("0x" + bytes(r[8]).hex()),
                "decision": DECISION[r[9]],
                "decided_at": r[12],
                "payload_digest": "0x" + bytes(r[13]).hex(),
                "declaration_hash": "0x" + bytes(r[14]).hex(),
            },
        )
        checked += 1
    for i in await sample_of(ChainIssuer):
        r = await c["issuerRegistry"].functions.issuer(i.issuer_id).call(block_identifier=block)
        cmp(
            f"issuer {i.issuer_id}",
            {
                "key_version": i.key_version,
                "status": i.status,
                "suspension_reason": i.suspension_reason,
                "active_from": i.active_from,
                "active_until": i.active_until,
                "account": i.account,
                "name": i.name,
                "uscc": i.uscc,
            },
            {
                "key_version": r[0],
                "status": ISSUER_STATUS[r[2]],
                "suspension_reason": r[3],
                "active_from": r[4],
                "active_until": r[5],
                "account": r[6],
                "name": r[7],
                "uscc": r[8],
            },
        )
        checked += 1
    await w3.provider.disconnect()
    return SpotCheck(block, checked, mismatches)
