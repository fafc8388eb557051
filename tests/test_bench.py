"""The benchmark runs end to end at its smallest size (a smoke test: nothing about time is
asserted), and its target lines fail the run when a measured figure misses its goal."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

import bench  # noqa: E402


def test_benchmark_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench/bench.py"), "--sizes", "500", "--runs", "1", "--no-goals"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    for label in (
        "1. cold render prod, output up to date",
        "1. cold render prod, empty output",
        "1. imageflow-gen --help",
        "1. validate --profile prod --no-tools",
        "2. 500 services render+validate",
        "3. validation",
        "4. re-render prod, nothing changed",
        "targets:",
        "2000 services render+validate",  # a target line, though not measured at 500
    ):
        assert label in proc.stdout, label
    assert "files written: 0" in proc.stdout
    assert "cold render prod, output up to date" in proc.stdout.split("targets:")[1]


def test_a_missed_goal_is_named_and_fails_the_run() -> None:
    measured = {"prod_uptodate": 0.4, "ratio_2000": 0.2, "peak_2000": 143, "throughput": 6.0, "rerender_written": 0}
    lines, missed = bench.judge(measured)
    assert missed
    assert [line.split()[-1] for line in lines[1:]] == ["met", "MISSED", "met", "measured", "met", "met"]
    assert not bench.judge({**measured, "ratio_2000": 0.15})[1]
    assert bench.judge({**measured, "peak_2000": 301})[1] and bench.judge({**measured, "throughput": 0.9})[1]
    assert bench.judge({**measured, "prod_uptodate": 1.01})[1] and bench.judge({**measured, "rerender_written": 1})[1]
