"""Accepting credentials: validate, build the W3C document, salt, hash, persist as *accepted*.

Large uploads are prepared (a JSON Lines record decoded from its text, its shape and schema
checked, document, salts, digests, targetHash, the row's values: :mod:`registry.services.prepare`)
in a process pool on every core, in chunks; the service process checks the ids records name
themselves (not used before in the upload, nor already) and writes each chunk's rows as it
arrives, in upload order, all in one transaction together with the audit entry, after reserving
a range of status-list indexes from the `counters` table. Salts are not stored: each credential keeps one
random 32-byte seed they are derived from (docs/FORMAT.md §3.2).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.core.errors import BadRequest, Forbidden, ValidationFailed
from registry.db.models import Batch, BatchTree, Counter, Credential, Organisation
from registry.db.session import get_one
from registry.services import audit
from registry.services.orgs import CREDENTIAL_TYPE_CODES, Principal
from registry.services.participants import participant_ids
from registry.services.prepare import ROW_FIELDS, prepare_upload, sqlite_datetime
from verifier.issuance import build_document, tree_bytes

if TYPE_CHECKING:
    from registry.services.context import ServiceContext

log = logging.getLogger(__name__)
POOL_THRESHOLD = 2000  # smaller uploads are prepared in the service process
CHUNK = 1250  # records per worker task: small enough that writing rows overlaps preparing them


@dataclass
class AcceptResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


def document_of(cred: Credential, deployment: Any) -> dict:
    """A credential row's document: its ``packed_document`` column as :func:`prepare_records` wrote
    it (``prepare.PACKED_MEMBERS``, registry/services/docpack.py), its id from the row's id column
    (a row written before stop 37 holds it in both), and the other members rebuilt from the row and
    the deployment."""
    from registry.services.docpack import stored_document
    from verifier.issuance import TYPE_NAMES

    doc = {"id": cred.id, **stored_document(cred.packed_document)}
    dep = {"chainId": deployment.chain_id, "anchorRegistry": deployment.anchor_registry}
    return build_document(doc, TYPE_NAMES[cred.credential_type], doc["issuer"], cred.status_index, dep)


async def reserve_status_indexes(session: AsyncSession, n: int) -> int:
    """Reserve n consecutive status-list indexes; returns the first. Row-locked on PostgreSQL."""
    row = (
        await session.execute(
            update(Counter)
            .where(Counter.name == "status_index")
            .values(value=Counter.value + n)
            .returning(Counter.value)
        )
    ).scalar()
    if row is None:
        raise RuntimeError("the status_index counter is missing: run `certledger db upgrade`")
    return row - n


class Issuance:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                max_workers=max(2, (multiprocessing.cpu_count() or 2)),
                mp_context=multiprocessing.get_context("spawn"),
            )
        return self._pool

    async def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _chunks(
        self,
        items: list,
        from_text: bool,
        type_name: str,
        suite: str,
        issuer: dict,
        dep: dict,
        first: int,
        sqlite: bool,
        subject_key: bytes,
    ) -> list[asyncio.Future]:
        """One future per chunk of the upload's items, started now: (the chunk's first position,
        :func:`prepare_upload` of it) — in the worker processes, or for a small upload here."""
        loop = asyncio.get_running_loop()
        if len(items) < POOL_THRESHOLD:
            done = loop.create_future()
            done.set_result(
                (
                    0,
                    prepare_upload(
                        items, from_text, type_name, suite, issuer, dep, first, sqlite, subject_key
                    ),
                )
            )
            return [done]

        async def one(start: int, end: int) -> tuple[int, Any]:
            return start, await loop.run_in_executor(
                self.pool(),
                prepare_upload,
                items[start:end],
                from_text,
                type_name,
                suite,
                issuer,
                dep,
                first + start,
                sqlite,
                subject_key,
            )

        return [asyncio.ensure_future(one(start, end)) for start, end in chunk_spans(len(items))]

    @staticmethod
    async def _refuse_used_ids(s: AsyncSession, prepared: list, supplied: list[int], seen: set[str]) -> None:
        """Of one chunk's prepared records that named their own id (``supplied``), refuse in place
        those whose id an earlier record of the upload (``seen``, updated) or a stored credential has."""
        own = [k for k in supplied if type(prepared[k]) is tuple]
        fresh = []
        for k in own:
            cid = prepared[k][0]
            if cid in seen:
                prepared[k] = [f"duplicate id {cid} in this upload"]
            else:
                seen.add(cid)
                fresh.append(k)
        for j in range(0, len(fresh), 1000):
            part = fresh[j : j + 1000]
            taken = set(
                (
                    await s.execute(
                        select(Credential.id).where(Credential.id.in_([prepared[k][0] for k in part]))
                    )
                ).scalars()
            )
            for k in part:
                if prepared[k][0] in taken:
                    prepared[k] = [f"a credential with id {prepared[k][0]} exists already"]

    async def accept(
        self,
        principal: Principal,
        type_name: str,
        records: list[Any] | None = None,
        *,
        atomic: bool,
        request_id: str,
        texts: list[bytes] | list[str] | None = None,
        lines: list[int] | None = None,
    ) -> AcceptResult:
        """Validate, prepare and store an upload as accepted credentials: ``records``, or ``texts``,
        each a record's JSON text, as its UTF-8 bytes or as str (a JSON Lines upload: the workers
        decode them; bytes reach them without being encoded, and orjson reads them as they are), with ``lines``
        the line number of each in the upload (for naming a text that is not JSON: that refuses
        the whole upload, 400). Records are refused one by one (or, ``atomic``, the whole upload
        with them) for their shape, their schema, and an id used before in the upload or already."""
        if (records is None) == (texts is None):
            raise ValueError("give records or texts")
        items: list[Any] = records if records is not None else texts  # type: ignore[assignment]
        if type_name not in CREDENTIAL_TYPE_CODES:
            raise BadRequest(
                f"unknown credential type {type_name!r}: choose from {', '.join(CREDENTIAL_TYPE_CODES)}"
            )
        if not principal.has("issuer"):
            raise Forbidden("only an issuer organisation may issue credentials")
        if not items:
            raise BadRequest("no records to issue")
        ctx = self.ctx
        code = CREDENTIAL_TYPE_CODES[type_name]
        async with ctx.sessions() as s:
            org = await get_one(s, Organisation, principal.org_id)
            subject_key = (await participant_ids(s)).key
        if org.issuer_id is None:
            raise Forbidden(f"{org.name} is not registered as an issuer on-chain")
        if code not in (org.credential_types or []):
            raise Forbidden(f"{org.name} may not issue {type_name}")
        issuer = {
            "id": f"did:certledger:{ctx.deployment.chain_id}:issuer:{org.issuer_id}",
            "name": org.name,
            "unifiedSocialCreditCode": org.identifier,
        }
        dep = {"chainId": ctx.deployment.chain_id, "anchorRegistry": ctx.deployment.anchor_registry}
        suite = org.suite or "secp256k1"
        n = len(items)

        async with ctx.writing() as s:
            first = await reserve_status_indexes(s, n)  # (a refused record leaves its index unused)
        result = AcceptResult()
        problems: dict[int, list[str]] = {}
        seen: set[str] = set()  # the ids records named themselves, so far in the upload
        accepted: list[tuple[int, str]] = []
        size = ctx.settings.batch_size
        sqlite = ctx.engine.dialect.name == "sqlite"
        # The workers start now; the write transaction (on SQLite, the one writer's turn) begins
        # once the first chunk is ready, so other writers are not held up while the workers work.
        # Chunks are taken in upload order: of two records with one id, the first is accepted.
        chunks = self._chunks(
            items, texts is not None, type_name, suite, issuer, dep, first, sqlite, subject_key
        )
        sealer: _UploadSealer | None = None
        try:
            await asyncio.wait([chunks[0]])
            async with ctx.writing() as s:
                # An upload of at least a batch seals its own full batches as it writes the rows, so
                # the pipeline need not rewrite them (seal_due would set batch_id on each row later).
                sealer = _UploadSealer(s, org.id, code, size) if n >= size else None
                writer = await _RowWriter.open(s)
                now_ = datetime.now(UTC)
                fixed = (org.id, code, sqlite_datetime(now_) if sqlite else now_, 1, 0)  # FIXED_FIELDS
                # rows are written chunk by chunk as the workers finish them, in one transaction
                for chunk in chunks:
                    start, (prepared, supplied) = await chunk
                    await self._refuse_used_ids(s, prepared, supplied, seen)
                    rows, leaves = [], []
                    for k, prep in enumerate(prepared):
                        if type(prep) is str:  # a text that is not JSON: the upload is refused (rolled back)
                            line = lines[start + k] if lines is not None else start + k + 1
                            raise BadRequest(f"line {line} is not valid JSON: {prep}", details={"line": line})
                        if type(prep) is list:
                            problems[start + k] = prep
                        else:
                            rows.append(prep[:-1] + fixed)
                            leaves.append(prep[-1])
                            accepted.append((start + k, prep[0]))
                    if rows and not (atomic and problems):
                        batch_ids = await sealer.assign(leaves) if sealer is not None else None
                        await writer.write(rows, batch_ids)
                if atomic and problems:  # (every chunk was checked: each invalid record is named)
                    raise ValidationFailed(
                        f"{len(problems)} of {n} records are invalid; nothing was issued",
                        details=_problem_list(problems),
                    )
                sealed = await sealer.finish() if sealer is not None else 0
                await audit.append(
                    s,
                    actor=principal.org_name,
                    action="issue",
                    target=f"{type_name}:{len(accepted)}",
                    request_id=request_id,
                    org_id=principal.org_id,
                    details={
                        "count": len(accepted),
                        "rejected": len(problems),
                        "first": accepted[0][1] if accepted else None,
                        "sealedBatches": sealed,
                    },
                )
        finally:  # refused part-way: the chunks still in the workers are not waited for
            for chunk in chunks:
                chunk.cancel()
            await asyncio.gather(*chunks, return_exceptions=True)
            if sealer is not None:
                await sealer.abandon()
        if writer.sqlite and len(accepted) >= POOL_THRESHOLD:
            ctx.wal_grown.set()  # (the idle pipeline copies the log into the database: ctx.checkpoint_wal)
        if sealed:
            ctx.batches_sealed.set()  # (committed: the pipeline signs and anchors them now)
        ctx.crash_point("accepted")
        for _ in range(sealed):
            ctx.crash_point("sealed")
        result.accepted = [cid for _, cid in accepted]
        result.rejected = _problem_list(problems)
        return result


def chunk_spans(n: int) -> list[tuple[int, int]]:
    """The worker tasks of an upload of ``n`` records, as (start, end): ``CHUNK`` records each, but
    the last 1 to ``CHUNK`` in pieces of at most a quarter chunk. The service writes a chunk's rows
    after the workers return it, and after the last one it writes alone, the workers done: the rows
    of a quarter chunk take it ~3 ms, not ~10 (and the two workers finish closer together)."""
    tail = (n - 1) // CHUNK * CHUNK  # (the last 1 to CHUNK records)
    pieces = -(-(n - tail) // -(-CHUNK // 4))  # of at most a quarter chunk each, evenly
    cuts = [tail + (n - tail) * k // pieces for k in range(pieces + 1)]
    return [(a, a + CHUNK) for a in range(0, tail, CHUNK)] + list(zip(cuts, cuts[1:]))


#: The values every row of one upload shares, after :data:`ROW_FIELDS`.
FIXED_FIELDS = ("issuer_org_id", "credential_type", "accepted_at", "status", "status_reason")


class _RowWriter:
    """Writes credential rows (ROW_FIELDS + FIXED_FIELDS values, then batch_id; datetimes already as
    SQLAlchemy would store them) on the session's connection and transaction, with the driver's
    bulk path: COPY on PostgreSQL, executemany on SQLite."""

    COLUMNS = (*ROW_FIELDS, *FIXED_FIELDS, "batch_id")

    def __init__(self, conn: Any, sqlite: bool):
        self.conn, self.sqlite = conn, sqlite

    @classmethod
    async def open(cls, session: AsyncSession) -> _RowWriter:
        conn = await session.connection()
        return cls(conn, conn.dialect.name == "sqlite")

    async def write(self, rows: list[tuple], batch_ids: list[int] | None) -> None:
        values = (
            [row + (b,) for row, b in zip(rows, batch_ids)] if batch_ids else [row + (None,) for row in rows]
        )
        if self.sqlite:
            sql = (
                f"INSERT INTO credentials ({', '.join(self.COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(self.COLUMNS))})"
            )
            await self.conn.exec_driver_sql(sql, values)
        else:
            raw = await self.conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(
                "credentials", records=values, columns=self.COLUMNS
            )


class _UploadSealer:
    """Assigns an upload's rows to new `sealed` batches of exactly `size`, inside the upload's
    transaction, and stores each full batch's whole Merkle tree (of the leaves the workers hashed)
    as its ``batch_trees`` row, so signing it reads no credential rows and builds no tree. A
    batch's tree is built in a thread (the C builder releases the GIL) as soon as its last row is
    assigned, while its rows and the upload's later chunks are written. A last, partial batch is
    dissolved again (its rows wait for more credentials or the batch window, as any accepted
    credential does)."""

    def __init__(self, session: AsyncSession, org_id: int, ctype: int, size: int):
        self.s, self.org_id, self.ctype, self.size = session, org_id, ctype, size
        self.batch: Batch | None = None
        self.leaves: list[bytes] = []
        self.trees: dict[int, asyncio.Future[bytes]] = {}  # batch id -> its tree, being built

    async def assign(self, leaves: list[bytes]) -> list[int]:
        """The batch id of each of the next rows (given by their leaf hashes)."""
        out: list[int] = []
        n = len(leaves)
        while len(out) < n:
            if self.batch is None:
                self.batch = Batch(
                    issuer_org_id=self.org_id,
                    credential_type=self.ctype,
                    state="sealed",
                    count=self.size,
                    created_at=datetime.now(UTC),
                    attempts=0,
                    status=1,
                    status_reason=0,
                )
                self.s.add(self.batch)
                await self.s.flush()
            take = min(n - len(out), self.size - len(self.leaves))
            self.leaves += leaves[len(out) : len(out) + take]
            out += [self.batch.id] * take
            if len(self.leaves) == self.size:  # full: its tree is built while its rows are written
                self._close(self.batch.id)
        return out

    def _close(self, batch_id: int) -> None:
        """The open batch is full: build its tree in a thread; the next row opens a new batch."""
        leaves = b"".join(self.leaves)
        self.trees[batch_id] = asyncio.ensure_future(asyncio.to_thread(tree_bytes, leaves))
        self.batch, self.leaves = None, []

    async def finish(self) -> int:
        """Dissolve the partial last batch, store the full batches' trees; returns the number of
        full batches sealed."""
        if self.batch is not None:  # (not full: a full batch is closed as its last row is assigned)
            await self.s.execute(
                update(Credential).where(Credential.batch_id == self.batch.id).values(batch_id=None)
            )
            await self.s.delete(self.batch)
        for batch_id, tree in self.trees.items():
            self.s.add(BatchTree(batch_id=batch_id, nodes=await tree))
        await self.s.flush()
        return len(self.trees)

    async def abandon(self) -> None:
        """Wait for any tree still being built: an upload that failed part-way stores none of them
        (after :meth:`finish`, every one is built already)."""
        await asyncio.gather(*self.trees.values(), return_exceptions=True)


def _problem_list(problems: dict[int, list[str]]) -> list[dict]:
    return [{"index": i, "errors": errs} for i, errs in sorted(problems.items())][:1000]
