"""`certledger serve` (and every command that reads the service's settings) refuses a bad
configuration with one line and exit 2, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CERTLEDGER = Path(sys.executable).parent / "certledger"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"CERTLEDGER_DATABASE_URL": "mysql://x"}, "unsupported CERTLEDGER_DATABASE_URL 'mysql'"),
        (
            {"CERTLEDGER_DATABASE_URL": "postgresql+asyncpg://u:p@127.0.0.1:1/x"},
            "cannot prepare the database",
        ),
        ({"CERTLEDGER_RPC_URL": "http://127.0.0.1:1"}, "no deployment manifest at"),
        (
            {"CERTLEDGER_BATCH_SIZE": "zero"},
            "bad configuration: CERTLEDGER_BATCH_SIZE: Input should be a valid",
        ),
        (
            {"CERTLEDGER_SQLITE_CACHE_MIB": "0"},
            "CERTLEDGER_SQLITE_CACHE_MIB: Input should be greater than or equal to 1",
        ),
        ({"CERTLEDGER_RPC_BATCH_CALLS": "0"}, "CERTLEDGER_RPC_BATCH_CALLS"),  # (named by its variable)
    ],
)
def test_serve_refuses_bad_configuration(tmp_path, env, expected):
    proc = subprocess.run(
        [str(CERTLEDGER), "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CERTLEDGER_DATA_DIR": str(tmp_path / "d"), **env},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("command", [["db", "upgrade"], ["audit"], ["flow", "trace", "--from-chain"]])
def test_every_command_that_reads_the_settings_refuses_a_bad_one_in_one_line(tmp_path, command):
    """(`certledger db upgrade` once ended a bad CERTLEDGER_* value in pydantic's traceback.) The line
    names the variable and not its value, which may be a secret."""
    proc = subprocess.run(
        [str(CERTLEDGER), *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "CERTLEDGER_DATA_DIR": str(tmp_path / "d"),
            "CERTLEDGER_SQLITE_CACHE_MIB": "lots",
            "CERTLEDGER_KEYSTORE_PASSPHRASE": "",
            "CERTLEDGER_CONFIRMATIONS": "secret-looking-value",
        },
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert "CERTLEDGER_SQLITE_CACHE_MIB: Input should be a valid integer" in proc.stderr
    assert "CERTLEDGER_CONFIRMATIONS" in proc.stderr and "secret-looking-value" not in proc.stderr


def test_the_command_line_starts_without_the_chain_and_service_libraries():
    """`certledger --help`, `certledger issue` and the like do not import web3, eth_account,
    SQLAlchemy or the verifier at start (web3 and eth_account alone took 1.5 s): each command
    imports what it uses."""
    code = (
        "import sys, registry.cli; "
        "print(sorted(m for m in ('web3', 'eth_account', 'sqlalchemy', 'verifier', 'fastapi') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    # the package's names still resolve (on first use), `deploy` to the function even once its
    # submodule of that name is imported
    code = (
        "import ledger_node.deploy, ledger_node; from ledger_node import DEV_KEYS, Chain, deploy; "
        "print(len(DEV_KEYS) >= 4, Chain.__name__, callable(deploy), ledger_node.deploy is deploy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["True", "Chain", "True", "True"], proc.stdout + proc.stderr


def test_the_command_line_does_not_import_httpx_s_own_command_line():
    """httpx imports its command line (click, pygments) with itself; certledger's commands use httpx
    as a client only, so that part is left out (~20 ms of each command's start), and httpx works."""
    code = (
        "import sys, registry.cli, httpx; "
        "print(sorted(m for m in ('click', 'pygments') if m in sys.modules), callable(httpx.Client))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "True"], proc.stdout
    proc = subprocess.run(
        [sys.executable, "-c", "import httpx, sys; print('pygments' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "True", "httpx no longer imports its command line: the test shows nothing"


@pytest.mark.parametrize("args", [["--help"], ["issue", "BusinessLicence", "/nonexistent.jsonl"]])
def test_a_command_leaves_its_objects_frozen_for_the_exit(args):
    """When a command ends, however it ends, the objects left are frozen (gc.freeze), so the
    interpreter's exit does not run the collector over them (~40 ms of a large `certledger issue`)."""
    code = (
        "import atexit, gc, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0)); "
        f"sys.argv = ['certledger', *{args!r}]; from registry.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == (0 if args == ["--help"] else 2), proc.stderr
    assert "frozen True" in proc.stdout, proc.stdout + proc.stderr


def test_a_client_of_an_http_registry_loads_no_ca_bundle_and_never_connects_unverified():
    """The client of an ``http://`` registry gets a TLS context that trusts no certificate (httpx
    would load the CA bundle when the client is made); one of an ``https://`` registry gets the CA
    bundle. Neither follows a redirect, so the first never reaches TLS, and if it did it would
    refuse every certificate: hostname checked, certificate required, no trust anchor."""
    import ssl

    from registry.cli._common import client, tls_verify

    for url in ("http://127.0.0.1:8000", "HTTP://registry.example"):
        ctx = tls_verify(url)
        assert isinstance(ctx, ssl.SSLContext)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.cert_store_stats()["x509_ca"] == 0
    assert tls_verify("https://registry.example") is True
    with client("http://127.0.0.1:8000", "key") as c:
        assert c.follow_redirects is False
