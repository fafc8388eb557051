"""The benchmark runs end to end at its smallest size (a smoke test: nothing about time is
asserted), and its target lines fail the run when a measured figure misses its goal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_side_whose_first_run_takes_minutes_is_not_repeated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """At 2,000 services kubectl kustomize takes 10 to 12 minutes a run: the tools run once
    while imageflow-gen runs three times, each tools run on an output that was rendered."""
    rendered, checked = [], []

    def fake_render(argv: list[str], **_: object) -> tuple[float, int, bytes]:
        rendered.append(Path(argv[argv.index("--out") + 1]))
        rendered[-1].mkdir(parents=True)
        return 40.0, 100, b""

    def fake_tools(out: Path, *_: object, **__: object) -> tuple[float, int]:
        assert out.is_dir(), out
        checked.append(out)
        return 700.0, 800

    monkeypatch.setattr(bench, "run", fake_render)
    monkeypatch.setattr(bench, "tools_on", fake_tools)
    monkeypatch.setattr(bench, "write_topology", lambda size, profiles: profiles / f"synthetic-{size}.yaml")
    monkeypatch.setattr(bench, "MEASURED", {})
    lines = bench.bench_synthetic([2000], 3, tmp_path, 120, 900)
    assert len(rendered) == 3 and checked == [tmp_path / "synthetic-2000-0"]
    assert bench.MEASURED["ratio_2000"] == pytest.approx(40 / 700)
    assert lines == []  # one size: no growth line
    assert bench.runs_label(3, 1) == "3 runs, tools 1" and bench.runs_label(1, 1) == "1 run"


@pytest.mark.parametrize("size", bench.SIZES)
def test_every_default_size_is_a_profile_the_loader_accepts(size: int, tmp_path: Path) -> None:
    """The loader refuses more than 100,000 values; a size over it would fail only the full
    `make bench`, which no other test runs."""
    from imageflow_gen.loading import load_profile

    path = bench.write_topology(size, tmp_path)
    loaded = load_profile(tmp_path, path.stem)
    assert len(loaded.data["processing"]["services"]) == size
