"""``certledger signer`` — run an issuer's own signer, make its keys, check its log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ledger_node.cli import fail

signer_app = typer.Typer(
    help="An issuer's own signing service (keys the registry never holds): Web3Signer's eth1 API plus "
    "certledger batch signing, under a policy, with an append-only log. See docs/OPERATIONS.md.",
    no_args_is_help=True,
)

KeystoreOpt = Annotated[
    Path, typer.Option("--keystore", help="secp256k1 chain account keystore (Web3 Secret Storage JSON).")
]
Sm2Opt = Annotated[
    Path | None,
    typer.Option("--sm2-keystore", help="SM2 keystore: sign batch roots in the sm2-sm3 suite."),
]
PassOpt = Annotated[Path, typer.Option("--passphrase-file", help="File holding the keystores' passphrase.")]


def _passphrase(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        fail(f"cannot read the passphrase file {path}: {exc.strerror}", 2)
    if not text:
        fail(f"the passphrase file {path} is empty", 2)
    return text


def _decrypt(path: Path, passphrase: str, what: str) -> bytes:
    from registry.services.keys import decrypt_secret

    try:
        keystore = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read the {what} keystore {path}: {exc.strerror}", 2)
    try:
        json.loads(keystore)
        return bytes.fromhex(decrypt_secret(keystore, passphrase)[2:])
    except ValueError as exc:
        fail(f"cannot open the {what} keystore {path}: {exc}", 2)
    except Exception as exc:  # noqa: BLE001 - eth_account raises several kinds for a malformed keystore
        fail(f"{path} is not a keystore: {type(exc).__name__}: {exc}", 2)
    raise AssertionError  # unreachable: fail() exits


@signer_app.command("run")
def run(
    keystore: KeystoreOpt,
    passphrase_file: PassOpt,
    policy: Annotated[
        Path, typer.Option("--policy", help="Policy file (JSON): chain, contract, types, limits.")
    ],
    log: Annotated[
        Path, typer.Option("--log", help="Append-only signing log (JSON Lines; <log>.head beside it).")
    ],
    sm2_keystore: Sm2Opt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
    test_delay: Annotated[
        float,
        typer.Option(
            "--test-delay", hidden=True, help="Testing only: wait this many seconds before each batch."
        ),
    ] = 0.0,
) -> None:
    """Serve the signer: GET /upcheck, /api/v1/eth1/publicKeys; JSON-RPC eth_accounts and
    eth_signTransaction at /; POST /api/v1/certledger/batches (batch root + anchor transaction)."""
    import uvicorn

    from registry.signer.core import Signer
    from registry.signer.log import LogCorrupt, SignerLog
    from registry.signer.policy import Policy, PolicyError
    from registry.signer.server import create_app

    if not 0 < port < 65536:
        fail(f"--port must be 1-65535, not {port}", 2)
    if test_delay < 0:
        fail("--test-delay must not be negative", 2)
    try:
        rules = Policy.load(policy)
    except PolicyError as exc:
        fail(str(exc), 2)
    secret = _passphrase(passphrase_file)
    chain_key = _decrypt(keystore, secret, "chain account")
    sm2_key = _decrypt(sm2_keystore, secret, "SM2") if sm2_keystore else None
    try:
        signing_log = SignerLog(log)
    except LogCorrupt as exc:
        fail(f"the signing log is damaged, refusing to sign: {exc}", 2)
    except OSError as exc:
        fail(f"cannot open the signing log {log}: {exc.strerror}", 2)
    signer = Signer(
        chain_key=chain_key, sm2_key=sm2_key, policy=rules, log=signing_log, test_delay=test_delay
    )
    typer.echo(f"certledger signer for {signer.address} ({signer.suite}) on http://{host}:{port}", err=True)
    uvicorn.run(create_app(signer), host=host, port=port, log_level="warning")


@signer_app.command("new-key")
def new_key_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write keystore.json (and sm2-keystore.json) to.")
    ],
    passphrase_file: PassOpt,
    suite: Annotated[str, typer.Option(help="secp256k1, or sm2-sm3 for an SM2 key as well.")] = "secp256k1",
) -> None:
    """Make the issuer's keys in encrypted keystores; print the address (and SM2 public key) as JSON,
    for the registry's administrator to register the issuer with."""
    from registry.services.keys import new_key

    if suite not in ("secp256k1", "sm2-sm3"):
        fail(f"unknown suite {suite!r}: choose secp256k1 or sm2-sm3", 2)
    secret = _passphrase(passphrase_file)
    targets = [out / "keystore.json", *([out / "sm2-keystore.json"] if suite == "sm2-sm3" else [])]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        fail(f"{', '.join(existing)} exists already: refusing to overwrite a key", 2)
    key = new_key(secret, suite)
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        for target, text in zip(targets, [key.keystore, key.sm2_keystore]):
            target.touch(mode=0o600)
            target.write_text(text or "")
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror}", 2)
    typer.echo(
        json.dumps({"address": key.address.lower(), "suite": suite, "sm2PublicKey": key.sm2_public_key})
    )


@signer_app.command("check-log")
def check_log(log: Annotated[Path, typer.Argument(help="The signing log to check.")]) -> None:
    """Check the log's hash chain and head; print its entry count and head. Exit 1 if damaged."""
    from registry.signer.log import LogCorrupt, SignerLog

    if not log.exists():
        fail(f"{log} does not exist", 2)
    try:
        checked = SignerLog(log)
    except LogCorrupt as exc:
        fail(str(exc), 1)
    checked.close()
    typer.echo(json.dumps({"entries": checked.head.seq, "head": checked.head.hash}))
