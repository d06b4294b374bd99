"""`python -m ledger_node.index_cli` (mounted as `certledger index`): SIGKILLed at random moments
during a catch-up, restarted, it ends with the projection of a fresh re-index — no gap, no
duplicate. And one-line errors for a missing manifest, an unreachable node, a bad database URL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


from tests.ledger_node import indexer_support as S
from tests.ledger_node.indexer_support import anvil  # noqa: F401 (fixture)
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.chain


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ledger_node.index_cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "120", **(env or {})})


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(anvil, tmp_path, database_url):
    from ledger_node.indexer import chain_snapshot

    deployment = anvil.deploy(tmp_path / "deployment.json")
    loader = S.Loader(anvil.url, deployment)
    loader.mixed_history()
    loader.anchor_many(S.ISSUER_NEW_KEY, 4_000, per_block=10)  # 400 blocks
    args = ["--data-dir", str(tmp_path), "--rpc", anvil.url, "--database-url", database_url, "--once",
            "--page-size", "2"]
    rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
    checkpoints = []
    for _ in range(5):
        proc = _cli(*args)
        time.sleep(rnd.uniform(1.0, 2.5))  # ~1 s of it is the interpreter's start
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            checkpoints.append(len(S.run(S.db_snapshot(database_url))["events"]))
        except Exception:  # noqa: BLE001 - killed before its tables existed
            checkpoints.append(0)
    proc = _cli(*args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "indexed" in out
    assert any(0 < n < 4_000 for n in checkpoints), f"no kill landed mid catch-up: {checkpoints}"
    snap = S.run(S.db_snapshot(database_url))
    assert S.diff(snap, S.run(chain_snapshot(anvil.url, deployment))) == ""
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    S.run(S.index_once(anvil.url, deployment, fresh))
    assert S.diff(snap, S.run(S.db_snapshot(fresh))) == ""


def test_one_line_errors(anvil, tmp_path):
    from ledger_node.node import free_port

    p = _cli("--data-dir", str(tmp_path), "--rpc", anvil.url, "--once")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "no deployment manifest" in err and "Traceback" not in err
    anvil.deploy(tmp_path / "deployment.json")
    p = _cli("--data-dir", str(tmp_path), "--rpc", f"http://127.0.0.1:{free_port()}", "--once")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "cannot reach the chain node" in err and "Traceback" not in err
    for bad in ("nosuchdb://x", "sqlite:///plain-sync.db", "postgresql+asyncpg://u:p@127.0.0.1:1/db"):
        p = _cli("--data-dir", str(tmp_path), "--rpc", anvil.url, "--database-url", bad, "--once")
        _, err = p.communicate(timeout=60)
        assert p.returncode in (1, 2) and "error:" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) <= 2, err
    p = _cli("--data-dir", str(tmp_path), "--rpc", anvil.url, "--once")  # defaults: DATA_DIR/registry.db
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert (tmp_path / "registry.db").exists() and "indexed" in out
