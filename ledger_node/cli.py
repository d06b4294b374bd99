"""`certledger node up|down|status` and `certledger deploy` (mounted by registry.cli)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ledger_node.errors import LedgerNodeError

console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="CERTLEDGER_DATA_DIR", help="Where the node's state, pid and the manifest live."
    ),
]
Port = Annotated[
    int | None,
    typer.Option(
        "--port",
        envvar="CERTLEDGER_NODE_PORT",
        help="Port of the local node (default: last used, else 8545).",
    ),
]

node_app = typer.Typer(
    help="Start, stop and inspect the local development chain (anvil).", no_args_is_help=True
)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@node_app.command("up")
def node_up(data_dir: DataDir = Path(".certledger"), port: Port = None) -> None:
    """Start the local anvil node (state persisted in the data directory) and wait until it answers."""
    from ledger_node.node import AnvilNode

    try:
        status = AnvilNode(data_dir, port=port).start()
    except LedgerNodeError as exc:
        fail(str(exc))
    console.print(
        f"node up: {status.rpc_url} (chain id {status.chain_id}, block {status.block}, pid {status.pid})"
    )


@node_app.command("down")
def node_down(data_dir: DataDir = Path(".certledger")) -> None:
    """Stop the local node started from this data directory (and nothing else)."""
    from ledger_node.node import AnvilNode

    if AnvilNode(data_dir).stop():
        console.print("node down (state kept in the data directory)")
    else:
        console.print("no node of this data directory is running")


@node_app.command("status")
def node_status(
    data_dir: DataDir = Path(".certledger"),
    port: Port = None,
    rpc: Annotated[
        str | None, typer.Option(envvar="CERTLEDGER_RPC_URL", help="Ask this endpoint instead.")
    ] = None,
) -> None:
    """Report chain id, block, and whether the contracts of the manifest are deployed."""
    from ledger_node.chain import Chain
    from ledger_node.deploy import check_manifest, load_manifest
    from ledger_node.node import AnvilNode, rpc_chain_id

    node = AnvilNode(data_dir, port=port)
    st = node.status()
    url = rpc or st.rpc_url
    try:
        chain_id = rpc_chain_id(url)
    except LedgerNodeError as exc:
        fail(f"node down: {exc}")
    chain = Chain(url)
    console.print(
        f"node up: {url} chain id {chain_id}, block {chain.block_number()}"
        + (f", pid {st.pid}" if st.pid and not rpc else "")
    )
    manifest_path = data_dir / "deployment.json"
    if not manifest_path.exists():
        console.print("contracts: not deployed (no manifest; run `certledger deploy`)")
        return
    try:
        m = load_manifest(manifest_path)
        check_manifest(chain, m, manifest_path)
    except LedgerNodeError as exc:
        fail(f"contracts: {exc}")
    missing = [k for k, a in m.contracts.items() if not chain.has_code(a)]
    if missing:
        fail(f"contracts: manifest names {', '.join(missing)} but there is no code at those addresses")
    console.print(
        "contracts: deployed "
        + ", ".join(f"{k} {a}" for k, a in m.contracts.items())
        + f" (block {m.deploy_block})"
    )


def deploy_command(
    data_dir: DataDir = Path(".certledger"),
    rpc: Annotated[
        str | None,
        typer.Option(envvar="CERTLEDGER_RPC_URL", help="JSON-RPC endpoint (default: the local node)."),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="Manifest path (default: DATA_DIR/deployment.json).")
    ] = None,
    regulator: Annotated[
        list[str] | None,
        typer.Option(help="Address to grant the data-customs regulator role (repeatable)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Deploy anew even if a manifest exists.")] = False,
    port: Port = None,
) -> None:
    """Deploy the contracts from the packaged artifacts (ledger_node/build/) and write the deployment
    manifest (reused on re-run).

    The deployer key comes from CERTLEDGER_DEPLOYER_KEY; on the development chain (id 31337)
    the first well-known anvil key is used when it is unset.
    """
    from ledger_node.chain import Chain
    from ledger_node.deploy import deploy
    from ledger_node.node import DEV_CHAIN_ID, DEV_KEYS, AnvilNode

    url = rpc or AnvilNode(data_dir, port=port).status().rpc_url
    chain = Chain(url)
    try:
        chain_id = chain.check_reachable()
        key = os.environ.get("CERTLEDGER_DEPLOYER_KEY")
        if not key:
            if chain_id != DEV_CHAIN_ID:
                fail(f"chain {chain_id} is not the development chain: set CERTLEDGER_DEPLOYER_KEY", 2)
            key = DEV_KEYS[0]
        m, reused = deploy(
            chain,
            key,
            manifest or data_dir / "deployment.json",
            regulators=tuple(regulator or ()),
            force=force,
        )
    except LedgerNodeError as exc:
        fail(str(exc))
    verb = "reused" if reused else "deployed"
    console.print(f"contracts {verb} on chain {m.chain_id} at block {m.deploy_block}:")
    for k, a in m.contracts.items():
        console.print(f"  {k:15} {a}")
