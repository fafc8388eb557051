#!/usr/bin/env python3
"""Copy the YAML blocks of the seed document into tests/fixtures/seed/blocks.yaml.

The tests check prod against the seed's own objects and values, but read only this fixture:
the seed lives outside the repository. Run it by hand when the seed changes, giving its path,
and review the diff:

    python tools/seed_fixtures.py PATH/TO/infra-design.ja.md
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "seed" / "blocks.yaml"


def blocks(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, text) of each ```yaml block, lines counted from 1."""
    found = []
    for match in re.finditer(r"```yaml\n(.*?)```", text, re.S):
        first = text.count("\n", 0, match.start(1)) + 1
        found.append((first, first + match.group(1).count("\n") - 1, match.group(1)))
    return found


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    seed = Path(sys.argv[1])
    data = seed.read_bytes()
    parts = [
        f"# Copied by tools/seed_fixtures.py from the seed document {seed.name}\n"
        f"# (sha256 {hashlib.sha256(data).hexdigest()}): its YAML blocks, unchanged,\n"
        f"# each after a comment naming its lines there.\n"
    ]
    for number, (first, last, body) in enumerate(blocks(data.decode("utf-8"))):
        parts.append(("" if number == 0 else "---\n") + f"# seed lines {first}-{last}\n" + body)
    OUT.write_text("".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
