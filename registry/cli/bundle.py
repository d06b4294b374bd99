"""``certledger bundle export``: the signed trust bundle for offline verification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from registry.cli._common import ApiKeyOpt, Url, call, console

bundle_app = typer.Typer(help="Trust bundles for offline verification.", no_args_is_help=True)


@bundle_app.command("export")
def bundle_export(
    file: Annotated[Path, typer.Argument(help="Where to write the signed trust bundle (JSON).")],
    url: Url = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = None,
) -> None:
    """Export the signed trust bundle (for certledger-verify --bundle)."""
    body = call("GET", url, api_key, "/v1/trust-bundle").json()
    file.write_text(json.dumps(body, ensure_ascii=False, indent=1))
    console.print(f"trust bundle as of block {body['block']['number']} written to {file} "
                  f"(signed by {body['signature']['signer']})")
