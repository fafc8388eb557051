"""The pipeline's stages import only downwards: the model never imports the plan, the targets
or the output gates; the plan never imports a target; targets read the model only through the
plan; the gates never import a target; only the CLI prints (and picks exit codes)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "imageflow_gen"

# Stage (a module or a package) -> stages it must never import.
FORBIDDEN = {
    "model": {"plan", "targets", "validate", "writing", "cli", "pipeline", "rendering", "modelling"},
    "loading": {"model", "plan", "targets", "validate", "writing", "cli", "pipeline"},
    "modelling": {"plan", "targets", "validate", "writing", "cli", "pipeline"},
    "plan": {"targets", "validate", "writing", "cli", "pipeline", "rendering"},
    "targets": {"model", "modelling", "loading", "validate", "writing", "cli", "pipeline"},  # the plan only
    "validate": {"targets", "plan", "writing", "cli", "pipeline"},
    "shared": {"model", "plan", "targets", "validate", "writing", "cli", "pipeline", "loading"},
    "writing": {"model", "plan", "targets", "validate", "cli", "pipeline"},
    "availability": {"targets", "validate", "writing", "cli", "pipeline", "simulate"},
    "simulate": {"model", "targets", "writing", "cli", "pipeline", "loading", "modelling"},
    # The proof that a render changes nothing reads the lock and hashes, never the stages.
    "uptodate": {"model", "modelling", "loading", "plan", "targets", "validate", "rendering", "cli", "pipeline"},
    "files": {"model", "modelling", "loading", "plan", "targets", "validate", "rendering", "cli", "pipeline"},
}


def _stage(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """The package stages a module imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    depth = len(path.relative_to(PACKAGE).parts) - 1
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(path.relative_to(PACKAGE).parts[: depth - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                if parts:
                    found.add(parts[0])
                else:  # `from . import x` at the top of the package
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("imageflow_gen."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("imageflow_gen."))
    return {f.removesuffix(".py") for f in found}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _stage(p) in FORBIDDEN)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_stages_import_only_downwards(path: Path) -> None:
    assert _imports(path) & FORBIDDEN[_stage(path)] == set()


def test_the_resolver_sees_relative_and_absolute_imports() -> None:
    assert {"plan", "rendering", "yamlio", "targets"} <= _imports(PACKAGE / "targets" / "helm.py")
    assert {"targets", "validate", "plan", "resources"} <= _imports(PACKAGE / "pipeline.py")


def test_only_the_cli_prints() -> None:
    printing = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("cli.py", "console.py", "__main__.py")
        and any(
            isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
            for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        )
    ]
    assert printing == []


def test_the_contributors_hooks_run_the_projects_own_tools() -> None:
    import importlib.util
    import re
    import shlex

    import yaml

    root = PACKAGE.parent.parent
    venv = re.search(r"^VENV\s*[:?]?=\s*(\S+)", (root / "Makefile").read_text(), re.M)
    (repo,) = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())["repos"]
    hooks = {hook["id"]: hook for hook in repo["hooks"]}
    assert repo["repo"] == "local" and {"ruff", "ruff-format", "mypy", "schemas", "golden"} <= set(hooks)
    for hook in hooks.values():
        argv = shlex.split(hook["entry"])
        # The Makefile's virtualenv, and a module it installs.
        assert hook["language"] == "system" and venv and argv[0] == f"{venv[1]}/bin/python", hook["id"]
        assert argv[1] == "-m" and importlib.util.find_spec(argv[2]) is not None, hook["id"]
