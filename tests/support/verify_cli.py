"""``certledger-verify`` as a real subprocess, and the files its tests verify."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRESH = 1_780_268_400  # 2026-05-31T23:00:00Z, an hour before AT (tests.support.factory)


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.run(  # noqa: PLW1510 - the return code is checked below
        [sys.executable, "-m", "verifier._cli", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert b"Traceback" not in proc.stderr + proc.stdout, proc.stderr.decode()
    return proc
