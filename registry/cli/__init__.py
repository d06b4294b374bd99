"""``certledger`` — the one command-line entry point (Typer).

One module per command group; what they share (``fail``, the service options, the API client) is
in ``registry.cli._common``. Every group is imported eagerly here: a broken import fails
``certledger`` loudly instead of leaving a command out (tests/registry/test_mounting.py).
"""

from __future__ import annotations

import gc
import sys

import typer

from ledger_node.cli import deploy_command, node_app
from ledger_node.index_cli import index_command
from registry.cli.bundle import bundle_app
from registry.cli.flow import flow_app
from registry.cli.issue import issue
from registry.cli.pledge import pledge_app
from registry.cli.service import audit_command, db_app, serve
from registry.cli.validators import validators_app
from registry.signer.cli import signer_app

# httpx imports its own command line (click, and rich's syntax highlighting with pygments) when it is
# imported: ~20 ms of every command's ~0.3 s start, for a program certledger never runs (httpx.main
# then says it cannot run). The commands import httpx when they need it, after this.
sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]

app = typer.Typer(
    help="certledger: anchor e-licences and data asset certificates on a permissioned chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.command("issue")(issue)
app.command("audit")(audit_command)
app.command("deploy")(deploy_command)
app.command("index")(index_command)
app.add_typer(node_app, name="node")
app.add_typer(db_app, name="db")
app.add_typer(bundle_app, name="bundle")
app.add_typer(validators_app, name="validators")
app.add_typer(flow_app, name="flow")
app.add_typer(pledge_app, name="pledge")
app.add_typer(signer_app, name="signer")


def main() -> None:
    try:
        app()
    finally:
        # The command is done (each closes what it opened). The interpreter's exit then runs the
        # garbage collector over every object left, the modules' and the command's: ~35-45 ms
        # after `certledger issue` of 40,000 records, an eighth of its start. Frozen, they are left
        # to be freed by reference count, and the process ends in ~7 ms (docs/BENCHMARKS.md).
        gc.freeze()


if __name__ == "__main__":
    main()
