"""The verifier stands alone: importing it and verifying offline loads no service code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.verifier.factory import AT, World

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
