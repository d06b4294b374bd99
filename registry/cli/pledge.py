"""``certledger pledge proof``: fetch a fresh operator-signed pledge proof of a data-asset
certificate's asset (GET /v1/credentials/{id}/pledge, docs/FORMAT.md §17.3) for
``certledger-verify --pledge-proof FILE``. Pledges themselves are registered on-chain with both
parties' EIP-712 consent (contracts/PledgeRegistry.sol)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from registry.cli._common import Url, answer, console, fail, tls_verify

pledge_app = typer.Typer(help="Pledges of data assets (issue 22).", no_args_is_help=True)


@pledge_app.command("proof")
def pledge_proof(
    credential_id: Annotated[str, typer.Argument(help="The data-asset certificate's id (urn:uuid:…).")],
    file: Annotated[Path, typer.Argument(help="Where to write the pledge proof (JSON).")],
    url: Url = "http://127.0.0.1:8000",
) -> None:
    """Write the asset's pledge proof (public: no API key needed)."""
    import httpx

    try:
        with httpx.Client(base_url=url, timeout=60, verify=tls_verify(url)) as c:
            resp = c.get(f"/v1/credentials/{credential_id}/pledge")
    except httpx.HTTPError as exc:
        fail(f"cannot reach the registry at {url}: {exc}")
    body, error = answer(resp)
    if error or not isinstance(body, dict):
        fail(error or "the registry answered no pledge proof")
    file.write_text(json.dumps(body["pledgeProof"], ensure_ascii=False, indent=1), encoding="utf-8")
    console.print(
        f"pledge proof of asset {body['assetKey'][:18]}… (registry {body['pledgeRegistry']}) written to "
        f"{file}: certledger-verify CREDENTIAL --bundle BUNDLE --pledge-proof {file}"
    )
