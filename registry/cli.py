"""`certledger` — the one command-line entry point (Typer). One module per command group."""

from __future__ import annotations

import typer

from ledger_node.cli import deploy_command, node_app

app = typer.Typer(
    help="certledger: anchor e-licences and data asset certificates on a permissioned chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(node_app, name="node")
app.command("deploy")(deploy_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
