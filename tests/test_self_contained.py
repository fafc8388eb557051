"""The repository is all a user has: nothing that runs reads a folder beside the checkout."""

from __future__ import annotations

import re

from conftest import REPO

# The folder beside the checkout, spelled as a relative path or built from the repository's parent.
BESIDE = re.compile(r"\.\./" + "shared" + r"|parent\s*/\s*[\"']" + "shared")
RUNS = ["Makefile", ".ci", "src", "tests", "tools", "bench", "pyproject.toml"]


def test_nothing_that_runs_reads_a_folder_beside_the_checkout() -> None:
    found = []
    for top in RUNS:
        paths = [REPO / top] if (REPO / top).is_file() else sorted((REPO / top).rglob("*"))
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                text = path.read_text(encoding="utf-8", errors="replace")
                found += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in BESIDE.finditer(text)]
    assert found == []
