"""What the benchmark scripts share: a fresh local chain, a scratch PostgreSQL database, and an issuer inside an
in-process registry."""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@contextmanager
def fresh_chain(tmp: Path):
    """A new anvil on a free port with the contracts deployed: yields (rpc_url, manifest path)."""
    from ledger_node import DEV_KEYS, AnvilNode, Chain, deploy
    from ledger_node.node import free_port

    node = AnvilNode(tmp / "node", port=free_port())
    node.start()
    try:
        manifest = tmp / "deployment.json"
        deploy(Chain(node.rpc_url), DEV_KEYS[0], manifest)
        yield node.rpc_url, manifest
    finally:
        node.stop()


@contextmanager
def scratch_database(admin: str):
    """A new database on the PostgreSQL server of `admin` (a postgresql:// URL), dropped afterwards:
    yields its postgresql+asyncpg:// URL."""
    import uuid

    import psycopg

    name = f"certledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def own_signer(work: Path, manifest: Path):
    """A real `certledger signer` process with fresh keys (an issuer's own signer), limits high enough
    for a benchmark: yields its reference for onboarding ({"url", "address"})."""
    import json
    import os
    import signal
    import subprocess
    import time

    import httpx

    from ledger_node.node import free_port

    cli = str(Path(sys.executable).parent / "certledger")
    home = work / "signer"
    home.mkdir(parents=True, exist_ok=True)
    (home / "passphrase").write_text("bench signer\n")
    made = json.loads(
        subprocess.run(
            [
                cli,
                "signer",
                "new-key",
                "--out",
                str(home / "keys"),
                "--passphrase-file",
                str(home / "passphrase"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    deployment = json.loads(manifest.read_text())
    (home / "policy.json").write_text(
        json.dumps(
            {
                "chainId": deployment["chainId"],
                "anchorRegistry": deployment["contracts"]["anchorRegistry"],
                "maxBatchSize": 100_000,
                "batchesPerHour": 1_000_000,
                "credentialsPerDay": 10**10,
            }
        )
    )
    port = free_port()
    with open(home / "signer.out", "ab") as out:
        proc = subprocess.Popen(
            [
                cli,
                "signer",
                "run",
                "--keystore",
                str(home / "keys" / "keystore.json"),
                "--passphrase-file",
                str(home / "passphrase"),
                "--policy",
                str(home / "policy.json"),
                "--log",
                str(home / "signing-log.jsonl"),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/upcheck", timeout=1).text == "OK":
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the signer did not come up")
        yield {"url": url, "address": made["address"]}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@asynccontextmanager
async def issuer_in_process(
    rpc_url: str,
    manifest: Path,
    database_url: str,
    work: Path,
    batch: int,
    signer: dict | None = None,
    **settings_: Any,
):
    """A registry context (pipeline driven by the caller) with one business-licence issuer (with its
    own signer if `signer` is given: see :func:`own_signer`; other settings as keywords): yields (ctx,
    principal, issuance, pipeline)."""
    from registry.core.config import Settings
    from registry.services import onboarding
    from registry.services.context import ServiceContext
    from registry.services.issuance import Issuance
    from registry.services.orgs import Principal, create_organisation
    from registry.services.pipeline import Pipeline
    from registry.services.runtime import settle_heap
    from scripts.samples import make_uscc

    settings = Settings(
        data_dir=work,
        database_url=database_url,
        rpc_url=rpc_url,
        manifest=manifest,
        keystore_passphrase="bench",
        batch_size=batch,
        batch_window_seconds=3600,
        **settings_,
    )
    ctx = await ServiceContext.create(settings)
    issuance = Issuance(ctx)
    try:
        async with ctx.sessions() as s, s.begin():
            org, _ = await create_organisation(
                s,
                ctx,
                name="广州市市场监督管理局",
                identifier=make_uscc(prefix="114401"),
                jurisdiction="CN-GD",
                roles=["issuer"],
                credential_types=["BusinessLicence"],
                signer=signer,
                actor="bench",
                request_id="bench",
            )
        pending = await onboarding.dispatch(ctx, org.id)  # its registration, sent after the commit
        if pending:
            raise SystemExit(f"the bench issuer's on-chain registration did not finish: {pending}")
        settle_heap()  # as `certledger serve` does once started
        yield ctx, Principal(org.id, org.name, ("issuer",), "bench"), issuance, Pipeline(ctx)
    finally:
        await issuance.close()
        await ctx.close()


def service_cpu(pid: int | None = None) -> dict[str, float]:
    """CPU seconds (user + system) so far of a service process (this one if ``pid`` is None) and of
    its Python child processes, the issuance workers (a local anvil it started is not counted)."""
    import psutil

    service = psutil.Process(pid)
    workers = 0.0
    for child in service.children(recursive=True):
        try:
            if child.name().startswith("python"):
                workers += sum(child.cpu_times()[:2])
        except psutil.Error:  # (a worker that ended meanwhile)
            pass
    return {"service": sum(service.cpu_times()[:2]), "workers": workers}
