"""``certledger bundle export`` (the signed trust bundle for offline verification) and ``certledger
bundle cosign`` (one more operator signs it, on its own machine with its own keystore, so a bank can
require k of n operators: ``certledger-verify --operator … --threshold K``, docs/FORMAT.md §8.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from registry.cli._common import ApiKeyOpt, Url, call, console, fail
from registry.signer.cli import KeystoreOpt, PassOpt, _decrypt, _passphrase

bundle_app = typer.Typer(help="Trust bundles for offline verification.", no_args_is_help=True)


@bundle_app.command("export")
def bundle_export(
    file: Annotated[Path, typer.Argument(help="Where to write the signed trust bundle (JSON).")],
    url: Url = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = None,
    proofs: Annotated[
        bool,
        typer.Option(
            "--proofs",
            help="Carry a validator-sealed proof package for every anchored credential "
            "(certledger-verify --validators needs nothing else; docs/FORMAT.md §16).",
        ),
    ] = False,
) -> None:
    """Export the signed trust bundle (for certledger-verify --bundle)."""
    body = call(
        "GET", url, api_key, "/v1/trust-bundle", params={"proofs": "true"} if proofs else None, timeout=600
    ).json()
    file.write_text(json.dumps(body, ensure_ascii=False, indent=1))
    console.print(
        f"trust bundle as of block {body['block']['number']} written to {file} "
        f"(signed by {body['signature']['signer']}"
        + (", with sealed proofs)" if "proofPackage" in body else ")")
    )


@bundle_app.command("cosign")
def cosign(
    bundle: Annotated[Path, typer.Argument(help="The signed trust bundle (certledger bundle export).")],
    out: Annotated[Path, typer.Argument(help="Where to write the co-signed bundle (may be the same file).")],
    keystore: KeystoreOpt,
    passphrase_file: PassOpt,
) -> None:
    """Add this operator's signature to a trust bundle (its signatures must still verify)."""
    from verifier import TrustBundle, add_bundle_signature, eth_address
    from verifier.errors import CertledgerVerifyError

    try:
        data = json.loads(bundle.read_bytes())
    except OSError as exc:
        fail(f"cannot read the trust bundle {bundle}: {exc.strerror}", 2)
    except ValueError as exc:
        fail(f"the trust bundle {bundle} is not valid JSON: {exc}", 2)
    key = _decrypt(keystore, _passphrase(passphrase_file), "operator")
    try:
        TrustBundle.load(data)  # refuse a bundle that is not one, or whose signatures fail, before signing
        signed = add_bundle_signature(data, key)
    except CertledgerVerifyError as exc:
        fail(f"not co-signed: {exc}", 2)
    out.write_text(json.dumps(signed, ensure_ascii=False, indent=1), encoding="utf-8")
    signers = [s["signer"] for s in signed["signatures"]]
    console.print(
        f"co-signed by {eth_address(key)}: {len(signers)} operator signature(s) ({', '.join(signers)}) "
        f"in {out}"
    )
