"""The only writer. Files are compared byte for byte; only changed ones are written.

Each file is written to a temporary name beside it and renamed into place, so a reader never
sees half a file; every file is staged before the first rename, so a failure while staging
leaves the output as it was.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Change:
    """What happened to one file: created, changed or unchanged."""

    path: str
    status: str


def plan_changes(out: Path, files: dict[str, str]) -> list[Change]:
    """Compare `files` with what is in `out`, without writing."""
    changes = []
    for rel, text in sorted(files.items()):
        target = out / rel
        if not target.is_file():
            changes.append(Change(rel, "created"))
        elif target.read_bytes() != text.encode("utf-8"):
            changes.append(Change(rel, "changed"))
        else:
            changes.append(Change(rel, "unchanged"))
    return changes


def write(out: Path, files: dict[str, str]) -> list[Change]:
    """Write what differs into `out`; return each file's status."""
    changes = plan_changes(out, files)
    staged: list[tuple[str, Path]] = []
    try:
        for change in changes:
            if change.status != "unchanged":
                staged.append((change.path, _stage(out / change.path, files[change.path])))
    except BaseException:
        for _, temp in staged:
            temp.unlink(missing_ok=True)
        raise
    for rel, temp in staged:
        os.replace(temp, out / rel)
    return changes


def _stage(target: Path, text: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))
    os.chmod(name, 0o644)
    return Path(name)
