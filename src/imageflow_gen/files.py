"""Reading a profile file: a regular file only (never a FIFO or a device), at most
MAX_FILE_BYTES of it. Shared by the loader and by uptodate's proof, which must read the same
bytes without importing the YAML parser."""

from __future__ import annotations

import os
import stat
from pathlib import Path as FsPath

# Above real topologies (the benchmark's largest profile, 8,000 processing services, is about
# 1.2 MB) and low enough that a hostile file is refused before it is read.
MAX_FILE_BYTES = 4 * 1024 * 1024


def read_capped(path: FsPath) -> tuple[bytes, int]:
    """At most MAX_FILE_BYTES + 1 bytes of a regular file, and its size; a FIFO or a device is
    never read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
            raise OSError(0, f"{kind}; a profile is a YAML file")
        if info.st_size > MAX_FILE_BYTES:
            return b"", info.st_size
        data = handle.read(MAX_FILE_BYTES + 1)
        return data, len(data)
