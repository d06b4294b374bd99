"""``certledger bundle cosign``: one more operator signs a trust bundle (docs/FORMAT.md §8.1), on its
own machine with its own keystore, so a bank can require k of n operators (``certledger-verify
--operator … --threshold K``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ledger_node.cli import fail
from registry.signer.cli import KeystoreOpt, PassOpt, _decrypt, _passphrase

console = Console(highlight=False, soft_wrap=True)


def cosign_command(
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
    console.print(f"co-signed by {eth_address(key)}: {len(signers)} operator signature(s) ({', '.join(signers)}) "
                  f"in {out}")
