"""The benchmark runs end to end at its smallest size (a smoke test: nothing about time is asserted)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_benchmark_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench/bench.py"), "--sizes", "500", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    for label in (
        "1. cold render prod",
        "2. 500 services render+validate",
        "3. validation",
        "4. re-render prod, nothing changed",
    ):
        assert label in proc.stdout
    assert "files written: 0" in proc.stdout
