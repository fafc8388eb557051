"""The code passes its linter (ruff: pycodestyle, pyflakes, bugbear), is formatted as `ruff format`
writes it, and passes its type checker (mypy --strict, from pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    proc = run("ruff", "check", "--no-cache", "src", "tests", "tools", "bench", "hatch_build.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_code_is_formatted() -> None:
    proc = run("ruff", "format", "--check", "--no-cache", "src", "tests", "tools", "bench", "hatch_build.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_nothing() -> None:
    proc = run("mypy", "--cache-dir", "/dev/null")
    assert proc.returncode == 0, proc.stdout + proc.stderr
