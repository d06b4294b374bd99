"""``certledger-wallet`` — a business's own credentials, its holder key, redaction and presentations.

Stands alone: no registry, no chain, no network. The wallet is a folder (``--wallet``, or
``CERTLEDGER_WALLET``, default ``~/.certledger-wallet``) holding ``key.json`` (the holder key, mode
0600) and ``credentials/<id>.json``. Bad input: one line on stderr and exit 2, as certledger-verify.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from verifier._holder import redact
from verifier._internal.disclosure import parse_pointer
from verifier._jsonio import loads_strict
from verifier._presentation import HolderKey, PresentationRequest, present
from verifier.errors import CertledgerVerifyError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="A business's wallet: its holder key, its credentials, redaction, and presentations bound to a "
    "relying party's request (docs/FORMAT.md §13). Works offline; needs no registry or chain.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

WalletOpt = Annotated[
    Path,
    typer.Option(
        "--wallet",
        metavar="DIR",
        envvar="CERTLEDGER_WALLET",
        help="the wallet folder",
        show_default="~/.certledger-wallet",
    ),
]
_DEFAULT = Path.home() / ".certledger-wallet"


class WalletError(Exception):
    """Bad input for the wallet: one line, exit 2."""


def _fail(message: str) -> NoReturn:
    err.print(f"[red]certledger-wallet:[/] {escape(message)}")
    raise typer.Exit(2)


def _read_json(path: Path, what: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WalletError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return loads_strict(raw)
    except ValueError as exc:
        raise WalletError(f"{what} {path} is not valid JSON: {exc}") from None


def _write(path: Path, data: Any, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    os.replace(tmp, path)


def _key(wallet: Path) -> HolderKey:
    path = wallet / "key.json"
    if not path.exists():
        raise WalletError(f"no holder key in {wallet}: run `certledger-wallet keygen` first")
    data = _read_json(path, "the holder key")
    try:
        key = HolderKey(data["suite"], bytes.fromhex(data["privateKey"].removeprefix("0x")))
        if key.holder_id != data["holderId"]:
            raise ValueError("its holderId does not match its private key")
    except (KeyError, TypeError, ValueError, AttributeError, CertledgerVerifyError) as exc:
        raise WalletError(f"the holder key {path} is damaged: {exc}") from None
    return key


def _credential_path(wallet: Path, credential_id: str) -> Path:
    matches = [
        p
        for p in (wallet / "credentials").glob("*.json")
        if p.stem == credential_id.removeprefix("urn:uuid:") or p.stem.startswith(credential_id)
    ]
    if not matches:
        raise WalletError(f"no credential {credential_id} in {wallet} (see `certledger-wallet list`)")
    if len(matches) > 1:
        raise WalletError(f"{credential_id} matches {len(matches)} credentials: give more of its id")
    return matches[0]


def _run(action: Any) -> None:
    try:
        action()
    except (WalletError, CertledgerVerifyError) as exc:
        _fail(str(exc))


@app.command()
def keygen(
    wallet: WalletOpt = _DEFAULT,
    suite: Annotated[str, typer.Option(help="secp256k1, or sm2 for the national suite")] = "secp256k1",
    force: Annotated[
        bool, typer.Option(help="replace an existing key (credentials bound to it stop working)")
    ] = False,
) -> None:
    """Make the holder key; give its holder id to the issuer so it binds your credentials to it."""

    def go() -> None:
        path = wallet / "key.json"
        if path.exists() and not force:
            raise WalletError(f"{path} exists: a new key would orphan the credentials bound to it (--force)")
        if suite not in ("secp256k1", "sm2"):
            raise WalletError(f"--suite must be secp256k1 or sm2, not {suite!r}")
        key = HolderKey.generate(suite)  # type: ignore[arg-type]
        _write(
            path,
            {"suite": key.suite, "privateKey": "0x" + key.private_key.hex(), "holderId": key.holder_id},
            mode=0o600,
        )
        out.print(key.holder_id)

    _run(go)


@app.command("add")
def add(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="holder copies the issuer gave you")],
    wallet: WalletOpt = _DEFAULT,
) -> None:
    """Put holder copies into the wallet."""

    def go() -> None:
        for f in files:
            doc = _read_json(f, "the credential")
            cid = doc.get("id") if isinstance(doc, dict) else None
            if not isinstance(cid, str) or not cid.startswith("urn:uuid:") or "proof" not in doc:
                raise WalletError(f"{f} is not a certledger holder copy (no urn:uuid id or no proof)")
            _write(wallet / "credentials" / f"{cid.removeprefix('urn:uuid:')}.json", doc)
            out.print(f"added {cid}")

    _run(go)


@app.command()
def fetch(
    registry: Annotated[str, typer.Option(metavar="URL", help="the registry, e.g. https://registry.example")],
    api_key: Annotated[
        str,
        typer.Option(
            metavar="KEY", envvar="CERTLEDGER_API_KEY", help="your organisation's API key (role holder)"
        ),
    ],
    wallet: WalletOpt = _DEFAULT,
) -> None:
    """Fetch your own anchored credentials from the registry into the wallet."""

    def get(path: str) -> Any:
        return _http("GET", registry.rstrip("/") + path, headers={"Authorization": f"Bearer {api_key}"})

    def go() -> None:
        fetched, pending, offset = 0, 0, 0
        while True:
            page = get(f"/v1/holder/credentials?limit=1000&offset={offset}")
            for item in page["items"]:
                if item["state"] != "anchored":
                    pending += 1
                    continue
                doc = get(f"/v1/holder/credentials/{item['id']}")["credential"]
                _write(wallet / "credentials" / f"{doc['id'].removeprefix('urn:uuid:')}.json", doc)
                fetched += 1
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                break
        out.print(
            f"fetched {fetched} credential(s) into {wallet}"
            + (f"; {pending} not anchored yet" if pending else "")
        )

    _run(go)


@app.command("list")
def list_credentials(wallet: WalletOpt = _DEFAULT) -> None:
    """The credentials in the wallet."""

    def go() -> None:
        table = Table("id", "type", "issuer", "holder-bound")
        for p in sorted((wallet / "credentials").glob("*.json")):
            doc = _read_json(p, "the credential")
            subject = doc.get("credentialSubject") or {}
            table.add_row(
                escape(str(doc.get("id"))),
                escape(str((doc.get("type") or [None, None])[-1])),
                escape(str((doc.get("issuer") or {}).get("name"))),
                "yes" if "id" in subject else "no",
            )
        out.print(table)

    _run(go)


@app.command()
def show(credential: Annotated[str, typer.Argument(metavar="ID")], wallet: WalletOpt = _DEFAULT) -> None:
    """One credential as JSON."""
    _run(
        lambda: out.print_json(
            json.dumps(_read_json(_credential_path(wallet, credential), "the credential"), ensure_ascii=False)
        )
    )


def _redacted(doc: dict[str, Any], drop: list[str], keep: list[str]) -> dict[str, Any]:
    """``doc`` with the ``drop`` paths redacted, or everything in credentialSubject but ``keep``."""
    if drop and keep:
        raise WalletError("give --drop or --keep, not both")
    if keep:
        for path in keep:
            parse_pointer(path)
        subject = doc.get("credentialSubject") or {}
        kept = {p.split("/")[2] for p in keep if p.startswith("/credentialSubject/")}
        drop = [
            f"/credentialSubject/{k}"
            for k in subject
            if k not in kept and k not in ("id", "unifiedSocialCreditCode")
        ]
    return redact(doc, drop) if drop else doc


@app.command("redact")
def redact_command(
    credential: Annotated[str, typer.Argument(metavar="ID")],
    out_file: Annotated[Path, typer.Option("--out", metavar="FILE", help="where to write the redacted copy")],
    drop: Annotated[
        list[str] | None, typer.Option("--drop", metavar="PATH", help="a JSON Pointer to redact")
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep", metavar="PATH", help="keep only these credentialSubject members (and the holder's ids)"
        ),
    ] = None,
    wallet: WalletOpt = _DEFAULT,
) -> None:
    """Redact fields (the value goes, its digest stays: the copy still verifies) and show the result."""

    def go() -> None:
        doc = _read_json(_credential_path(wallet, credential), "the credential")
        result = _redacted(doc, drop or [], keep or [])
        _write(out_file, result)
        out.print_json(json.dumps(result.get("credentialSubject"), ensure_ascii=False))
        out.print(
            f"redacted: {', '.join(sorted((result.get('proof') or {}).get('redactedDigests') or {})) or 'nothing'}"
            f" → {out_file}"
        )

    _run(go)


@app.command("request")
def request_command(
    audience: Annotated[
        str, typer.Option(metavar="USCC", help="your (the relying party's) unified social credit code")
    ],
    purpose: Annotated[str, typer.Option(metavar="P", help="e.g. credit-assessment")],
    out_file: Annotated[Path, typer.Option("--out", metavar="FILE")],
    ttl: Annotated[int, typer.Option(metavar="SECONDS", help="how long the holder has to answer")] = 300,
    credential_type: Annotated[
        list[str] | None, typer.Option("--type", help="a credential type you ask for")
    ] = None,
) -> None:
    """For the relying party (the bank): a presentation request with a fresh nonce; keep it to verify
    the answer with `certledger-verify --presentation FILE`."""

    def go() -> None:
        if not 10 <= ttl <= 86_400:
            raise WalletError("--ttl is 10 seconds to 1 day")
        request = PresentationRequest.new(
            audience, purpose, ttl=timedelta(seconds=ttl), credential_types=credential_type or ()
        )
        _write(out_file, request.to_json())
        out.print(
            f"request {request.nonce} for {audience}, purpose {purpose!r}, expires {request.expires} → {out_file}"
        )

    _run(go)


def _http(method: str, url: str, *, headers: dict[str, str] | None = None, body: Any = None) -> Any:
    """A JSON request to the registry: its JSON answer, or WalletError naming the refusal."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    all_headers = {**(headers or {}), **({"content-type": "application/json"} if data is not None else {})}
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return loads_strict(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = loads_strict(exc.read())["error"]["message"]
        except Exception:  # noqa: BLE001 - a body that is not the registry's error shape
            message = exc.reason
        raise WalletError(f"the registry refused: {exc.code} {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        base = url.split("/", 3)[:3]
        raise WalletError(
            f"cannot reach the registry at {'/'.join(base)}: {getattr(exc, 'reason', exc)}"
        ) from None


def _request_from(source: str) -> tuple[PresentationRequest, str | None]:
    """The request from a file, or from a link (the bank's QR code: ``…/holder?request=<nonce>``, or
    ``…/verify/requests/<nonce>``) fetched from the registry; with the link, where to send the answer."""
    import re
    from urllib.parse import parse_qs, urlsplit

    if not source.startswith(("http://", "https://")):
        return PresentationRequest.from_json(_read_json(Path(source), "the request")), None
    u = urlsplit(source)
    nonce = (parse_qs(u.query).get("request") or [""])[0]
    m = re.search(r"/verify/requests/(0x[0-9a-f]+)$", u.path)
    if m:
        nonce = m.group(1)
    if not re.fullmatch(r"0x[0-9a-f]{32,128}", nonce):
        raise WalletError(f"{source} is not a request link (…/holder?request=0x… or …/verify/requests/0x…)")
    endpoint = f"{u.scheme}://{u.netloc}/verify/requests/{nonce}"
    return PresentationRequest.from_json(_http("GET", endpoint)), endpoint + "/presentation"


@app.command("present")
def present_command(
    request_source: Annotated[
        str,
        typer.Option(
            "--request",
            metavar="FILE|URL",
            help="the relying party's request: a file, or the link in its QR code (fetched from the registry)",
        ),
    ],
    credentials: Annotated[
        list[str], typer.Option("--credential", metavar="ID", help="a credential to present")
    ],
    out_file: Annotated[Path, typer.Option("--out", metavar="FILE")],
    drop: Annotated[
        list[str] | None, typer.Option("--drop", metavar="PATH", help="redact this path first")
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", metavar="PATH", help="keep only these credentialSubject members"),
    ] = None,
    send: Annotated[
        bool,
        typer.Option(help="with a request link: send the presentation to it and print the bank's verdict"),
    ] = False,
    qr_file: Annotated[
        Path | None,
        typer.Option("--qr", metavar="FILE", help="with --send: a QR code (PNG) of the link to the verdict"),
    ] = None,
    wallet: WalletOpt = _DEFAULT,
) -> None:
    """Answer a request: the credentials (redacted as you choose), signed with your holder key over the
    request's nonce, audience, purpose and expiry. A presentation is too large for a QR code: give it
    as a file, or --send it to the request link it answers."""

    def go() -> None:
        if (send or qr_file is not None) and not request_source.startswith(("http://", "https://")):
            raise WalletError("--send and --qr need a request link (…/holder?request=0x…), not a file")
        if qr_file is not None and not send:
            raise WalletError("--qr needs --send (the QR code links to the verdict)")
        request, reply_to = _request_from(request_source)
        key = _key(wallet)
        docs = [
            _redacted(_read_json(_credential_path(wallet, c), "the credential"), drop or [], keep or [])
            for c in credentials
        ]
        presentation = present(request, docs, key)
        _write(out_file, presentation)
        out.print(
            f"presentation for {request.audience} ({request.purpose}), {len(docs)} credential(s), "
            f"valid until {request.expires} → {out_file}"
        )
        if send and reply_to is not None:
            answer = _http("POST", reply_to, body=presentation)
            verdict = "valid" if answer["result"]["valid"] else "NOT valid"
            out.print(f"sent: the requester's check says {verdict}; the verdict: {answer['resultLink']}")
            if qr_file is not None:
                import qrcode

                qrcode.make(answer["resultLink"]).save(str(qr_file))
                out.print(f"QR code of the verdict link → {qr_file}")
            if not answer["result"]["valid"]:
                raise typer.Exit(1)

    _run(go)


def main() -> None:
    """Entry point of ``certledger-wallet``."""
    try:
        app(prog_name="certledger-wallet")
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(2)


if __name__ == "__main__":
    main()
