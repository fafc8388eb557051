"""Build hook: the templates compiled into the package (imageflow_gen/_templates).

A CLI that every CI job and pre-commit hook starts cold should not parse and compile its
templates on every run, nor depend on a cache in the user's home. The package carries Jinja's
bytecode of each template, compiled here by the Python and Jinja that build it (in an editable
install, into src/ beside the code; in a wheel, as package data). rendering.py uses an entry
only while its template's source is the one it was compiled from.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface[Any]):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        sys.path.insert(0, str(root / "src"))
        try:
            from imageflow_gen.rendering import precompile
        finally:
            sys.path.remove(str(root / "src"))
        if version == "editable":
            precompile(root / "templates", root / "src/imageflow_gen/_templates")
            return
        self._folder = Path(tempfile.mkdtemp(prefix="imageflow-templates-"))
        precompile(root / "templates", self._folder)
        build_data["force_include"][str(self._folder)] = "imageflow_gen/_templates"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        folder = getattr(self, "_folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
