"""`certledger` — the one command-line entry point (Typer). Chain commands come from ledger_node."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ledger_node.cli import deploy_command, fail, node_app

app = typer.Typer(
    help="certledger: anchor e-licences and data asset certificates on a permissioned chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(node_app, name="node")
app.command("deploy")(deploy_command)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
bundle_app = typer.Typer(help="Trust bundles for offline verification.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bundle_app, name="bundle")
validators_app = typer.Typer(help="The chain's pinned QBFT validators (certledger-verify --validators).",
                             no_args_is_help=True)
app.add_typer(validators_app, name="validators")

console = Console()
err = Console(stderr=True)

Url = Annotated[str, typer.Option("--url", envvar="CERTLEDGER_URL", help="The registry service.")]
ApiKeyOpt = Annotated[
    Optional[str], typer.Option("--api-key", envvar="CERTLEDGER_API_KEY", help="Your organisation's API key.")
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the registry service (embedded defaults: local anvil, started if needed, and SQLite)."""
    import uvicorn

    from registry.api.app import create_app
    from registry.core.config import Settings

    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: a bad CERTLEDGER_* value
        fail(f"bad configuration: {exc}", 2)
    _check_startup(settings)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _check_startup(settings) -> None:
    """The configuration mistakes an operator makes, as one line each before uvicorn starts
    (inside the app's start-up they would end in a traceback)."""
    from ledger_node.deploy import load_manifest
    from ledger_node.errors import LedgerNodeError
    from registry.db.migrate import upgrade

    url = settings.resolved_database_url
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        fail(f"unsupported CERTLEDGER_DATABASE_URL {url.split(':')[0]!r}: use sqlite+aiosqlite:// or "
             "postgresql+asyncpg://", 2)
    if settings.rpc_url:
        try:
            load_manifest(settings.manifest_path)
        except LedgerNodeError as exc:
            fail(str(exc), 2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(url)
    except Exception as exc:  # noqa: BLE001 - the database is unreachable or refuses us
        fail(f"cannot prepare the database at {url.split('@')[-1]}: {type(exc).__name__}: "
             f"{str(exc).splitlines()[0] if str(exc) else ''}", 2)


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[Optional[str], typer.Option(envvar="CERTLEDGER_DATABASE_URL")] = None,
) -> None:
    """Apply the migrations to the database (also done on every service start)."""
    from registry.core.config import Settings
    from registry.db.migrate import upgrade

    settings = Settings()
    url = database_url or settings.resolved_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(url)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        fail(f"migration failed on {url.split('@')[-1]}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    console.print(f"database at {url.split('@')[-1]} is up to date")


def _client(url: str, api_key: str | None, timeout: float = 120.0):
    import httpx

    if not api_key:
        fail("an API key is needed: --api-key or CERTLEDGER_API_KEY", 2)
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)


def _answer(resp) -> tuple[dict | None, str | None]:
    """A service answer as (body, None), or (the error object or None, one line saying what went wrong)."""
    try:
        body = resp.json()
    except ValueError:
        return None, f"the service answered HTTP {resp.status_code} without JSON"
    if resp.status_code < 400 and isinstance(body, dict):
        return body, None
    e = body.get("error") if isinstance(body, dict) else None
    e = e if isinstance(e, dict) else {}
    return e, f"{e.get('message', resp.text)} ({e.get('code')}, HTTP {resp.status_code})"


def _check(resp) -> dict:
    body, error = _answer(resp)
    if error:
        fail(error)
    return body


@app.command()
def issue(
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="BusinessLicence, OperatingPermit or DataAssetCertificate")],
    file: Annotated[Path, typer.Argument(help="JSON Lines: one record per line ({credentialSubject, validFrom?, validUntil?, id?})")],
    url: Url = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = None,
    atomic: Annotated[bool, typer.Option(
        help="Refuse everything if any record is invalid: the whole file goes in one request (within the "
             "service's upload limit, CERTLEDGER_MAX_UPLOAD_BYTES).")] = False,
    chunk: Annotated[int, typer.Option(min=1, help="Records per request (without --atomic).")] = 10_000,
    ids_out: Annotated[Optional[Path], typer.Option("--ids", help="Write the accepted ids here (in file order).")] = None,
) -> None:
    """Issue credentials from a JSONL file through the registry service, with a progress bar.

    Without --atomic the file goes in requests of --chunk records, two in flight (the service checks
    one while it stores the other). If a request fails, no further ones are sent; the accepted ids
    are still written, and the lines not issued are named, so a run can be resumed from them."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    import httpx
    from rich.progress import Progress

    from registry.services.prepare import jsonl_records

    try:
        lines, numbers = jsonl_records(file.read_text(encoding="utf-8"))  # each record, and its file line
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}", 2)
    if not lines:
        fail(f"{file} holds no records", 2)
    size = len(lines) if atomic else chunk
    parts = [(start, lines[start:start + size]) for start in range(0, len(lines), size)]

    def send(part: tuple[int, list[str]]) -> dict:
        """One request's result, or {"failed": reason}."""
        start, records = part
        try:
            resp = client.post("/v1/credentials/bulk", params={"type": type_, "atomic": atomic},
                               content="\n".join(records).encode(), headers={"Content-Type": "application/x-ndjson"})
        except httpx.HTTPError as exc:
            return {"failed": f"cannot reach the registry at {url}: {exc}", "rejected": []}
        body, why = _answer(resp)
        if why is None:
            return body
        if resp.status_code == 413 and atomic:
            why += "; --atomic sends the whole file in one request: split the file or raise the limit"
        details = (body or {}).get("details")  # an upload refused whole (--atomic) names its invalid records
        problems = details if isinstance(details, list) and all(isinstance(d, dict) and "index" in d
                                                                 for d in details) else []
        return {"failed": why, "rejected": problems}

    results: dict[int, dict] = {}
    with _client(url, api_key) as client, Progress(console=err) as progress, ThreadPoolExecutor(2) as pool:
        task = progress.add_task(f"issuing {type_}", total=len(lines))
        waiting = iter(parts)
        in_flight = deque((start, len(records), pool.submit(send, (start, records)))
                          for start, records in islice(waiting, 2))
        while in_flight:  # answers in file order; after a failure nothing more is sent
            start, size, future = in_flight.popleft()
            results[start] = future.result()
            progress.advance(task, size)
            if "failed" in results[start]:
                waiting = iter(())
            for start_, records in islice(waiting, 1):
                in_flight.append((start_, len(records), pool.submit(send, (start_, records))))
    accepted, rejected, ids, not_issued = 0, [], [], []
    for start, records in parts:
        res = results.get(start, {"failed": "not sent after the failure above", "rejected": []})
        rejected += [{**r, "line": numbers[start + r["index"]]} for r in res["rejected"]]
        if "failed" in res:
            not_issued.append((numbers[start], numbers[start + len(records) - 1], res["failed"]))
            continue
        accepted += res["accepted"]
        ids += res["ids"]
    if ids_out:
        ids_out.write_text("".join(f"{i}\n" for i in ids))
    console.print(f"accepted {accepted} of {len(lines)} {type_} records; they are anchored with the next batches")
    for r in rejected[:20]:
        err.print(f"  line {r['line']}: {'; '.join(r['errors'])}", highlight=False, soft_wrap=True)
    if rejected:
        err.print(f"{len(rejected)} records rejected")
    for first, last, why in not_issued:
        err.print(f"lines {first}-{last} not issued: {why}", highlight=False, soft_wrap=True)
    if not_issued and accepted:
        err.print(f"the {accepted} accepted records stand" + (f" (their ids are in {ids_out})" if ids_out else "")
                  + "; issue the lines not issued again once the cause is fixed", highlight=False, soft_wrap=True)
    if rejected or not_issued:
        raise typer.Exit(1)


@bundle_app.command("export")
def bundle_export(
    file: Annotated[Path, typer.Argument(help="Where to write the signed trust bundle (JSON).")],
    url: Url = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = None,
    proofs: Annotated[bool, typer.Option(
        "--proofs", help="Carry a validator-sealed proof package for every anchored credential "
                         "(certledger-verify --validators needs nothing else; docs/FORMAT.md §16).")] = False,
) -> None:
    """Export the signed trust bundle (for certledger-verify --bundle)."""
    import httpx

    with _client(url, api_key) as client:
        try:
            body = _check(client.get("/v1/trust-bundle", params={"proofs": "true"} if proofs else None,
                                     timeout=600))
        except httpx.HTTPError as exc:
            fail(f"cannot reach the registry at {url}: {exc}")
    file.write_text(json.dumps(body, ensure_ascii=False, indent=1))
    console.print(f"trust bundle as of block {body['block']['number']} written to {file} "
                  f"(signed by {body['signature']['signer']}"
                  + (", with sealed proofs)" if "proofPackage" in body else ")"))


@validators_app.command("export")
def validators_export(
    file: Annotated[Path, typer.Argument(help="Where to write the validators file (JSON, docs/FORMAT.md §14.2).")],
    genesis: Annotated[Optional[Path], typer.Option(
        "--genesis", help="A Besu QBFT genesis.json: pin the validators its extraData names.")] = None,
    dev: Annotated[bool, typer.Option(
        "--dev", help="The development chain's test validators (ledger_node.DEV_VALIDATOR_KEYS).")] = False,
    chain_id: Annotated[Optional[int], typer.Option(
        "--chain-id", help="Chain id (default: the genesis's, or 31337 with --dev).")] = None,
) -> None:
    """Export the validators file a bank pins with certledger-verify --validators."""
    from verifier import ValidatorSet, eth_address
    from verifier.errors import InvalidValidatorSet

    if (genesis is None) == (not dev):
        fail("say which validators: --genesis FILE (a Besu network) or --dev (the development chain)", 2)
    if dev:
        from ledger_node.node import DEV_CHAIN_ID, DEV_VALIDATOR_KEYS

        addresses = tuple(eth_address(k) for k in DEV_VALIDATOR_KEYS)
        cid = chain_id or DEV_CHAIN_ID
    else:
        import rlp

        try:
            g = json.loads(genesis.read_text(encoding="utf-8"))
            extra = rlp.decode(bytes.fromhex(g["extraData"].removeprefix("0x")))
            addresses = tuple("0x" + bytes(v).hex() for v in extra[1])
            cid = chain_id or int(g["config"]["chainId"])
        except (OSError, ValueError, KeyError, TypeError, IndexError, rlp.exceptions.DecodingError) as exc:
            fail(f"{genesis} is not a Besu QBFT genesis file with validators in extraData ({exc})", 2)
    try:
        pinned = ValidatorSet(chain_id=cid, validators=addresses)
    except InvalidValidatorSet as exc:
        fail(str(exc), 2)
    file.write_text(json.dumps(pinned.to_json(), indent=2) + "\n")
    console.print(f"{len(pinned.validators)} validators of chain {pinned.chain_id} written to {file} "
                  f"(a header is final with {pinned.threshold} seals)")


@app.command("audit")
def audit_command(
    spot: Annotated[int, typer.Option(help="Anchors to spot-check with view calls.")] = 25,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    adopt: Annotated[bool, typer.Option(
        "--adopt-chain-status",
        help="Where only a status differs (a change made on the chain outside the registry), write the chain's "
             "status, reason and date into the database, each with an audit entry.")] = False,
) -> None:
    """Compare the chain with the registry's database; print every difference (exit 1 if any remains)."""
    import asyncio

    from registry.core.config import Settings
    from registry.services.context import ServiceContext
    from registry.services.reconcile import adopt_chain_status, audit

    async def run():
        ctx = await ServiceContext.create(Settings())
        try:
            report = await audit(ctx, spot=spot)
            adopted, skipped = await adopt_chain_status(ctx, report) if adopt else ([], [])
            if adopted:  # what is left
                report = await audit(ctx, spot=spot)
            return report, adopted, skipped
        finally:
            await ctx.close()

    try:
        report, adopted, skipped = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        fail(f"audit could not run: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", 2)
    if as_json:
        print(json.dumps(report.to_json() | ({"adopted": adopted, "notAdopted": skipped} if adopt else {}),
                         indent=2, ensure_ascii=False))
    else:
        for line in adopted:
            console.print(f"  [green]adopted[/green] {line}", highlight=False, soft_wrap=True)
        for line in skipped:
            console.print(f"  [yellow]not adopted[/yellow] {line}", highlight=False, soft_wrap=True)
        console.print(f"audit at block {report.block}: {report.anchors_checked} batches, "
                      f"{report.credentials_checked} credentials, {report.spot_checked} anchors spot-checked")
        for d in report.differences:
            console.print(f"  [red]✗[/red] {d}", highlight=False, soft_wrap=True)
        console.print("[green]clean: the chain and the database agree[/green]" if report.clean
                      else f"[red]{len(report.differences)} differences[/red]"
                      + ("" if adopt or not report.status_differences else
                         f" ({len(report.status_differences)} of status only: --adopt-chain-status takes the chain's)"),
                      soft_wrap=True)
    raise typer.Exit(0 if report.clean else 1)


@app.command("bench")
def bench_command(
    quick: Annotated[bool, typer.Option(help="Smaller runs (a smoke test of the benchmarks).")] = False,
) -> None:
    """Run every benchmark (scripts/bench) and rewrite docs/BENCHMARKS.md."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "scripts" / "bench"
    if not script.exists():
        fail("scripts/bench is not in this installation: run it from a source checkout", 2)
    raise typer.Exit(subprocess.call([sys.executable, str(script), *(["--quick"] if quick else [])]))


def _mount() -> None:
    """The command groups defined in other modules, imported eagerly: a broken import fails
    ``certledger`` loudly rather than leaving a command out (tests/registry/test_mounting.py)."""
    from ledger_node.index_cli import index_command
    from registry.bundle_cli import cosign_command
    from registry.demo import demo_command
    from registry.flow_cli import flow_app
    from registry.signer.cli import signer_app

    app.command("index")(index_command)
    app.add_typer(flow_app, name="flow")
    app.add_typer(signer_app, name="signer")
    app.command("demo")(demo_command)
    bundle_app.command("cosign")(cosign_command)


_mount()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
