"""Problems carry data (where and what); nothing here prints."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath


@dataclass(frozen=True, order=True)
class Location:
    """A place in an input file: 1-based line and column, as editors show them."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


Path = tuple[str | int, ...]


def display_path(path: FsPath) -> str:
    """How a profile file is named in messages: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(FsPath.cwd().resolve()))
    except ValueError:
        return str(path)


def dotted(path: Path) -> str:
    """('minio', 'buckets', 1, 'access') -> 'minio.buckets[1].access'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def undotted(text: str) -> Path:
    """'minio.buckets[1].access' -> ('minio', 'buckets', 1, 'access'): the inverse of `dotted`."""
    path: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", text):
        path.append(int(index) if index else name)
    return tuple(path)


@dataclass(frozen=True, order=True)
class Problem:
    """One finding: where it is, which key, and what is wrong."""

    location: Location
    key: str
    message: str
    severity: str = field(default="error", compare=False)

    def __str__(self) -> str:
        where = str(self.location)
        key = f" {self.key}:" if self.key else ""
        return f"{where}{key} {self.message}"


class ImageflowError(Exception):
    """Base class: carries every problem found, in a stable order."""

    exit_code = 1

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class InputError(ImageflowError):
    """The input cannot be read at all (missing, unreadable, not YAML): exit 2."""

    exit_code = 2


class UsageError(ImageflowError):
    """The command line asks for something impossible: exit 2."""

    exit_code = 2


class OutputError(ImageflowError):
    """The output folder cannot be written or read as needed (in use, read-only, full, a file
    in the way of a folder): exit 2, like input that cannot be read."""

    exit_code = 2


class ValidationFailed(ImageflowError):
    """The input was read but breaks the model, a cross-check or an output gate: exit 1."""

    exit_code = 1
