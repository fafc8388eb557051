"""load -> model -> plan -> targets -> normalised text. A pure function of the input files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from . import resources
from .capacity import Report, analyse
from .errors import Problem, ValidationFailed, undotted
from .loading import Loaded, load_profile
from .model import Topology
from .model.checks import secret_refs
from .plan import Plan, make_plan, name_findings
from .targets import Context, Rendered, registry
from .targets.kubernetes import objects
from .validate import parse_problems, schema_problems, schemas, secret_problems
from .validate.paths import path_problems
from .validate.kubernetes import SchemaStore
from .modelling import topology


@dataclass(frozen=True)
class Build:
    """A profile's whole output, before anything is written."""

    profile: str
    loaded: Loaded
    topology: Topology
    files: dict[str, str]
    objects: list[tuple[str, dict[str, Any]]]
    kubernetes_minor: str = ""
    warnings: tuple[Problem, ...] = ()
    plan: Plan | None = None

    def owned(self) -> dict[str, str]:
        """The files with the profile's lock: everything `render` writes for it."""
        from .uptodate import provenance
        from .writing import lock_path, lock_text

        recorded = provenance(self.loaded.files, self.loaded.root, list(self.warnings))
        return {**self.files, lock_path(self.profile): lock_text(self.profile, recorded, self.files)}


def validated(profiles_dir: FsPath, profile: str) -> tuple[Loaded, Topology, Plan]:
    """Load, validate and plan `profile`; raise with every problem found."""
    loaded = load_profile(profiles_dir, profile)
    topo = topology(loaded)
    # Only the file's name: the output must not depend on where the profiles are.
    plan = make_plan(topo, profile, lambda path: FsPath(loaded.locate(path).file).name)
    findings = name_findings(plan)
    if plan.kubernetes_minor not in schemas.versions():
        findings.append(
            (
                ("cluster", "version"),
                f"Kubernetes {plan.kubernetes_minor} has no schemas to validate "
                f"against; supported: {schemas.versions()[0]} to {schemas.versions()[-1]}",
            )
        )
    if findings:
        raise ValidationFailed([loaded.problem(path, message) for path, message in findings])
    return loaded, topo, plan


def with_base(profiles_dir: FsPath, profile: str) -> tuple[Loaded, Topology, Plan, Plan]:
    """`validated`, plus the plan of the profile's root (the Kustomize base; the same plan when
    the profile is its own root)."""
    loaded, topo, plan = validated(profiles_dir, profile)
    base = plan if loaded.root == profile else validated(profiles_dir, loaded.root)[2]
    return loaded, topo, plan, base


def secret_key_names(topo: Topology) -> frozenset[str]:
    """The names of the keys inside the Secrets the topology references (never their values)."""
    names = frozenset(name for _, _, ref, _ in secret_refs(topo) for name in ref.keys.values())
    # Sealed values are ciphertext for the cluster's controller: safe to commit by design.
    return names | topo.secrets.ciphertexts


def build(
    profiles_dir: FsPath, profile: str, crd_locations: list[FsPath] | None = None, *, reparse: bool = False
) -> Build:
    """Everything `render` would write for `profile`, validated; raise with every problem found.

    Custom resources are checked against the CRD schemas in `crd_locations` (by default the
    shipped ones, resources.crd_locations()).

    Every YAML file is written by yamlio's emitter from data that was parsed and checked, and
    a property test holds the emitter to round-tripping; `reparse` parses each file once more
    anyway (the `validate` command does).
    """
    loaded, topo, plan, base = with_base(profiles_dir, profile)
    context = Context(plan=plan, base=base)
    rendered = Rendered()
    for _, target in sorted(registry().items()):
        rendered.update(target(context))
    store = SchemaStore(plan.kubernetes_minor, resources.crd_locations() if crd_locations is None else crd_locations)
    report = analyse(plan)
    problems = (
        (parse_problems(rendered.files) if reparse else [])
        + schema_problems(store, rendered.objects)
        + secret_problems(rendered.files, secret_key_names(topo))
        + [loaded.problem(f.path, f.message) for f in report.errors]
        + [loaded.problem(undotted(p.source.partition("#")[2]), p.message) for p in path_problems(objects(plan))]
    )
    if problems:
        raise ValidationFailed(problems)
    warnings = tuple(sorted({loaded.problem(f.path, f.message, severity="warning") for f in report.warnings}))
    return Build(
        profile=profile,
        loaded=loaded,
        topology=topo,
        files=dict(sorted(rendered.files.items())),
        objects=rendered.objects,
        kubernetes_minor=plan.kubernetes_minor,
        warnings=warnings,
        plan=plan,
    )


def capacity_report(profiles_dir: FsPath, profile: str) -> tuple[Loaded, Report]:
    """The capacity report of a profile, without rendering it."""
    loaded, _, plan = validated(profiles_dir, profile)
    return loaded, analyse(plan)
