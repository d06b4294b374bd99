"""``certledger-verify``: check credentials offline (trust bundle) or online (JSON-RPC).

Exit status: 0 every file valid, 1 some file invalid, 2 usage error or unreadable trust source
(a missing file or empty folder named on the command line, bad options, unreadable bundle or bad
bundle signature, unreachable node). One bad file never stops a run: a file that cannot be read
or parsed (over 10 MB, not UTF-8, not JSON, a duplicate key, NaN) is reported as a failed
``format`` check with the reason, and the files after it are verified (FORMAT.md §2.1).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from verifier._jsonio import MAX_DOCUMENT_BYTES, loads_strict
from verifier._result import Check, VerificationResult
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
            # os.scandir: the directory's own file types, no stat per file (pathlib's glob + is_file
            # cost 16 µs a file); each label spelled as str(path / name) is
            prefix = "" if str(path) == "." else os.path.join(str(path), "")
            with os.scandir(path) as entries:
                found = sorted(prefix + e.name for e in entries if e.name.endswith(".json") and e.is_file())
            if not found:
                raise InputError(f"the folder {name} holds no .json files")
            out.extend(found)
        elif not path.exists():
            raise InputError(f"no such file: {name}")
        else:
            out.append(name)
    return out


def _read(name: str) -> bytes | str:
    """The file's bytes (at most 10 MB + 1, so the verifier can refuse an oversize file), or a
    reason it could not be read."""
    try:
        if name == "-":
            return sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
        # os-level calls, no file object: a third less time per file than open()
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            # read(n) would allocate n bytes first: 10 MB per file, a third of the time per credential;
            # +1: one more byte shows it grew or is too big
            size = os.fstat(fd).st_size
            return os.read(fd, min(size, MAX_DOCUMENT_BYTES) + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        return f"the file cannot be read: {exc.strerror or exc}"


def _load_json(path: Path, what: str) -> Any:
    """A JSON file the command needs whole (not a credential): InputError, exit 2, if it cannot be."""
    raw = _read(str(path))
    if isinstance(raw, str):
        raise InputError(f"{what} {path}: {raw}")
    try:
        return loads_strict(raw)
    except ValueError as exc:
        raise InputError(f"{what} {path} is not valid JSON: {exc}") from None


def _presentation_outcomes(
    name: str, raw: bytes, request: Any, verifier: Any, at: str | None, data: Path | None
) -> list[tuple[str, VerificationResult]]:
    """One result per presented credential (``FILE#i``); a file that is not a presentation is that
    file's failed ``format`` check, as for a credential."""
    from verifier._presentation import verify_presentation
    from verifier._verify import format_failure

    try:
        document = loads_strict(raw)
    except ValueError as exc:
        return [(name, format_failure(f"the presentation is not valid JSON: {exc}"))]
    try:
        answer = verify_presentation(
            document, request, verifier=verifier, at=parse_datetime(at) if at is not None else None, data=data
        )
    except CertledgerVerifyError as exc:
        return [(name, format_failure(str(exc)))]
    return [(f"{name}#{i}", r) for i, r in enumerate(answer.results)]


def _trust(
    bundle: Path | None,
    operators: list[str],
    rpc: str | None,
    deployment: Path | None,
    threshold: int | None = None,
) -> Any:
    if bundle is not None and rpc is not None:
        raise InputError("use either --bundle (offline) or --rpc with --deployment (online), not both")
    if threshold is not None:
        if not operators:
            raise InputError(
                "--threshold K needs the operators pinned: give --operator ADDR once per operator"
            )
        if threshold < 1:
            raise InputError("--threshold must be at least 1")
        distinct = {a.lower() for a in operators}
        if threshold > len(distinct):
            raise InputError(
                f"--threshold {threshold} cannot be met by {len(distinct)} distinct pinned operator(s)"
            )
    if bundle is not None:
        from verifier._bundle import TrustBundle

        return TrustBundle.load(bundle, operators=operators or None, threshold=threshold or 1)
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
            help="pinned operator address (repeatable); the bundle must be signed by --threshold of them, "
            "and by no one else",
        ),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            "--threshold",
            metavar="K",
            help="signatures of K distinct pinned operators are required (default 1; FORMAT.md §8.1)",
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
            "--data",
            "--file",
            metavar="PATH",
            help="the file the credential certifies: a data asset certificate's dataset (--data), or a "
            "licence's official OFD/PDF file (--file); its digest is compared with the certified one",
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
    validators: Annotated[
        Path | None,
        typer.Option(
            "--validators",
            metavar="V",
            help="pin the chain's validator set (FORMAT.md §14): each credential's anchor and status must be "
            "proven from a header sealed by a quorum of them (its proof package, or a sealed proof-carrying "
            "anchor), whatever the bundle says",
        ),
    ] = None,
    request: Annotated[
        Path | None,
        typer.Option(
            "--presentation",
            metavar="REQUEST",
            help="FILE is a holder's presentation answering your REQUEST (certledger-wallet request/present): "
            "also check that each credential was presented with its holder's key, to you, for that purpose, "
            "before the request expired (check 'holder')",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="one JSON object per file per line")] = False,
    max_age: Annotated[
        str | None,
        typer.Option(
            "--max-age",
            metavar="DURATION",
            help="refuse evidence older than this (90s, 30m, 1h, 7d, none); default 24h for bundles",
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            min=0,
            help="verify in N processes (0: one per core); offline trust sources only (not --rpc)",
        ),
    ] = 1,
    pledge: Annotated[
        bool,
        typer.Option("--pledge", help="check a data asset's pledge state at the node (online, with --rpc)"),
    ] = False,
    pledge_proof: Annotated[
        Path | None,
        typer.Option(
            "--pledge-proof",
            metavar="FILE",
            help="a pledge proof (FORMAT.md §17.3) for the data asset, checked offline (with --bundle)",
        ),
    ] = None,
    lender_names: Annotated[
        Path | None,
        typer.Option(
            "--lenders", metavar="FILE", help="JSON {address: name} to name lenders in the pledge check"
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
            request,
            validators,
            max_age,
            threshold,
            jobs,
            (pledge, pledge_proof, lender_names),
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
    request_file: Path | None = None,
    validators_file: Path | None = None,
    max_age: str | None = None,
    threshold: int | None = None,
    jobs: int = 1,
    pledge_options: tuple[bool, Path | None, Path | None] = (False, None, None),
) -> int:
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and rpc is not None:
        raise InputError(
            "--jobs needs an offline trust source (--bundle): a node's connection is not shared "
            "between processes"
        )
    if jobs > 1 and "fork" not in multiprocessing.get_all_start_methods():
        jobs = 1  # (Windows) the verifier is handed to its workers by fork
    if (relying_party is None) != (purpose is None):
        raise InputError("--relying-party and --purpose go together")
    request = None
    if request_file is not None:
        from verifier._presentation import PresentationRequest

        if relying_party is not None:
            raise InputError(
                "the request names the relying party and purpose: leave out --relying-party and --purpose"
            )
        request = PresentationRequest.from_json(_load_json(request_file, "the presentation request"))
    if at is not None:
        try:
            parse_datetime(at)
        except ValueError as exc:
            raise InputError(f"--at: {exc}") from None
    if data is not None and not data.is_file():
        raise InputError(f"no such file: {data}")
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
    trust = _trust(bundle, operators, rpc, deployment, threshold)
    pledge_fn = _pledge_checker(trust, *pledge_options)
    from verifier._freshness import check_fresh, default_max_age, evidence_as_of

    as_of = evidence_as_of(trust)
    check_fresh(
        as_of,
        limit if max_age is not None else default_max_age(trust),
        parse_datetime(at) if at is not None else None,
        what="trust bundle" if bundle is not None else "chain state",
    )
    pinned = None
    proofs = None
    if validators_file is not None:
        from verifier._anchor_proof import ValidatorPinnedTrust
        from verifier._qbft import ValidatorSet

        pinned = ValidatorSet.load(validators_file)
        if bundle is not None:  # the bundle's own proofs and validator changes (FORMAT.md §16)
            from verifier._proof_bundle import open_bundle_proofs

            proofs = open_bundle_proofs(trust, pinned)
            pinned = proofs.validators
            if proofs.header is not None:  # the sealed evidence's own age, not what the operator wrote
                as_of = proofs.header.timestamp
                check_fresh(
                    as_of,
                    limit if max_age is not None else default_max_age(trust),
                    parse_datetime(at) if at is not None else None,
                    what="trust bundle's sealed proof package",
                )
        trust = ValidatorPinnedTrust(trust, pinned)
        if proofs is not None and proofs.issuers is not None:  # issuer records proven too (FORMAT.md §16.1)
            from verifier._issuer_proof import ProvenIssuerTrust

            trust = ProvenIssuerTrust(trust, proofs.issuers)
    describe = getattr(trust, "describe", None)
    if describe is not None:
        (err if json_output else out).print(escape(describe()))
    from verifier._verify import Verifier

    if pinned is not None:
        from verifier._qbft import ValidatorHeaderTrust

        info = err if json_output else out
        if proofs is not None and proofs.followed:
            info.print(
                f"validator set followed from the pinned set through sealed headers at block(s) "
                f"{', '.join(map(str, proofs.followed))}: now {', '.join(pinned.validators)}"
            )
        info.print(
            f"anchors and status proven from headers sealed by {pinned.threshold} of {len(pinned.validators)} pinned "
            "validators"
        )
        if proofs is not None and proofs.header is not None:
            info.print(
                f"the bundle proves anchors and status{' and issuer records' if proofs.issuers else ''} as of "
                f"block {proofs.header.number}, sealed by {proofs.header.attested_by}"
            )
        policy = limit if max_age is not None else default_max_age(getattr(trust, "_inner", trust))
        now = int((parse_datetime(at) if at is not None else datetime.now(UTC)).timestamp())
        verifier = Verifier(
            trust=trust,
            proven_only=True,  # a package's status is as old as its sealed header
            header_trust=ValidatorHeaderTrust(pinned, not_before=None if policy is None else now - policy),
            proof_package=proofs.package if proofs is not None else None,
        )
    else:
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
    _WORK.update(
        verifier=verifier,
        at=at,
        data=data,
        relying_party=relying_party,
        purpose=purpose,
        request=request,
        json_as_of=as_of_text if json_output else None,
        pledge=pledge_fn,
    )
    with progress, _batches(names, jobs) as batches:
        task = progress.add_task("verify", total=len(names))
        for done, outcomes in batches:
            for label, result, valid in outcomes:
                if isinstance(result, str):  # --json: the line, written where the file was verified
                    out.file.write(result)
                else:
                    _print_result(out, label, result)
                if not valid:
                    worst = 1
            progress.advance(task, done)
    return worst


#: what every file is verified with: set once before the files are read, and inherited by the
#: ``--jobs`` worker processes (forked), so the trust source is loaded and checked once
_WORK: dict[str, Any] = {}
_CHUNK = 256  # files per task for a worker: few enough messages, results still streamed in order


def _verify_names(names: list[str]) -> list[tuple[str, VerificationResult | str, bool]]:
    """Every outcome of ``names``, in order: each file's (label, result, valid) — a presentation
    gives one per credential; with ``--json`` the result is already its output line."""
    from verifier._verify import format_failure

    w = _WORK
    out: list[tuple[str, VerificationResult]] = []
    for name in names:
        raw = _read(name)
        if isinstance(raw, str):
            out.append((name, format_failure(raw)))
        elif (
            w["request"] is None
        ):  # format refuses what cannot be parsed (FORMAT.md §2.1), one file at a time
            result = w["verifier"].verify(
                raw, at=w["at"], data=w["data"], relying_party=w["relying_party"], purpose=w["purpose"]
            )
            if w.get("pledge") is not None:
                result = _with_check(result, w["pledge"](_parsed(raw)))
            out.append((name, result))
        else:
            out.extend(_presentation_outcomes(name, raw, w["request"], w["verifier"], w["at"], w["data"]))
    as_of = w["json_as_of"]
    if as_of is None:
        return [(label, result, result.valid) for label, result in out]
    return [(label, _json_line(label, result, as_of), result.valid) for label, result in out]


def _pledge_checker(trust: Any, online: bool, proof_file: Path | None, names_file: Path | None) -> Any:
    """The ``pledge`` check for each credential (FORMAT.md §17.3), or None when not asked for."""
    if not online and proof_file is None:
        if names_file is not None:
            raise InputError(
                "--lenders names lenders in the pledge check: give --pledge or --pledge-proof too"
            )
        return None
    from verifier._pledge_proof import credential_asset_key, online_pledge_state, pledge_check, state_check

    names = None
    if names_file is not None:
        loaded = _load_json(names_file, "the lenders file")
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise InputError("the lenders file must be a JSON object {address: name}")
        names = {str(k).lower(): v for k, v in loaded.items()}
    registry = getattr(trust, "pledge_registry", None) or getattr(trust, "contracts", {}).get(
        "pledgeRegistry"
    )
    if online:
        if proof_file is not None:
            raise InputError(
                "use either --pledge (online, with --rpc) or --pledge-proof FILE (offline), not both"
            )
        if not hasattr(trust, "w3"):
            raise InputError(
                "--pledge asks the node: give --rpc and --deployment (offline: --pledge-proof FILE)"
            )
        if registry is None:
            raise InputError("the deployment manifest names no pledgeRegistry")

        def online_check(credential: Any) -> Check:
            key = credential_asset_key(credential)
            if key is None:
                return Check(
                    "pledge",
                    "skipped",
                    "the credential names no data asset (issuer.id and credentialSubject.assetId)",
                )
            from verifier.errors import InvalidPledgeProof

            try:
                return state_check(online_pledge_state(trust.w3, registry, key, trust.block_number), names)
            except InvalidPledgeProof as exc:
                return Check("pledge", "failed", str(exc))

        return online_check
    assert proof_file is not None  # (the caller asks for a pledge check only with one of the two)
    proof = _load_json(proof_file, "the pledge proof")
    if registry is None:
        raise InputError(
            "the trust bundle names no pledgeRegistry (take a bundle from a registry that has one)"
        )
    return lambda credential: pledge_check(
        credential, proof, pledge_registry=registry, trust=trust, lender_names=names
    )


def _parsed(raw: bytes) -> Any:
    try:
        return loads_strict(raw)
    except ValueError:
        return None


def _with_check(result: VerificationResult, check: Check) -> VerificationResult:
    """``result`` with one more check; a failed one makes it invalid."""
    import dataclasses

    return dataclasses.replace(
        result, checks=(*result.checks, check), valid=result.valid and check.status != "failed"
    )


def _json_line(label: str, result: VerificationResult, as_of: str) -> str:
    record = result.to_json(label)
    record["evidenceAsOf"] = as_of
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode("utf-8")
    except orjson.JSONEncodeError:  # a file name that is not Unicode (undecodable bytes): json writes it
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


@contextmanager
def _batches(names: list[str], jobs: int) -> Iterator[Iterator[tuple[int, list[tuple[str, Any, bool]]]]]:
    """(files done, their outcomes) in file order, a chunk at a time: verified here, or by ``jobs``
    forked workers (the parent prints; a worker's results come back pickled)."""
    chunks = [names[i : i + _CHUNK] for i in range(0, len(names), _CHUNK)]
    if jobs <= 1 or len(chunks) == 1:
        yield ((len(c), _verify_names(c)) for c in chunks)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        yield zip((len(c) for c in chunks), pool.map(_verify_names, chunks))


def main() -> None:
    """Entry point of ``certledger-verify``."""
    app(prog_name="certledger-verify")


if __name__ == "__main__":
    main()
