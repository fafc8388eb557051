"""Golden cases: tests/cases/<case>/ is an input, tests/golden/<case>/ its exact expected result.

A case directory holds `cmd` (the imageflow-gen arguments, one line) and optionally
`profiles/` (laid over a copy of the repository's profiles/). The golden directory holds
`exit_code`, `stdout.txt`, `stderr.txt` and, when the command writes output, `out/`.
Run `make golden` to rewrite them after an intended change, and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from conftest import PROFILES, REPO, run_cli
from imageflow_gen.resources import generator_fingerprint

CASES = REPO / "tests" / "cases"
GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("IMAGEFLOW_UPDATE_GOLDEN") == "1"


def _tree(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*")) if p.is_file()}


def _actual(case: Path, work: Path) -> dict[str, str]:
    shutil.copytree(PROFILES, work / "profiles")
    if (case / "profiles").is_dir():
        shutil.copytree(case / "profiles", work / "profiles", dirs_exist_ok=True)
    args = shlex.split((case / "cmd").read_text(encoding="utf-8"))
    result = run_cli(*args, cwd=work)
    files = {"exit_code": f"{result.code}\n", "stdout.txt": result.stdout, "stderr.txt": result.stderr}
    files.update({f"out/{k}": _fingerprint_named(k, v) for k, v in _tree(work / "out").items()})
    return files


_FINGERPRINT = re.compile(r'"generator_sha256": "([0-9a-f]{64})"')


def _fingerprint_named(rel: str, text: str) -> str:
    """A lock with its generator fingerprint named, not spelled: the fingerprint hashes the
    tool's code, so it changes with every commit (test_uptodate tests what it covers). It must
    be this generator's."""
    if not rel.startswith(".imageflow-gen/") or not rel.endswith(".lock.json"):
        return text
    found = _FINGERPRINT.findall(text)
    assert found == [generator_fingerprint()], f"{rel}: {found}"
    return _FINGERPRINT.sub('"generator_sha256": "(this generator\'s fingerprint)"', text)


def _diff(expected: dict[str, str], actual: dict[str, str]) -> str:
    chunks = []
    for name in sorted(set(expected) | set(actual)):
        if expected.get(name) != actual.get(name):
            chunks.extend(
                difflib.unified_diff(
                    (expected.get(name) or "").splitlines(keepends=True),
                    (actual.get(name) or "").splitlines(keepends=True),
                    f"golden/{name}" if name in expected else "/dev/null",
                    f"actual/{name}" if name in actual else "/dev/null",
                )
            )
    return "".join(chunks)


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.iterdir() if (p / "cmd").is_file()))
def test_golden(name: str, tmp_path: Path) -> None:
    actual = _actual(CASES / name, tmp_path)
    golden = GOLDEN / name
    if UPDATE:
        shutil.rmtree(golden, ignore_errors=True)
        for rel, text in actual.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text, encoding="utf-8", newline="\n")
    difference = _diff(_tree(golden), actual)
    assert not difference, f"{difference}\nrun `make golden` if this change is intended"


def test_every_case_has_a_golden() -> None:
    cases = {p.name for p in CASES.iterdir() if (p / "cmd").is_file()}
    goldens = {p.name for p in GOLDEN.iterdir() if p.is_dir()}
    assert cases == goldens
