"""Terminal output: colour only for a terminal, plain text for pipes, files and NO_COLOR.

Colour is on when the stream is a terminal, NO_COLOR is unset (https://no-color.org) and
TERM is not `dumb`; FORCE_COLOR turns it on regardless. Colour never carries meaning that the
text does not: a status word is the same word with or without it.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

_CODES = {"green": "32", "yellow": "33", "red": "31", "dim": "2", "bold": "1", "cyan": "36"}
STATUS_COLOURS = {
    "created": "green",
    "changed": "yellow",
    "removed": "red",
    "unchanged": "dim",
    "kept": "yellow",
    "ok": "green",
    "failed": "red",
    "skipped": "yellow",
    "valid": "green",
}


def colour_enabled(stream: TextIO) -> bool:
    if os.environ.get("FORCE_COLOR"):
        return True
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, colour: str, stream: TextIO | None = None) -> str:
    """`text` in `colour` when `stream` (stdout by default) shows colour; else `text`."""
    if not colour_enabled(stream or sys.stdout):
        return text
    return f"\033[{_CODES[colour]}m{text}\033[0m"


def status(word: str, width: int = 0, stream: TextIO | None = None) -> str:
    """A status word (created, changed, ok, ...), padded to `width`, coloured by meaning."""
    padded = f"{word:<{width}}"
    colour = STATUS_COLOURS.get(word)
    return paint(padded, colour, stream) if colour else padded


class Progress:
    """One transient line on stderr for a long step, only when stderr is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.step = 0

    def __call__(self, what: str) -> None:
        if not self.enabled:
            return
        self.step += 1
        self.stream.write(f"\r\033[Krunning {what} ...")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.step:
            self.stream.write("\r\033[K")
            self.stream.flush()
