"""Run writing.write() and SIGKILL this process at the N-th file-system step (tests only).

    python crash_writer.py N OUT PROFILE FILES.json

The steps counted are the calls that change the file system or make it durable: os.replace,
os.rename, os.unlink, os.rmdir, os.mkdir, os.fsync. With N = 0 nothing is killed and the
number of steps is printed, so a test can spread its kill points over a whole write.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

STEPS = ("replace", "rename", "unlink", "rmdir", "mkdir", "fsync")


def main() -> None:
    kill_at, out, profile, files_json = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    files = json.loads(files_json.read_text(encoding="utf-8"))
    count = [0]

    def counted(real):
        def step(*args, **kwargs):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return step

    for name in STEPS:
        setattr(os, name, counted(getattr(os, name)))
    from imageflow_gen.writing import write

    write(out, profile, files)
    print(count[0])


if __name__ == "__main__":
    main()
