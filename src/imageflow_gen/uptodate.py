"""Proof, without rendering, that a render would change nothing in the output.

A render is a pure function of the profile files of its `extends` chain (by name and bytes)
and of the generator (its version and the fingerprint of its code, templates and schemas;
resources.generator_fingerprint). The lock of the last render records both, the render's
warnings and the sha256 of every file it wrote. When the lock's generator is this one, the
chain's files hash to the lock's input hash, and every file in the output still has the bytes
the lock recorded (writing.verified_lock reads them all: a stale or edited lock proves
nothing), a new render would write the same bytes: `render`, `check` and `diff` then skip the
work and report the output unchanged, with the warnings the render gave.

Anything else (no lock, a lock of an earlier format, another generator, an edited profile or
output file, extra CRD schema folders, an interrupted render) means: render in full.
Imports nothing heavy: this is the path every up-to-date CI run and pre-commit hook takes.
"""

from __future__ import annotations

import errno
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import Location, Problem, display_path
from .files import MAX_FILE_BYTES, read_capped
from .resources import generator_fingerprint
from .writing import Change, Provenance, lock_path, verified_lock

# A profile file's name, as loading.profile_path makes it.
_INPUT_NAME = re.compile(r"[a-z0-9]([-a-z0-9_]*[a-z0-9])?\.yaml")


@dataclass(frozen=True)
class Unchanged:
    """A render proved to change nothing: what it would report."""

    changes: list[Change]
    warnings: list[Problem]


def input_hash(files: list[Path]) -> str:
    """sha256 over the profile files of an extends chain, by file name (not by path), root first.
    Read as the loader reads them (regular files, capped): an OSError when one cannot be."""
    digest = hashlib.sha256()
    for path in files:
        data, size = read_capped(path)
        if size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, "larger than a profile may be", str(path))
        digest.update(path.name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def provenance(inputs: list[str], root: str, warnings: list[Problem]) -> Provenance:
    """The provenance a render of these profile files (as the loader named them) records."""
    return Provenance(
        generator=__version__,
        generator_sha256=generator_fingerprint(),
        inputs=tuple(Path(name).name for name in inputs),
        input_sha256=input_hash([Path(name) for name in inputs]),
        root=root,
        warnings=tuple(
            (Path(w.location.file).name, w.location.line, w.location.column, w.key, w.message) for w in warnings
        ),
    )


def unchanged(out: Path, profile: str, profiles_dir: Path) -> Unchanged | None:
    """What a render of `profile` into `out` would report, when it provably changes nothing;
    None when that cannot be proved (then render in full)."""
    found = verified_lock(out, profile)
    if found is None:
        return None
    recorded, hashes = found
    names = recorded.inputs
    if recorded.generator != __version__ or recorded.generator_sha256 != generator_fingerprint():
        return None
    if not names or names[-1] != f"{profile}.yaml" or names[0] != f"{recorded.root}.yaml":
        return None
    if not all(_INPUT_NAME.fullmatch(name) for name in names):
        return None
    try:
        if input_hash([profiles_dir / name for name in names]) != recorded.input_sha256:
            return None
    except OSError:
        return None
    warnings = [
        Problem(Location(display_path(profiles_dir / file), line, column), key, message, severity="warning")
        for file, line, column, key, message in recorded.warnings
    ]
    changes = [Change(rel, "unchanged") for rel in sorted(hashes)] + [Change(lock_path(profile), "unchanged")]
    return Unchanged(changes, sorted(warnings))
