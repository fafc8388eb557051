"""Where the templates, schemas (with the CRD schemas) and profiles shipped with the tool live.

In a source checkout (and an editable install) they are the repository's top-level
`templates/`, `schemas/` and `profiles/`; a wheel carries copies inside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The directory `name` (templates, schemas or profiles), packaged copy first."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"imageflow-gen is installed without its {name}/ directory")


def upstream_crds() -> list[Path]:
    """The projects' own CRD files shipped with the tool (schemas/crds/upstream), which the local
    API server installs."""
    return sorted((data_dir("schemas") / "crds" / "upstream").glob("*.yaml"))


def crd_locations(extra: list[Path] | None = None) -> list[Path]:
    """Where CRD schemas are looked up: the user's folders first (they add or override), then
    the ones shipped with the tool (schemas/crds, produced by tools/crds.py)."""
    return [*(extra or []), data_dir("schemas") / "crds"]
