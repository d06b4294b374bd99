"""Everything a running service holds: settings, DB, chain connection, keys.

`ServiceContext.create(settings)` applies the migrations, makes sure the chain is there (on the
embedded defaults it starts the local anvil and deploys the contracts when needed) and loads the
deployment manifest. The chain may be down later: the pipeline queues and /health says degraded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from ledger_node.indexer import Indexer
    from registry.services.pipeline import Pipeline


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


@dataclass
class ServiceContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    rpc_url: str
    deployment: Deployment
    chain: ServiceChain
    governance_key: str
    operator_key: str
    background: list[asyncio.Task] = field(default_factory=list)
    admin_key_printed: str | None = None
    #: SQLite only (one writer at a time): see :meth:`writing`
    write_gate: asyncio.Lock | None = None
    #: authenticated API keys for a few seconds (registry.api.deps.principal)
    auth_cache: AuthCache = field(default_factory=AuthCache)
    #: the Verifier over the registry's own trust bundle (/v1/verify, the verify page, flow declarations)
    verifier_cache: VerifierCache = field(default_factory=VerifierCache)
    #: presentation requests opened on the verify page and their answers (registry.services.exchange)
    exchange: PresentationExchange = field(default_factory=PresentationExchange)
    #: set by ``runtime.start_background`` (the API's lifespan); None in a bare context (CLI, audit)
    pipeline: Pipeline | None = None
    indexer: Indexer | None = None
    #: called with a point's name (accepted, sealed, signed, sending, broadcast, anchored,
    #: change_mined) as a batch or a change passes it: does nothing, unless a test installs a fault
    #: there (tests/support/crashing_service.py: SIGKILL the process at the N-th passage)
    crash_point: Callable[[str], None] = field(default=lambda point: None)

    def anchors_changed(self) -> None:
        """Anchors or statuses changed here: this instance's next verification sees them."""
        self.verifier_cache.invalidate()

    @classmethod
    async def create(
        cls, settings: Settings, *, rpc_url: str | None = None, deployment: Deployment | None = None
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
        engine = make_engine(url)
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
        for t in self.background:
            t.cancel()
        for t in self.background:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        indexer = self.indexer
        if indexer is not None:
            try:
                await indexer.close()
            except Exception:  # noqa: BLE001 - shutting down
                pass
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
