"""Every benchmark script starts in the environment `make setup` builds: its imports are declared
dependencies (stop 15's HTTP issuance benchmark imported psutil, which nothing installed, and
`scripts/bench` wrote its section as a traceback)."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
BENCHES = sorted([SCRIPTS / "bench", *SCRIPTS.glob("bench_*.py")])


def test_the_benchmarks_are_found():
    assert {p.name for p in BENCHES} >= {
        "bench",
        "bench_issuance.py",
        "bench_http_issuance.py",
        "bench_machine.py",
    }


@pytest.mark.parametrize("script", BENCHES, ids=[p.name for p in BENCHES])
def test_a_benchmark_script_imports_and_shows_its_help(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:")
    assert "Traceback" not in proc.stderr
