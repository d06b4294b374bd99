"""Everything a running service holds: settings, DB, chain connection, keys.

`ServiceContext.create(settings)` applies the migrations, makes sure the chain is there (on the
embedded defaults it starts the local anvil and deploys the contracts when needed) and loads the
deployment manifest. The chain may be down later: the pipeline queues and /health says degraded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field

from eth_account import Account
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ledger_node.deploy import Deployment, load_manifest
from ledger_node.node import DEV_CHAIN_ID, DEV_KEYS
from registry.core.config import Settings
from registry.core.errors import BadRequest, Conflict
from registry.db.session import make_engine, make_sessionmaker
from registry.services.caches import AuthCache, VerifierCache
from registry.services.chain import ServiceChain
from registry.services.exchange import PresentationExchange
from registry.services.keys import decrypt_secret, encrypt_secret

log = logging.getLogger("certledger.service")

#: Called with a point's name (accepted, sealed, signed, sending, broadcast, anchored, change_mined,
#: …) as a batch or a chain transaction passes it. The service passes :func:`no_crash`; only a test
#: installs a fault there (tests/support/crashing_service.py: SIGKILL the process at the N-th passage).
CrashHook = Callable[[str], None]


def no_crash(point: str) -> None:
    """The production crash hook: nothing happens at any point."""


def prepare_chain(settings: Settings) -> tuple[str, Deployment]:
    """Resolve the RPC URL and the deployment (embedded: start anvil and deploy if needed). Sync."""
    from ledger_node.chain import Chain
    from ledger_node.deploy import check_manifest, deploy
    from ledger_node.node import AnvilNode

    if settings.rpc_url:
        rpc = settings.rpc_url
        deployment = load_manifest(settings.manifest_path)
        return rpc, deployment
    node = AnvilNode(settings.data_dir, port=settings.node_port)
    status = node.start()
    chain = Chain(status.rpc_url)
    deployment, _ = deploy(
        chain,
        settings.governance_key.get_secret_value() if settings.governance_key else DEV_KEYS[0],
        settings.manifest_path,
    )
    check_manifest(chain, deployment, settings.manifest_path)
    return status.rpc_url, deployment


@dataclass(frozen=True)
class ServiceContext:
    """What every request and background task of one service shares. Frozen: nothing is attached
    at run time. The background work (pipeline, indexer) is :class:`registry.services.runtime.Background`,
    made by the API's lifespan and injected where it is needed; a test that wants other settings
    makes another context with :func:`dataclasses.replace`."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    rpc_url: str
    deployment: Deployment
    chain: ServiceChain
    governance_key: str
    operator_key: str
    #: SQLite only (one writer at a time): see :meth:`writing`
    write_gate: asyncio.Lock | None = None
    #: authenticated API keys for a few seconds (registry.api.deps.principal)
    auth_cache: AuthCache = field(default_factory=AuthCache)
    #: the Verifier over the registry's own trust bundle (/v1/verify, the verify page, flow declarations)
    verifier_cache: VerifierCache = field(default_factory=VerifierCache)
    #: presentation requests opened on the verify page and their answers (registry.services.exchange)
    exchange: PresentationExchange = field(default_factory=PresentationExchange)
    #: a fault only tests install (see :data:`CrashHook`)
    crash_point: CrashHook = no_crash
    #: set when an upload here sealed batches: the pipeline's next pass starts at once instead of
    #: after its poll interval (registry.services.pipeline.Pipeline.run_forever)
    batches_sealed: asyncio.Event = field(default_factory=asyncio.Event)
    #: SQLite: set when an upload here left a large write-ahead log; the pipeline copies it into the
    #: database file once it has nothing to move (:meth:`checkpoint_wal`)
    wal_grown: asyncio.Event = field(default_factory=asyncio.Event)

    async def checkpoint_wal(self) -> None:
        """Copy the write-ahead log into the database file (a PASSIVE checkpoint, which waits for no
        reader or writer), so that a later large commit does not do it in the committing upload
        (registry/db/session.py sets the automatic checkpoint to a size only a service that never
        runs this reaches). The pipeline runs it when a pass finds nothing to move, after the uploads'
        batches are anchored: run at once after each upload, it took 20-45 ms of CPU from the next
        upload's rows and the batches' trees, on both cores, while they were busy."""
        self.wal_grown.clear()
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # noqa: BLE001 - the next commit's automatic checkpoint covers it
            log.warning("background WAL checkpoint failed: %s", exc)

    def anchors_changed(self) -> None:
        """Anchors or statuses changed here: this instance's next verification sees them."""
        self.verifier_cache.invalidate()

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        rpc_url: str | None = None,
        deployment: Deployment | None = None,
        crash_point: CrashHook = no_crash,
    ) -> ServiceContext:
        from registry.db.migrate import upgrade

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        await asyncio.to_thread(upgrade, url)
        rpc, dep = (
            (rpc_url, deployment)
            if rpc_url is not None and deployment is not None
            else await asyncio.to_thread(prepare_chain, settings)
        )
        engine = make_engine(url, sqlite_cache_mib=settings.sqlite_cache_mib)
        gov = settings.governance_key.get_secret_value() if settings.governance_key else None
        if gov is None:
            if dep.chain_id != DEV_CHAIN_ID:
                raise BadRequest("CERTLEDGER_GOVERNANCE_KEY is required outside the development chain")
            gov = DEV_KEYS[0]
        chain = ServiceChain(rpc, dep, batch_calls=settings.rpc_batch_calls)
        ctx = cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            rpc_url=rpc,
            deployment=dep,
            chain=chain,
            governance_key=gov,
            operator_key=_operator_key(settings),
            write_gate=asyncio.Lock() if engine.dialect.name == "sqlite" else None,
            crash_point=crash_point,
        )
        return ctx

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on leaving (rolled back on an error).

        SQLite has one writer at a time. Without this, a writer that finds the database locked
        (the pipeline behind a 10,000-credential upload, a second upload behind the first) waits
        in SQLite's busy handler, which sleeps between tries, up to 100 ms at a time once a wait
        passes 0.3 s, so it starts up to 100 ms after the lock is free. The service's own writers
        queue here instead and start the moment the one before them commits. PostgreSQL: no gate."""
        async with self.write_gate or nullcontext(), self.sessions() as s, s.begin():
            yield s

    async def close(self) -> None:
        """Close the chain connection and the database engine (the background work, if any, is
        stopped first by :meth:`registry.services.runtime.Background.stop`)."""
        try:
            await self.chain.close()
        except Exception:  # noqa: BLE001 - shutting down
            pass
        await self.engine.dispose()

    @property
    def operator_address(self) -> str:
        return Account.from_key(self.operator_key).address


def _operator_key(settings: Settings) -> str:
    """The trust-bundle signing key: an encrypted keystore in data_dir/secrets, made on first use."""
    path = settings.data_dir / "secrets" / "operator-keystore.json"
    passphrase = settings.passphrase()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        acct = Account.create()
        path.touch(mode=0o600)
        path.write_text(encrypt_secret("0x" + bytes(acct.key).hex(), passphrase))
    try:
        return decrypt_secret(path.read_text(), passphrase)
    except ValueError:
        raise Conflict(
            f"cannot open the operator keystore {path}: wrong CERTLEDGER_KEYSTORE_PASSPHRASE"
        ) from None
