"""The verifier stands alone: importing it and verifying offline loads no service code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.factory import AT, World

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("registry", "ledger_node", "web3", "fastapi", "sqlalchemy")

SCRIPT = """
import json, sys
import verifier
from verifier import TrustBundle, verify
bundle = TrustBundle.load(sys.argv[1])
result = verify(json.load(open(sys.argv[2], encoding="utf-8")), trust=bundle, at=sys.argv[3])
assert result.valid, result.checks
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(json.dumps(loaded))
"""


def test_offline_verification_loads_no_service_modules(tmp_path):
    w = World()
    issuer = w.add_issuer()
    holder = w.issue(issuer, [w.document(issuer)])[0]
    (tmp_path / "b.json").write_text(json.dumps(w.bundle()))
    (tmp_path / "c.json").write_text(json.dumps(holder, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run(  # noqa: PLW1510 - the return code is checked below
        [
            sys.executable,
            "-c",
            SCRIPT.format(forbidden=set(FORBIDDEN)),
            str(tmp_path / "b.json"),
            str(tmp_path / "c.json"),
            AT,
        ],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == []


def test_the_package_source_imports_nothing_from_the_service():
    for path in (ROOT / "verifier").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ("registry", "ledger_node"):
            assert f"from {name}" not in text and f"import {name}" not in text, path


def _private_verifier_imports(source: str) -> list[str]:
    """The ``verifier._*`` names a module's source imports (``import verifier._x``,
    ``from verifier._x import y``, ``from verifier import _x``), at any depth of the module."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "verifier":
                modules += [f"verifier.{alias.name}" for alias in node.names]
        else:
            continue
        found += [
            m
            for m in modules
            if m.split(".")[0] == "verifier" and any(part.startswith("_") for part in m.split(".")[1:])
        ]
    return found


def test_the_scan_finds_every_form_of_private_import():
    source = (
        "import verifier._holder\nfrom verifier._internal.merkle import leaf_hash\n"
        "from verifier import _schema, verify\ndef f():\n    from verifier._jsonio import loads_strict\n"
        "from verifier import issuance\nfrom verifier.issuance import leaf_hash\nimport verifier\n"
    )
    assert set(_private_verifier_imports(source)) == {
        "verifier._holder",
        "verifier._internal.merkle",
        "verifier._schema",
        "verifier._jsonio",
    }


def test_the_service_uses_only_the_verifiers_public_api():
    """registry/ and ledger_node/ import the verifier's public names only (``verifier``,
    ``verifier.issuance``, ``verifier.errors``, ...), never a ``verifier._*`` module: the format has one
    implementation, in the verifier (issue 20, point 1)."""
    offenders = {}
    for package in ("registry", "ledger_node"):
        for path in sorted((ROOT / package).rglob("*.py")):
            private = _private_verifier_imports(path.read_text(encoding="utf-8"))
            if private:
                offenders[str(path.relative_to(ROOT))] = private
    assert offenders == {}
