"""Where the templates and schemas shipped with the tool live.

In a source checkout (and an editable install) they are the repository's top-level
`templates/` and `schemas/`; a wheel carries copies inside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The directory `name` (templates or schemas), packaged copy first."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"imageflow-gen is installed without its {name}/ directory")
