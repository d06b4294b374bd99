"""Every CLI command group and every API router is mounted, eagerly (issue 20, point 4): a broken
import fails ``certledger`` and the app's creation loudly instead of silently dropping a command or
a router."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import typer.main

import registry.api.routes
from registry.api.app import create_app
from registry.cli import app as cli_app
from registry.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]

#: the ``certledger`` commands, and the subcommands of each group (DESIGN.md "Interfaces")
COMMANDS = {
    "audit": None,
    "bundle": {"export", "cosign"},
    "db": {"upgrade"},
    "deploy": None,
    "flow": {"declare", "decide", "show", "trace"},
    "index": None,
    "issue": None,
    "node": {"up", "down", "status"},
    "pledge": {"proof"},
    "serve": None,
    "signer": {"run", "new-key", "check-log"},
    "validators": {"export"},
}


def test_every_cli_command_and_group_is_present():
    root = typer.main.get_command(cli_app)
    assert set(root.commands) == set(COMMANDS)  # type: ignore[attr-defined]
    for name, subcommands in COMMANDS.items():
        command = root.commands[name]  # type: ignore[attr-defined]
        assert set(getattr(command, "commands", {}) or {}) == (subcommands or set()), name


def _route_modules():
    return [
        importlib.import_module(f"registry.api.routes.{m.name}")
        for m in pkgutil.iter_modules(registry.api.routes.__path__)
    ]


def test_every_router_is_mounted(tmp_path):
    """Each module in registry/api/routes/ that defines a router has every one of its routes in the
    app (found by listing the package, so a new router that is not mounted fails here too)."""
    modules = [m for m in _route_modules() if hasattr(m, "router")]
    assert {m.__name__.rsplit(".", 1)[1] for m in modules} >= {
        "verify",
        "health",
        "organisations",
        "credentials",
        "batches",
        "bundle",
        "flows",
        "pages",
        "trace_page",
        "audit",
        "holder",
        "proofs",
    }
    mounted = set(_endpoints(create_app(Settings(data_dir=tmp_path)).routes))
    for module in modules:
        for route in module.router.routes:
            assert route.endpoint in mounted, f"{module.__name__}: {route.path} is not mounted"


def _endpoints(routes):
    """The endpoint functions of an app's routes (FastAPI ≥ 0.165 keeps an included router whole,
    as an entry with ``original_router``; older versions copy its routes in)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _endpoints(route.original_router.routes)
        else:
            yield getattr(route, "endpoint", None)


BROKEN = """
import json, sys
results = {}
for module, statement in json.loads(sys.argv[1]):
    # forget the module (and the CLI that mounts it), so the statement imports it anew
    saved = {name: sys.modules.pop(name) for name in (module, "registry.cli") if name in sys.modules}
    package, _, name = module.rpartition(".")
    attribute = sys.modules[package].__dict__.pop(name, None) if package in sys.modules else None
    sys.modules[module] = None  # importing it now raises ImportError, as a broken import does
    try:
        exec(statement)
        results[module] = "mounted without it"
    except ImportError as exc:
        results[module] = "ImportError: " + str(exc)
    del sys.modules[module]
    sys.modules.update(saved)
    if attribute is not None:
        setattr(sys.modules[package], name, attribute)
print(json.dumps(results))
"""


def _with_broken_imports(cases: list[tuple[str, str]]) -> dict[str, str]:
    """What each statement did with its module's import broken, one module at a time (one process)."""
    proc = subprocess.run(  # noqa: PLW1510 - the return code is checked below
        [sys.executable, "-c", BROKEN, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_broken_command_or_router_module_fails_loudly(tmp_path):
    commands = ("registry.cli.flow", "registry.cli.issue", "ledger_node.index_cli", "registry.signer.cli")
    routers = (
        "registry.api.routes.trace_page",
        "registry.api.routes.flows",
        "registry.api.routes.pages",
        "registry.api.routes.audit",
    )
    make_app = (
        "from registry.api.app import create_app; from registry.core.config import Settings; "
        f"create_app(Settings(data_dir={str(tmp_path)!r}))"
    )
    results = _with_broken_imports(
        [(m, "import registry.cli") for m in commands] + [(m, make_app) for m in routers]
    )
    assert set(results) == {*commands, *routers}
    for module, outcome in results.items():
        assert outcome.startswith("ImportError:") and module in outcome, (module, outcome)
