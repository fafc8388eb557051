"""Shared helpers: the repository root and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "profiles"
SHARED = REPO.parent / "shared"
CRDS = [SHARED / "crd-schemas"]
# The output has Istio custom resources: tests check them against the shared CRD schemas
# (`make test` sets the same variable).
os.environ.setdefault("IMAGEFLOW_CRD_SCHEMAS", str(CRDS[0]))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run `imageflow-gen ARGS` in a fresh process, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "imageflow_gen", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, env=full_env, timeout=300)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli
