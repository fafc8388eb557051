"""load -> model -> plan -> targets -> normalised text. A pure function of the input files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path as FsPath

from .errors import Problem, ValidationFailed, dotted
from .loading import Loaded, load_profile
from .model import Topology
from .plan import Plan, make_plan, name_findings
from .targets import REGISTRY, Context
from .validation import topology


@dataclass(frozen=True)
class Build:
    """A profile's whole output, before anything is written."""

    profile: str
    loaded: Loaded
    topology: Topology
    files: dict[str, str]


def validated(profiles_dir: FsPath, profile: str) -> tuple[Loaded, Topology, Plan]:
    """Load, validate and plan `profile`; raise with every problem found."""
    loaded = load_profile(profiles_dir, profile)
    topo = topology(loaded)
    plan = make_plan(topo, profile)
    findings = name_findings(plan)
    if findings:
        raise ValidationFailed([Problem(loaded.locate(path), dotted(path), message) for path, message in findings])
    return loaded, topo, plan


def build(profiles_dir: FsPath, profile: str) -> Build:
    """Everything `render` would write for `profile`, as {relative path: text}."""
    loaded, topo, plan = validated(profiles_dir, profile)
    base = plan if loaded.root == profile else validated(profiles_dir, loaded.root)[2]
    context = Context(plan=plan, base=base)
    files: dict[str, str] = {}
    for name in sorted(REGISTRY):
        files.update(REGISTRY[name](context))
    return Build(profile=profile, loaded=loaded, topology=topo, files=dict(sorted(files.items())))
