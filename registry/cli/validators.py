"""``certledger validators export``: the chain's QBFT validators, pinned by certledger-verify --validators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from registry.cli._common import console, fail

validators_app = typer.Typer(
    help="The chain's pinned QBFT validators (certledger-verify --validators).", no_args_is_help=True
)


@validators_app.command("export")
def validators_export(
    file: Annotated[
        Path, typer.Argument(help="Where to write the validators file (JSON, docs/FORMAT.md §14.2).")
    ],
    genesis: Annotated[
        Path | None,
        typer.Option("--genesis", help="A Besu QBFT genesis.json: pin the validators its extraData names."),
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev", help="The development chain's test validators (ledger_node.DEV_VALIDATOR_KEYS)."
        ),
    ] = False,
    chain_id: Annotated[
        int | None,
        typer.Option("--chain-id", help="Chain id (default: the genesis's, or 31337 with --dev)."),
    ] = None,
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
    console.print(
        f"{len(pinned.validators)} validators of chain {pinned.chain_id} written to {file} "
        f"(a header is final with {pinned.threshold} seals)"
    )
