"""Shared helpers: the repository root and a way to run the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from imageflow_gen.resources import crd_locations

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "profiles"
# The feature profile of the typed workloads: every option, on the cluster and on the VMs
# (golden-tested as the case render-workloads).
FEATURE = REPO / "tests" / "cases" / "render-workloads" / "profiles" / "workloads.yaml"


@cache
def feature_profiles() -> Path:
    """A profiles folder holding the shipped profiles and the feature profile `workloads`."""
    folder = Path(tempfile.mkdtemp(prefix="imageflow-feature-profiles-"))
    for profile in PROFILES.glob("*.yaml"):
        shutil.copy(profile, folder)
    shutil.copy(FEATURE, folder)
    return folder


# The CRD schemas the tool ships (schemas/crds), as `render` and `validate` use them by default.
CRDS = crd_locations()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run `imageflow-gen ARGS` in a fresh process, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "imageflow_gen", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def cli_without(module: str, name: str) -> str:
    """A `python -c` script running the CLI with `module.objects(plan)` leaving out the object
    called `name` (a NetworkPolicy, say): the output as a broken plan would render it."""
    return f"""
import sys
import {module} as patched
real = patched.objects
patched.objects = lambda plan: [o for o in real(plan) if o["metadata"]["name"] != {name!r}]
from imageflow_gen.cli import main
sys.argv = ["imageflow-gen", *sys.argv[1:]]
main()
"""


@pytest.fixture
def cli():
    return run_cli
