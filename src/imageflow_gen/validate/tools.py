"""The real tools users run in CI, run over a rendered tree where they are installed.

kubectl kustomize (each overlay builds), kubeconform -strict (the built objects, against the
cluster's Kubernetes version and the CRD schemas, nothing skipped), promtool check config (the
Prometheus configuration among them), helm lint --strict (the chart with each profile's values)
and check-jsonschema (compose files against the compose-spec). A tool that is not installed is
reported as skipped, never as passed.
Tools are looked up on PATH, after the folders in IMAGEFLOW_TOOLS (the Makefile points it
at .tools/bin).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Location, Problem
from ..shared import SOURCE_ANNOTATION, identity
from . import schemas, source_of
from .apiserver import ApiClient, dry_run

TIMEOUT = 600


@dataclass
class ToolResult:
    """What one tool said: problems, or why it did not run."""

    tool: str
    problems: list[Problem] = field(default_factory=list)
    skipped: str | None = None
    summary: str | None = None  # what it checked, when it passed (e.g. how many objects)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "warning"]


def find(name: str) -> str | None:
    """The tool's path: IMAGEFLOW_TOOLS folders first, then PATH."""
    extra = os.environ.get("IMAGEFLOW_TOOLS", "")
    path = os.pathsep.join(p for p in (extra, os.environ.get("PATH", "")) if p)
    return shutil.which(name, path=path)


def _run(argv: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={
            **os.environ,
            "HELM_CACHE_HOME": str(cwd / ".helm-cache"),
            "HELM_CONFIG_HOME": str(cwd / ".helm-config"),
            "HELM_DATA_HOME": str(cwd / ".helm-data"),
        },
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def kustomize_build(root: Path, overlay: str) -> tuple[ToolResult, str]:
    """`kubectl kustomize` of one overlay; returns the built YAML."""
    kubectl = find("kubectl")
    if kubectl is None:
        return ToolResult("kubectl kustomize", skipped="kubectl not found"), ""
    proc = _run([kubectl, "kustomize", overlay], cwd=root)
    if proc.returncode != 0:
        message = " ".join(_lines(proc.stderr)) or f"exit code {proc.returncode}"
        return ToolResult(
            "kubectl kustomize", [Problem(Location(f"{overlay}/kustomization.yaml"), "kustomize", message)]
        ), ""
    return ToolResult("kubectl kustomize"), proc.stdout


def kubeconform(
    root: Path,
    built: str,
    source: str,
    minor: str,
    crd_locations: list[Path],
    files_by_object: dict[str, str],
    schema_dir: Path | None = None,
) -> ToolResult:
    """kubeconform -strict over built YAML; each problem names the file that defines the object.

    `schema_dir` holds the Kubernetes schemas in kubeconform's layout (schemas.export); without
    it they are exported for this call alone.
    """
    binary = find("kubeconform")
    if binary is None:
        return ToolResult("kubeconform", skipped="kubeconform not found")
    with tempfile.TemporaryDirectory(prefix="imageflow-kubeconform-") as tmp:
        if schema_dir is None:
            schema_dir = Path(tmp)
            schemas.export(schema_dir, [minor])
        argv = [
            binary,
            "-strict",
            "-output",
            "json",
            "-kubernetes-version",
            f"{minor}.0",
            "-schema-location",
            f"{schema_dir}/{{{{.NormalizedKubernetesVersion}}}}-standalone"
            "{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json",
        ]
        for location in crd_locations:
            argv += [
                "-schema-location",
                f"{location.resolve()}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
            ]
        # A file, not stdin: kubeconform v0.7.0 reading a large stdin with its worker pool
        # reports random false errors (seen at a few thousand objects); from a file it does not.
        objects_file = Path(tmp) / "objects.yaml"
        objects_file.write_text(built, encoding="utf-8")
        proc = _run(argv + [str(objects_file)], cwd=root)
    try:
        report = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return ToolResult(
            "kubeconform", [Problem(Location(source), "kubeconform", " ".join(_lines(proc.stdout + proc.stderr)))]
        )
    problems = []
    for resource in report.get("resources", []):
        if resource.get("status") in ("statusInvalid", "statusError", "statusSkipped"):
            what = f"{resource.get('kind')} {resource.get('name')}"
            file, _, origin = files_by_object.get(what, source).partition(" ")
            problems.append(
                Problem(Location(file), what, f"kubeconform: {resource.get('msg') or resource.get('status')}{origin}")
            )
    if proc.returncode != 0 and not problems:
        problems.append(Problem(Location(source), "kubeconform", " ".join(_lines(proc.stderr)) or "failed"))
    return ToolResult("kubeconform", problems)


def helm_lint(root: Path, chart: str, values: str | None) -> ToolResult:
    """`helm lint --strict` of a chart, with a values file."""
    helm = find("helm")
    if helm is None:
        return ToolResult("helm lint", skipped="helm not found")
    argv = [helm, "lint", "--strict", chart] + (["-f", values] if values else [])
    proc = _run(argv, cwd=root)
    if proc.returncode == 0:
        return ToolResult("helm lint")
    found = [line for line in _lines(proc.stdout + proc.stderr) if line.startswith(("[ERROR]", "[WARNING]", "Error"))]
    return ToolResult(
        "helm lint",
        [
            Problem(Location(f"{chart}/Chart.yaml"), "helm lint", line)
            for line in found or [f"exit code {proc.returncode}"]
        ],
    )


def helm_template(root: Path, chart: str, values: str, *sets: str) -> tuple[ToolResult, str]:
    """`helm template` of the chart with a values file (and `--set` assignments); returns the
    rendered YAML."""
    helm = find("helm")
    if helm is None:
        return ToolResult("helm template", skipped="helm not found"), ""
    proc = _run(
        [helm, "template", "imageflow", chart, "-f", values, *(a for s in sets for a in ("--set", s))], cwd=root
    )
    if proc.returncode != 0:
        return ToolResult(
            "helm template", [Problem(Location(values), "helm template", " ".join(_lines(proc.stderr)) or "failed")]
        ), ""
    return ToolResult("helm template"), proc.stdout


def without_hooks(text: str) -> list[dict[str, Any]]:
    """The objects of rendered YAML, leaving out Helm hooks (helm test pods are not deployed)."""
    import yaml

    return [
        doc
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and "helm.sh/hook" not in (doc.get("metadata", {}).get("annotations") or {})
    ]


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without the source annotation, which names a profile file the chart cannot know."""
    meta = dict(obj.get("metadata", {}))
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != SOURCE_ANNOTATION}
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    return {**obj, "metadata": meta}


def same_objects(helm_text: str, kustomize_text: str, values: str) -> ToolResult:
    """Helm and Kustomize must deploy the same objects, field for field (the source annotation aside)."""
    helm_objects = {identity(o): comparable(o) for o in without_hooks(helm_text)}
    kustomize_objects = {identity(o): comparable(o) for o in without_hooks(kustomize_text)}
    problems = []
    for key in sorted(set(helm_objects) | set(kustomize_objects)):
        what = f"{key[1]} {key[2] + '/' if key[2] else ''}{key[3]}"
        if key not in helm_objects or key not in kustomize_objects:
            side = "the chart" if key not in helm_objects else "the overlay"
            problems.append(Problem(Location(values), what, f"missing from {side}"))
        elif helm_objects[key] != kustomize_objects[key]:
            problems.append(Problem(Location(values), what, "the chart and the overlay render it differently"))
    return ToolResult("helm = kustomize", problems)


def api_dry_run(tool: str, client: ApiClient, text: str, source: str, *, bootstrap: bool) -> ToolResult:
    """Every object of rendered YAML applied with a server-side dry run (validate/apiserver.py).

    A refusal is a problem naming the object, the server's message (which names the field)
    and the profile key the object came from; so is a Pod Security warning (pods that would be
    refused). Other warnings are reported as warnings."""
    import yaml

    docs = [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    findings = dry_run(client, docs, bootstrap=bootstrap)
    problems = []
    for finding in findings:
        meta = finding.obj.get("metadata", {})
        what = (
            f"{finding.obj.get('kind')} "
            + (f"{meta['namespace']}/" if meta.get("namespace") else "")
            + str(meta.get("name"))
        )
        origin = source_of(finding.obj)
        severity = "warning" if finding.warning and "PodSecurity" not in finding.message else "error"
        problems.append(
            Problem(
                Location(source),
                what,
                f"API server: {finding.message}" + (f" (from {origin})" if origin else ""),
                severity=severity,
            )
        )
    refused = len({id(f.obj) for f in findings if not f.warning})
    unchecked = len({id(f.obj) for f in findings if f.warning and f.message.startswith("not checked:")})
    summary = f"{len(docs) - refused - unchecked} of {len(docs)} objects accepted" + (
        f", {unchecked} not checked" if unchecked else ""
    )
    return ToolResult(tool, problems, summary=summary)


def compose_schema(root: Path, files: list[str]) -> ToolResult:
    """check-jsonschema with the compose-spec schema it carries."""
    checker = find("check-jsonschema")
    if checker is None:
        return ToolResult("compose schema", skipped="check-jsonschema not found")
    problems = []
    for name in files:
        proc = _run([checker, "--builtin-schema", "vendor.compose-spec", "--output-format", "json", name], cwd=root)
        if proc.returncode != 0:
            problems.extend(_compose_errors(name, proc))
    return ToolResult("compose schema", problems)


def _compose_errors(name: str, proc: subprocess.CompletedProcess[str]) -> list[Problem]:
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [Problem(Location(name), "compose", " ".join(_lines(proc.stdout + proc.stderr)))]
    errors = report.get("errors", []) + report.get("parse_errors", [])
    return [
        Problem(Location(name), str(e.get("path", "compose")).lstrip("$."), e.get("message", str(e))) for e in errors
    ] or [Problem(Location(name), "compose", "failed")]


_FILE_KEYS = ("credentials_file", "ca_file", "cert_file", "key_file", "password_file", "bearer_token_file")


def _named_files(node: Any) -> list[str]:
    """The files a Prometheus configuration names (tokens, certificates), wherever they are."""
    if isinstance(node, dict):
        own = [str(v) for k, v in node.items() if k in _FILE_KEYS and isinstance(v, str)]
        return own + [f for v in node.values() for f in _named_files(v)]
    if isinstance(node, list):
        return [f for v in node for f in _named_files(v)]
    return []


def promtool(built: str, by_object: dict[str, str]) -> ToolResult | None:
    """promtool check config on each Prometheus configuration among the built objects (a
    ConfigMap with `prometheus.yml`, and the rule files beside it), its lint findings fatal;
    None when there is none."""
    import yaml

    configs = [
        (f"ConfigMap {obj['metadata']['name']}", obj["data"])
        for obj in yaml.safe_load_all(built)
        if obj and obj.get("kind") == "ConfigMap" and "prometheus.yml" in (obj.get("data") or {})
    ]
    if not configs:
        return None
    checker = find("promtool")
    if checker is None:
        return ToolResult("promtool", skipped="promtool not found")
    problems = []
    for name, data in configs:
        # The ConfigMap's files side by side, as mounted: the config and the rule files it names;
        # the files it names beside its folder (mounted Secrets) as empty stand-ins.
        with tempfile.TemporaryDirectory(prefix="imageflow-promtool-") as top:
            folder = Path(top) / "config"
            folder.mkdir()
            for key, text in data.items():
                (folder / key).write_text(text)
            for path in _named_files(yaml.safe_load(data["prometheus.yml"])):
                stand_in = (folder / path).resolve()
                if not Path(path).is_absolute() and stand_in.is_relative_to(Path(top).resolve()):
                    stand_in.parent.mkdir(parents=True, exist_ok=True)
                    stand_in.touch()
            proc = _run([checker, "check", "config", "--lint-fatal", "prometheus.yml"], cwd=folder)
            if proc.returncode != 0:
                where = Location(by_object.get(name, name))
                problems += [Problem(where, "prometheus.yml", line) for line in _lines(proc.stdout + proc.stderr)]
    return ToolResult("promtool", problems)


def run_all(
    root: Path,
    profile: str,
    minor: str,
    crd_locations: list[Path],
    objects: list[tuple[str, Any]],
    progress: Callable[[str], None] | None = None,
    api: tuple[ApiClient, bool] | None = None,
) -> list[ToolResult]:
    """Every gate that applies to the tree under `root` for `profile`; `progress` hears each step.
    With `api` (a client, and whether to bootstrap its namespaces), the overlay's and the
    chart's objects are also dry-run on that API server."""
    with tempfile.TemporaryDirectory(prefix="imageflow-schemas-") as schema_dir:
        # Exported once for both kubeconform runs (the overlay's and the chart's objects).
        schemas.export(Path(schema_dir), [minor])
        return _run_all(
            root, profile, minor, crd_locations, objects, Path(schema_dir), progress or (lambda _: None), api
        )


def _run_all(
    root: Path,
    profile: str,
    minor: str,
    crd_locations: list[Path],
    objects: list[tuple[str, Any]],
    schema_dir: Path,
    progress: Callable[[str], None],
    api: tuple[ApiClient, bool] | None = None,
) -> list[ToolResult]:
    results = []
    overlay = f"kustomize/overlays/{profile}"
    # "<file> (from <profile file>#<key>)": where a finding about the object points.
    by_object = {
        f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}": f"{path} (from {source_of(obj)})"
        if source_of(obj)
        else path
        for path, obj in objects
    }
    built = ""
    if (root / overlay / "kustomization.yaml").is_file():
        progress("kubectl kustomize")
        built_result, built = kustomize_build(root, overlay)
        results.append(built_result)
        if built:
            progress("kubeconform")
            results.append(
                kubeconform(root, built, f"{overlay}/kustomization.yaml", minor, crd_locations, by_object, schema_dir)
            )
            if api:
                progress("API server dry-run")
                results.append(
                    api_dry_run("API server dry-run", api[0], built, f"{overlay}/kustomization.yaml", bootstrap=api[1])
                )
            progress("promtool")
            checked = promtool(built, by_object)
            if checked is not None:
                results.append(checked)
    chart = f"helm/{profile}"
    values = f"{chart}/values.yaml"
    if (root / chart / "Chart.yaml").is_file():
        progress("helm lint")
        results.append(helm_lint(root, chart, None))
        progress("helm template")
        template_result, rendered = helm_template(root, chart, values)
        results.append(template_result)
        if rendered:
            progress("kubeconform (chart)")
            result = kubeconform(root, rendered, values, minor, crd_locations, {}, schema_dir)
            results.append(ToolResult("kubeconform (chart)", result.problems, result.skipped))
            if built:
                results.append(same_objects(rendered, built, values))
            if api:
                progress("API server dry-run (chart)")
                results.append(api_dry_run("API server dry-run (chart)", api[0], rendered, values, bootstrap=api[1]))
    compose = sorted(str(p.relative_to(root)) for p in (root / "compose" / profile).rglob("docker-compose.yaml"))
    if compose:
        progress("compose schema")
        results.append(compose_schema(root, compose))
    return results
