"""What every ``certledger`` command shares: the consoles, ``fail``, the service options and one
client for the registry's API (one-line errors: ``fail`` exits 1, or 2 for bad input)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from ledger_node.cli import fail as _fail

console = Console()
err = Console(stderr=True)

Url = Annotated[str, typer.Option("--url", envvar="CERTLEDGER_URL", help="The registry service.")]
ApiKeyOpt = Annotated[
    str | None, typer.Option("--api-key", envvar="CERTLEDGER_API_KEY", help="Your organisation's API key.")
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one ``error:`` line and exit with ``code`` (2: bad input or configuration)."""
    _fail(message, code)
    raise AssertionError("unreachable")  # pragma: no cover - _fail always raises typer.Exit


def load_settings() -> Any:
    """The service's ``Settings`` from its ``CERTLEDGER_*`` variables; a bad value exits 2 with one
    line naming each variable and what is wrong (the value is not echoed: it may be a secret)."""
    from pydantic import ValidationError

    from registry.core.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CERTLEDGER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"bad configuration: {problems}", 2)


def tls_verify(url: str) -> Any:
    """httpx's ``verify`` for a client of the registry at ``url``. For an ``https://`` URL: True, the
    CA bundle. For ``http://``, where the client never makes a TLS connection (it follows no
    redirect), a context that trusts no certificate: httpx builds its TLS context when the client is
    made, and loading the CA bundle took ~35 ms of every command's ~0.28 s start. Should a TLS
    connection ever be made with it, it fails verification; it is never made unverified."""
    if not url.lower().startswith("http://"):
        return True
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # (hostname checked, certificate required, no CA)


def client(url: str, api_key: str | None, timeout: float = 120.0) -> Any:
    """An ``httpx.Client`` for the registry with the organisation's key (exit 2 without one)."""
    import httpx

    if not api_key:
        fail("an API key is needed: --api-key or CERTLEDGER_API_KEY", 2)
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
        verify=tls_verify(url),
    )


def answer(resp: Any) -> tuple[dict | None, str | None]:
    """A service answer as (body, None), or (the error object or None, one line saying what went wrong)."""
    try:
        body = resp.json()
    except ValueError:
        return None, f"the service answered HTTP {resp.status_code} without JSON"
    if resp.status_code < 400 and isinstance(body, (dict, list)):
        return body, None  # type: ignore[return-value]
    e = body.get("error") if isinstance(body, dict) else None
    e = e if isinstance(e, dict) else {}
    return e, f"{e.get('message', resp.text[:200])} ({e.get('code')}, HTTP {resp.status_code})"


def call(method: str, url: str, api_key: str | None, path: str, **kw: Any) -> Any:
    """One request to the registry; its response, or ``fail`` with the service's error in one line."""
    import httpx

    with client(url, api_key) as c:
        try:
            resp = c.request(method, path, **kw)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the registry at {url}: {exc}")
    _, error = answer(resp) if resp.status_code >= 400 else (None, None)
    if error:
        fail(error)
    return resp


def emit(text: str, out: Path | None) -> None:
    """Write ``text`` to stdout, or to ``out`` (saying so on stderr)."""
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {out}")
