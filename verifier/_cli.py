"""``certledger-verify``: check credentials offline (trust bundle) or online (JSON-RPC).

Exit status: 0 every file valid, 1 some file invalid, 2 usage or input error (missing or
unreadable file, file over 10 MB, malformed JSON or not a certledger credential, unreadable
bundle or bad bundle signature, unreachable node).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from verifier._jsonio import MAX_DOCUMENT_BYTES, loads_strict
from verifier._result import VerificationResult
from verifier._schema import parse_datetime
from verifier.errors import CertledgerVerifyError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False, rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]}
)
_MARKS = {"passed": ("✓", "green"), "failed": ("✗", "red"), "skipped": ("–", "yellow")}


class InputError(Exception):
    """A usage or input problem: exit status 2."""


def _expand(files: list[str]) -> list[str]:
    out: list[str] = []
    for name in files:
        if name == "-":
            out.append(name)
            continue
        path = Path(name)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.json") if p.is_file())
            if not found:
                raise InputError(f"the folder {name} holds no .json files")
            out.extend(found)
        elif not path.exists():
            raise InputError(f"no such file: {name}")
        else:
            out.append(name)
    return out


def _read(name: str) -> bytes:
    try:
        if name == "-":
            raw = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
        else:
            with open(name, "rb") as f:
                raw = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"{name} is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB; a credential is a few "
            "kilobytes, so this file was refused without reading it further"
        )
    return raw


def _load(name: str) -> dict[str, Any]:
    try:
        data = loads_strict(_read(name))
    except ValueError as exc:
        raise InputError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{name} is not a credential (a credential is a JSON object)")
    return data


def _trust(bundle: Path | None, operators: list[str], rpc: str | None, deployment: Path | None) -> Any:
    if bundle is not None and rpc is not None:
        raise InputError("use either --bundle (offline) or --rpc with --deployment (online), not both")
    if bundle is not None:
        from verifier._bundle import TrustBundle

        return TrustBundle.load(bundle, operators=operators or None)
    if operators:
        raise InputError("--operator pins the signer of a trust bundle; give --bundle too")
    if rpc is not None or deployment is not None:
        if rpc is None or deployment is None:
            raise InputError("online verification needs both --rpc URL and --deployment FILE")
        from verifier._rpc import RpcTrust

        return RpcTrust(rpc, deployment)
    raise InputError("say what to trust: --bundle FILE (offline) or --rpc URL --deployment FILE (online)")


def _print_result(console: Console, name: str, result: VerificationResult) -> None:
    c = result.credential
    verdict = "[bold green]VALID[/]" if result.valid else "[bold red]NOT VALID[/]"
    what = " ".join(escape(x) for x in (c.type or "credential", c.subject or "") if x)
    console.print(
        f"{escape(name)}: {verdict} — {what}" + (f", issued by {escape(c.issuer)}" if c.issuer else "")
    )
    for check in result.checks:
        mark, colour = _MARKS[check.status]
        console.print(f"  [{colour}]{mark}[/] {check.name:<9} {escape(check.reason)}")


@app.command(
    help="Verify certledger credentials (e-licences, operating permits, data asset certificates).\n\n"
    "FILE may be credential files, folders (every *.json inside) or - for standard input.\n\n"
    "Exit status: 0 all valid, 1 some not valid, 2 usage or input error."
)
def verify_command(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE", help="credential files, folders, or - for stdin")
    ],
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", metavar="B", help="trust bundle exported by the registry (offline)"),
    ] = None,
    operator: Annotated[
        list[str] | None,
        typer.Option(
            "--operator",
            metavar="ADDR",
            help="pinned operator address; the bundle must be signed by one (repeatable)",
        ),
    ] = None,
    rpc: Annotated[
        str | None, typer.Option("--rpc", metavar="URL", help="JSON-RPC endpoint of the chain (online)")
    ] = None,
    deployment: Annotated[
        Path | None,
        typer.Option(
            "--deployment", metavar="D", help="deployment manifest (chain id and contract addresses)"
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", metavar="PATH", help="dataset file to compare with a data asset certificate's digest"
        ),
    ] = None,
    relying_party: Annotated[
        str | None,
        typer.Option(
            "--relying-party",
            metavar="USCC",
            help="your unified social credit code, to check the certificate's authorised uses",
        ),
    ] = None,
    purpose: Annotated[
        str | None, typer.Option("--purpose", metavar="P", help="your purpose, e.g. 'loan assessment'")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="ISO-TIME", help="check validity at this time (RFC 3339 UTC, default now)"
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="one JSON object per file per line")] = False,
    validators: Annotated[
        Path | None,
        typer.Option(
            "--validators",
            metavar="V",
            help="pinned QBFT validators file: proof-carrying anchors must be validator-sealed",
        ),
    ] = None,
    max_age: Annotated[
        str | None,
        typer.Option(
            "--max-age",
            metavar="DURATION",
            help="refuse evidence older than this (90s, 30m, 1h, 7d, none); default 24h for bundles",
        ),
    ] = None,
) -> None:
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        code = _run(
            files,
            bundle,
            operator or [],
            rpc,
            deployment,
            data,
            relying_party,
            purpose,
            at,
            json_output,
            out,
            err,
            validators,
            max_age,
        )
    except (InputError, CertledgerVerifyError) as exc:
        err.print(f"[red]certledger-verify:[/] {escape(str(exc))}")
        code = 2
    except KeyboardInterrupt:
        code = 2
    except Exception as exc:  # noqa: BLE001 - never a traceback for the person at the counter
        err.print(
            f"[red]certledger-verify: unexpected error:[/] {escape(type(exc).__name__)}: {escape(str(exc))}"
        )
        code = 2
    raise typer.Exit(code)


def _run(
    files: list[str],
    bundle: Path | None,
    operators: list[str],
    rpc: str | None,
    deployment: Path | None,
    data: Path | None,
    relying_party: str | None,
    purpose: str | None,
    at: str | None,
    json_output: bool,
    out: Console,
    err: Console,
    validators: Path | None = None,
    max_age: str | None = None,
) -> int:
    if (relying_party is None) != (purpose is None):
        raise InputError("--relying-party and --purpose go together")
    if at is not None:
        try:
            parse_datetime(at)
        except ValueError as exc:
            raise InputError(f"--at: {exc}") from None
    if data is not None and not data.is_file():
        raise InputError(f"no such dataset file: {data}")
    names = _expand(files)
    if names.count("-") > 1:
        raise InputError("standard input (-) can be read only once")
    limit: int | None = None
    if max_age is not None:
        from verifier._freshness import parse_duration

        try:
            limit = parse_duration(max_age)
        except ValueError as exc:
            raise InputError(f"--max-age: {exc}") from None
    trust = _trust(bundle, operators, rpc, deployment)
    from verifier._freshness import check_fresh, default_max_age, evidence_as_of

    as_of = evidence_as_of(trust)
    check_fresh(
        as_of,
        limit if max_age is not None else default_max_age(trust),
        parse_datetime(at) if at is not None else None,
        what="trust bundle" if bundle is not None else "chain state",
    )
    if validators is not None:
        from verifier._anchor_proof import ValidatorPinnedTrust
        from verifier._qbft import ValidatorSet

        trust = ValidatorPinnedTrust(trust, ValidatorSet.load(validators))
    describe = getattr(trust, "describe", None)
    if describe is not None:
        (err if json_output else out).print(escape(describe()))
    from verifier._verify import Verifier

    verifier = Verifier(trust=trust)
    as_of_text = datetime.fromtimestamp(as_of, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    worst = 0
    progress = Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=len(names) < 20,
    )
    with progress:
        task = progress.add_task("verify", total=len(names))
        for name in names:
            document = _load(name)
            result = verifier.verify(document, at=at, data=data, relying_party=relying_party, purpose=purpose)
            if json_output:
                record = result.to_json(name)
                record["evidenceAsOf"] = as_of_text
                out.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                _print_result(out, name, result)
            if result.check("format").status == "failed":
                worst = 2
            elif not result.valid:
                worst = max(worst, 1)
            progress.advance(task)
    if worst == 2:
        err.print("certledger-verify: some files are not well-formed certledger credentials (see format)")
    return worst


def main() -> None:
    """Entry point of ``certledger-verify``."""
    app(prog_name="certledger-verify")


if __name__ == "__main__":
    main()
