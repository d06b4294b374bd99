"""`certledger serve` refuses a bad configuration with one line and exit 2, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CERTLEDGER = Path(sys.executable).parent / "certledger"


@pytest.mark.parametrize("env, expected", [
    ({"CERTLEDGER_DATABASE_URL": "mysql://x"}, "unsupported CERTLEDGER_DATABASE_URL 'mysql'"),
    ({"CERTLEDGER_DATABASE_URL": "postgresql+asyncpg://u:p@127.0.0.1:1/x"}, "cannot prepare the database"),
    ({"CERTLEDGER_RPC_URL": "http://127.0.0.1:1"}, "no deployment manifest at"),
    ({"CERTLEDGER_BATCH_SIZE": "zero"}, "bad configuration"),
])
def test_serve_refuses_bad_configuration(tmp_path, env, expected):
    proc = subprocess.run([str(CERTLEDGER), "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CERTLEDGER_DATA_DIR": str(tmp_path / "d"), **env})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
