"""`certledger flow ...` — declare, decide, show and trace cross-border data flows.

`trace` asks the registry service (the DB's view); `trace --from-chain` rebuilds the trace from
the chain's events alone (FlowDeclared, FlowDecided, certificate status changes) over JSON-RPC,
with no registry and no DB; `--check` also fetches the registry's trace and exits 1 unless both
agree on everything the chain knows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from registry.cli._common import ApiKeyOpt, Url, call, console, emit, err, fail, load_settings

flow_app = typer.Typer(help="Cross-border data flows: declare, decide, trace.", no_args_is_help=True)


@flow_app.command()
def declare(
    file: Annotated[Path, typer.Argument(help="The declaration as JSON (see POST /v1/flows).")],
    url: Url = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = None,
) -> None:
    """Declare a flow (or an onward transfer, with parentFlowId): anchored on the data-flow ledger."""
    try:
        body = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc}", 2)
    r = call("POST", url, api_key, "/v1/flows", content=body, headers={"content-type": "application/json"})
    f = r.json()
    console.print(
        f"flow {f['flowId']} declared ({f['declaration']['fromJurisdiction']} → "
        f"{f['declaration']['toJurisdiction']}), tx {f['txHash']}"
    )


@flow_app.command()
def decide(
    flow_id: Annotated[int, typer.Argument(help="The flow id.")],
    approve: Annotated[bool, typer.Option("--approve/--reject", help="Approve or reject.")],
    reason: Annotated[str, typer.Option(help="Why (required to reject).")] = "",
    url: Url = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = None,
) -> None:
    """Approve or reject a declared flow (regulator)."""
    r = call(
        "POST",
        url,
        api_key,
        f"/v1/flows/{flow_id}/decision",
        json={"decision": "approved" if approve else "rejected", "reason": reason},
    )
    console.print(f"flow {flow_id} {r.json()['status']}, tx {r.json()['decision']['txHash']}")


@flow_app.command()
def show(
    flow_id: Annotated[int, typer.Argument()], url: Url = "http://127.0.0.1:8000", api_key: ApiKeyOpt = None
) -> None:
    """One flow as JSON."""
    emit(
        json.dumps(call("GET", url, api_key, f"/v1/flows/{flow_id}").json(), ensure_ascii=False, indent=2),
        None,
    )


@flow_app.command()
def trace(
    asset: Annotated[
        str | None, typer.Option(help="Certificate id, or its leaf 0x… (--from-chain: the leaf).")
    ] = None,
    organisation: Annotated[
        str | None, typer.Option(help="Organisation identifier (or id, or participant id).")
    ] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="Flows from or to it (CN covers CN-GD).")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Declared at or after (date or RFC 3339).")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="Declared at or before.")] = None,
    format_: Annotated[str, typer.Option("--format", help="json, csv or svg.")] = "json",
    table: Annotated[str, typer.Option(help="CSV table: flows, violations or totals.")] = "flows",
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    from_chain: Annotated[
        bool, typer.Option("--from-chain", help="Rebuild from chain events alone.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="With --from-chain: compare with the registry's trace.")
    ] = False,
    rpc_url: Annotated[
        str | None,
        typer.Option("--rpc-url", envvar="CERTLEDGER_RPC_URL", help="JSON-RPC endpoint (--from-chain)."),
    ] = None,
    deployment: Annotated[
        Path | None,
        typer.Option(
            "--deployment", envvar="CERTLEDGER_MANIFEST", help="Deployment manifest (--from-chain)."
        ),
    ] = None,
    url: Url = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = None,
) -> None:
    """The flow graph, totals per jurisdiction pair and violations — from the registry, or the chain."""
    from registry.core.errors import RegistryError
    from registry.flows import render
    from registry.flows import trace as flow_trace

    if format_ not in ("json", "csv", "svg"):
        fail(f"unknown format {format_!r}: json, csv or svg", 2)
    if table not in render.CSV_TABLES:
        fail(f"unknown table {table!r}: flows, violations or totals", 2)
    params = {
        k: v
        for k, v in {
            "asset": asset,
            "organisation": organisation,
            "jurisdiction": jurisdiction,
            "from": since,
            "to": until,
        }.items()
        if v
    }
    if not from_chain:
        if check:
            fail("--check compares the chain's trace with the registry's: use it with --from-chain", 2)
        r = call("GET", url, api_key, "/v1/flows/trace", params={**params, "format": format_, "table": table})
        emit(r.text, out)
        return
    chain_trace = _trace_from_chain(asset, organisation, jurisdiction, since, until, rpc_url, deployment)
    try:
        body, _ = render.render(chain_trace, format_, table)
    except RegistryError as exc:
        fail(exc.message, 2)
    emit(body, out)
    if check:
        db = call("GET", url, api_key, "/v1/flows/trace", params={**params, "format": "json"}).json()
        if flow_trace.chain_view(db) != flow_trace.chain_view(chain_trace):
            fail("the chain's trace and the registry's differ: the registry's DB does not match the chain")
        err.print(
            f"the chain's trace equals the registry's ({len(chain_trace['edges'])} flows, "
            f"{len(chain_trace['violations'])} violations)"
        )


def _trace_from_chain(asset, organisation, jurisdiction, since, until, rpc_url, deployment_path) -> dict:
    from ledger_node.deploy import load_manifest
    from ledger_node.errors import LedgerNodeError
    from registry.core.errors import RegistryError
    from registry.flows import chain_trace
    from registry.flows import trace as flow_trace

    settings = load_settings()
    rpc = rpc_url or settings.rpc_url
    if not rpc:
        fail("--from-chain needs the chain: --rpc-url or CERTLEDGER_RPC_URL", 2)
    try:
        manifest = load_manifest(deployment_path or settings.manifest_path)
    except LedgerNodeError as exc:
        fail(str(exc), 2)
    if asset and not flow_trace.is_hash(asset):
        fail("--from-chain knows an asset by its certificate leaf (0x + 64 hex), not by a certificate id", 2)
    if organisation and organisation.isdigit() and len(organisation) < 10:
        fail("--from-chain knows an organisation by its identifier or participant id, not a registry id", 2)
    # participant ids are keyed (FORMAT.md §11): with the registry's database (the key, and the
    # parties it knows) the regulator names the chain's participants; without it they are bare ids
    from registry.services.participants import participant_names_of_database

    ids, names, why = None, None, ""
    url = settings.resolved_database_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        why = f"no registry database at {url}"
    else:
        try:
            ids, names = participant_names_of_database(url)
        except Exception as exc:  # noqa: BLE001 - one line: which database, and what went wrong
            why = f"cannot read the registry's database: {str(exc).splitlines()[0][:200]}"
    if organisation and not flow_trace.is_hash(organisation) and ids is None:
        fail(
            f"--from-chain --organisation IDENTIFIER needs the participant-id key ({why}); "
            "or give the participant id (0x + 64 hex)",
            2,
        )
    if names is None:
        err.print(f"participants are shown by their on-chain ids only: {why}")
    try:
        q = flow_trace.make_query(
            asset=asset,
            organisation=organisation,
            jurisdiction_code=jurisdiction,
            since=since,
            until=until,
            ids=ids,
        )
        return chain_trace.trace_from_chain(rpc, manifest, q, names=names)
    except RegistryError as exc:
        fail(exc.message, 2)
    except (OSError, ConnectionError) as exc:
        fail(f"cannot read the chain at {rpc}: {exc}")
    except Exception as exc:  # noqa: BLE001 - web3/requests errors: one line for the operator
        if type(exc).__module__.split(".")[0] in ("web3", "requests", "urllib3"):
            fail(f"cannot read the chain at {rpc}: {exc}")
        raise
