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

from tests.support import indexer as S

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.chain


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ledger_node.index_cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )


def _events_indexed(database_url: str) -> int:
    """How many chain events the projection holds (0 before the indexer has made its tables)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def count() -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as c:
                return int((await c.execute(text("SELECT count(*) FROM chain_events"))).scalar_one())
        except Exception:  # noqa: BLE001 - the table does not exist yet
            return 0
        finally:
            await engine.dispose()

    return S.run(count())


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(bulk_anvil, tmp_path, database_url):
    from ledger_node.indexer import chain_snapshot

    deployment = bulk_anvil.deploy(tmp_path / "deployment.json")
    loader = S.Loader(bulk_anvil.url, deployment)
    loader.mixed_history()
    loader.anchor_many(S.ISSUER_NEW_KEY, 4_000, per_block=10)  # 400 blocks
    args = [
        "--data-dir",
        str(tmp_path),
        "--rpc",
        bulk_anvil.url,
        "--database-url",
        database_url,
        "--once",
        "--page-size",
        "2",
    ]
    rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
    checkpoints = [0]
    for round_ in range(5):
        proc = _cli(*args)
        if round_ == 0:
            time.sleep(rnd.uniform(0.0, 1.0))  # once early: during start-up or migrations
        else:
            # then at random moments of the catch-up itself: wait (however slow the machine is
            # today) until this run has indexed something new, then a little longer
            deadline = time.monotonic() + 60
            while (
                proc.poll() is None
                and time.monotonic() < deadline
                and _events_indexed(database_url) <= max(checkpoints)
            ):
                time.sleep(0.05)
            time.sleep(rnd.uniform(0.0, 0.3))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        checkpoints.append(_events_indexed(database_url))
    proc = _cli(*args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "indexed" in out
    assert any(0 < n < 4_000 for n in checkpoints), f"no kill landed mid catch-up: {checkpoints}"
    assert len(checkpoints) == 6, f"the catch-up ended before the fifth kill: {checkpoints}"
    snap = S.run(S.db_snapshot(database_url))
    assert S.diff(snap, S.run(chain_snapshot(bulk_anvil.url, deployment))) == ""
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    S.run(S.index_once(bulk_anvil.url, deployment, fresh))
    assert S.diff(snap, S.run(S.db_snapshot(fresh))) == ""


def test_one_line_errors(bulk_anvil, tmp_path):
    from ledger_node.node import free_port

    p = _cli("--data-dir", str(tmp_path), "--rpc", bulk_anvil.url, "--once")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "no deployment manifest" in err and "Traceback" not in err
    bulk_anvil.deploy(tmp_path / "deployment.json")
    p = _cli("--data-dir", str(tmp_path), "--rpc", f"http://127.0.0.1:{free_port()}", "--once")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "cannot reach the chain node" in err and "Traceback" not in err
    for bad in ("nosuchdb://x", "sqlite:///plain-sync.db", "postgresql+asyncpg://u:p@127.0.0.1:1/db"):
        p = _cli("--data-dir", str(tmp_path), "--rpc", bulk_anvil.url, "--database-url", bad, "--once")
        _, err = p.communicate(timeout=60)
        assert p.returncode in (1, 2) and "error:" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) <= 2, err
    p = _cli("--data-dir", str(tmp_path), "--rpc", bulk_anvil.url, "--once")  # defaults: DATA_DIR/registry.db
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert (tmp_path / "registry.db").exists() and "indexed" in out
