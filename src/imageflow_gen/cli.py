"""The command line: parses options, runs the pipeline, prints, and picks the exit code.

Exit codes: 0 ok; 1 validation failed (or, for checks, drift); 2 usage error or unreadable
input; 70 an internal error (a bug: please report it).
"""

from __future__ import annotations

import enum
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .console import Progress, paint, status
from .errors import ImageflowError, Location, Problem, UsageError

EXIT_INTERNAL = 70

app = typer.Typer(
    name="imageflow-gen",
    help="Render the ImageFlowCanvas topology into Kustomize, Helm, Compose and K3s files.\n\n"
    "Examples:\n\n"
    "  imageflow-gen validate --profile prod\n\n"
    "  imageflow-gen render --profile prod --out out\n\n"
    "  imageflow-gen graph --profile prod\n\n"
    "  imageflow-gen explain minio.buckets\n\n"
    "  imageflow-gen init my-site --extends prod\n\n"
    "Shell completion: imageflow-gen --install-completion",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _complete_profile(incomplete: str) -> list[str]:
    """Shell completion of --profile: the profiles in ./profiles (or $IMAGEFLOW_PROFILES_DIR)."""
    folder = Path(os.environ.get("IMAGEFLOW_PROFILES_DIR", "profiles"))
    names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    return [name for name in names if name.startswith(incomplete)]


ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        "-p",
        help="Profile name: a file profiles/NAME.yaml.",
        show_default=False,
        autocompletion=_complete_profile,
    ),
]
ProfilesDirOpt = Annotated[
    Path,
    typer.Option("--profiles-dir", help="Directory of the profiles.", file_okay=False, envvar="IMAGEFLOW_PROFILES_DIR"),
]


def _out_path(value: str) -> Path:
    """--out as given: an empty string is refused (as a path it would mean the working folder)."""
    if not value:
        raise typer.BadParameter("must name a folder (an empty string would mean the working folder)")
    return Path(value)


OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory.", parser=_out_path, metavar="<dir>")]
CrdOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--crd-schemas",
        envvar="IMAGEFLOW_CRD_SCHEMAS",
        help="Extra folder of CRD JSON schemas laid out as {group}/{kind}_{version}.json, searched before the "
        "shipped ones (repeatable; the environment variable takes a list separated by ':').",
        file_okay=False,
        show_default=False,
    ),
]


def _say(text: str) -> None:
    """A status line on stdout; `console` already left colour out where it does not belong."""
    typer.echo(text, color=True)


def _warn(warnings: Any) -> None:
    """Warnings (capacity near its limit) on stderr; they never change the exit code."""
    for warning in warnings:
        _echo_err(f"{paint('warning:', 'yellow', sys.stderr)} {warning}")


def _echo_err(text: str) -> None:
    typer.echo(text, err=True, color=True)


def _report(error: ImageflowError, what: str) -> None:
    for problem in error.problems:
        _echo_err(str(problem))
    count = len(error.problems)
    _echo_err(f"imageflow-gen: {count} problem{'s' if count != 1 else ''} {what}")


def _run(action: Callable[[], Any], what: str) -> Any:
    """Run `action`; turn known failures into messages and exit codes, never a traceback."""
    try:
        return action()
    except ImageflowError as error:
        _report(error, what)
        raise typer.Exit(error.exit_code) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # noqa: BLE001 - the last line of defence against a traceback
        _echo_err(f"imageflow-gen: internal error: {type(error).__name__}: {error}")
        if os.environ.get("IMAGEFLOW_DEBUG"):
            traceback.print_exc()
        else:
            _echo_err("imageflow-gen: this is a bug; set IMAGEFLOW_DEBUG=1 for the traceback and report it")
        raise typer.Exit(EXIT_INTERNAL) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imageflow-gen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """imageflow-gen: typed ImageFlowCanvas topology in, deployable infrastructure out."""


@app.command()
def render(
    profile: ProfileOpt,
    out: OutOpt = Path("out"),
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    crd_schemas: CrdOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary.")] = False,
    allow_data_loss: Annotated[
        bool,
        typer.Option(
            "--allow-data-loss", help="Write a render that deletes or recreates what holds data (see `plan`)."
        ),
    ] = False,
) -> None:
    """Validate a profile and write its output; only files whose bytes changed are written.

    Files the profile's previous render wrote and this one no longer produces are removed;
    files imageflow-gen did not generate are never touched. On any failure nothing is written.
    A render that would delete or recreate what holds persistent data, compared with the
    output's state (`plan` shows it), is refused (exit 4) unless --allow-data-loss is given.

    Example: imageflow-gen render --profile prod --out out
    """
    crds, out = _crds(crd_schemas), _out(out, profiles_dir)
    proof = _unchanged(out, profile, profiles_dir, crd_schemas)
    if proof is not None:
        _warn(proof.warnings)
        _summarise(out, profile, proof.changes, quiet)
        return
    from .writing import write

    files = _checked_build(out, profile, profiles_dir, crds, allow_data_loss)
    _summarise(out, profile, _run(lambda: write(out, profile, files), f"writing {out}"), quiet)


def _checked_build(
    out: Path, profile: str, profiles_dir: Path, crds: list[Path], allow_data_loss: bool
) -> dict[str, str]:
    """The files a render writes, after its warnings and the data-loss check. Only the texts
    outlive it: the model, the plan and the parsed objects are freed before anything is written."""
    from .changes import changes_of, refuse_data_loss
    from .pipeline import build

    result = _run(lambda: build(profiles_dir, profile, crds), f"in profile {profile!r}; nothing written")
    _warn(result.warnings)
    if not allow_data_loss:
        data_changes = _run(lambda: changes_of(out, profile, result.files), f"reading {out}; nothing written")
        _run(lambda: refuse_data_loss(out, profile, data_changes), "nothing written")
    files: dict[str, str] = result.owned()
    return files


def _unchanged(out: Path, profile: str, profiles_dir: Path, crd_schemas: list[Path] | None) -> Any:
    """uptodate's proof that a render changes nothing, or None. Extra CRD schema folders are
    not part of what a lock records, so with them nothing is proved."""
    if crd_schemas:
        return None
    from .uptodate import unchanged

    return unchanged(out, profile, profiles_dir)


def _summarise(out: Path, profile: str, changes: list[Any], quiet: bool) -> None:
    """Each file's status (unless quiet) and the summary line."""
    counts = {
        s: sum(1 for c in changes if c.status == s) for s in ("created", "changed", "unchanged", "removed", "kept")
    }
    # "kept": edited since generated and no longer produced; said only when it happened.
    statuses = [s for s in counts if s != "kept" or counts[s]]
    if not quiet:
        for change in changes:
            _say(f"{status(change.status, 9)} {out / change.path}")
    _say(
        f"profile {profile}: "
        + ", ".join(f"{counts[s]} {status(s) if counts[s] else s}" for s in statuses)
        + f" in {out}"
    )


def _stale(profile: str, out: Path, profiles_dir: Path, crd_schemas: list[Path] | None) -> tuple[str, int]:
    """The unified diff between `out` and a fresh render of `profile`, and how many files differ."""
    crds, out = _crds(crd_schemas), _out(out, profiles_dir)
    if _unchanged(out, profile, profiles_dir, crd_schemas) is not None:
        return "", 0
    from .pipeline import build
    from .writing import compare, unified_diff

    result = _run(lambda: build(profiles_dir, profile, crds), f"in profile {profile!r}")
    files = result.owned()
    changes = _run(lambda: compare(out, profile, files), f"in {out}")
    # A kept file (edited, no longer generated) is the user's now: not drift.
    return unified_diff(out, files, changes), sum(1 for c in changes if c.status not in ("unchanged", "kept"))


@app.command()
def check(
    profile: ProfileOpt,
    out: OutOpt = Path("out"),
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    crd_schemas: CrdOpt = None,
) -> None:
    """Exit 1, with a unified diff, if the output of a profile is stale, missing or has extra files.

    Writes nothing. Use it in CI and pre-commit hooks of the repository holding the output.

    Example: imageflow-gen check --profile prod --out out
    """
    diff, count = _stale(profile, out, profiles_dir, crd_schemas)
    if count:
        typer.echo(diff, nl=False)
        _echo_err(
            f"imageflow-gen: {count} file{'s are' if count != 1 else ' is'} stale for profile {profile!r} "
            f"in {out}; run `imageflow-gen render --profile {profile} --out {out}`"
        )
        raise typer.Exit(1)
    typer.echo(f"profile {profile}: {out} is up to date")


@app.command()
def diff(
    profile: ProfileOpt,
    out: OutOpt = Path("out"),
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    crd_schemas: CrdOpt = None,
) -> None:
    """Show, as a unified diff, what `render` would change in the output; exit 0.

    Example: imageflow-gen diff --profile prod --out out
    """
    text, _ = _stale(profile, out, profiles_dir, crd_schemas)
    typer.echo(text, nl=False)


class PlanFormat(str, enum.Enum):
    table = "table"
    json = "json"


@app.command("plan")
def plan_command(
    profile: ProfileOpt,
    out: OutOpt = Path("out"),
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    crd_schemas: CrdOpt = None,
    output_format: Annotated[
        PlanFormat, typer.Option("--format", help="table (for people) or json (for programs).")
    ] = PlanFormat.table,
) -> None:
    """Show what applying a new render would do to the running cluster; write nothing.

    Compares the output's state (state/<profile>.json, which `render` writes) with a fresh
    render and classifies each changed object: added, removed, in-place, rollout (its pods are
    replaced), recreate (a field Kubernetes refuses to change: delete it, then sync), or
    data-at-risk (what holds persistent data is deleted or recreated, or a volume shrinks).
    Exit 0 when nothing must be recreated, 3 when something must, 4 when data is at risk.

    Example: imageflow-gen plan --profile prod --out out
    """
    from .changes import EXIT_DATA_AT_RISK, EXIT_RECREATE, changes_of, state_path, worst
    from .pipeline import build

    crds, out = _crds(crd_schemas), _out(out, profiles_dir)
    result = _run(lambda: build(profiles_dir, profile, crds), f"in profile {profile!r}")
    _warn(result.warnings)
    changes = _run(lambda: changes_of(out, profile, result.files), f"reading {out}")
    if not (out / state_path(profile)).exists():
        _echo_err(
            f"imageflow-gen: {out / state_path(profile)} does not exist (no render of {profile!r} there, or one by "
            "an earlier imageflow-gen): every object is shown as added"
        )
    severest = worst(changes)
    if output_format is PlanFormat.json:
        rows = [{"object": c.key, "change": c.category, "detail": c.detail, "fields": list(c.fields)} for c in changes]
        typer.echo(json.dumps({"profile": profile, "worst": severest, "changes": rows}, indent=2))
    else:
        width = max((len(c.category) for c in changes), default=0)
        for c in changes:
            typer.echo(f"{c.category:<{width}}  {c.key}" + (f"  ({c.detail})" if c.detail else ""))
        counts: dict[str, int] = {}
        for c in changes:
            counts[c.category] = counts.get(c.category, 0) + 1
        summary = ", ".join(f"{n} {category}" for category, n in sorted(counts.items())) or "no change"
        typer.echo(f"profile {profile}: {summary} against {out}")
    if severest == "data-at-risk":
        raise typer.Exit(EXIT_DATA_AT_RISK)
    if severest == "recreate":
        raise typer.Exit(EXIT_RECREATE)


@app.command()
def validate(
    profile: ProfileOpt,
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    crd_schemas: CrdOpt = None,
    tools: Annotated[
        bool,
        typer.Option(
            help="Also run kubectl kustomize, kubeconform, helm lint and the compose schema where they are installed."
        ),
    ] = True,
    api_server: Annotated[
        str | None,
        typer.Option(
            "--api-server",
            metavar="local|kubeconfig[:CONTEXT]",
            help=(
                "Also apply every object with a server-side dry run: 'local' starts a throwaway "
                "kube-apiserver and etcd (make tools builds them) and stops them after; "
                "'kubeconfig[:CONTEXT]' uses your cluster through kubectl proxy, dry-run only: "
                "nothing is created or changed there. Needs the tools."
            ),
        ),
    ] = None,
) -> None:
    """Check a profile and everything it would render, writing nothing.

    The built-in gates always run: every file parses, every Kubernetes object matches the
    strict schema of the cluster's version, custom resources the schemas of the CRDs shipped
    with the tool (--crd-schemas adds folders searched first). With --tools (the default), the
    real tools run too, on a temporary copy of the output. --api-server adds a real API
    server's verdict on every object (validation code, CEL rules, Pod Security admission).

    Example: imageflow-gen validate --profile prod --api-server local
    """
    from .pipeline import build

    crds = _crds(crd_schemas)
    server = _api_server_choice(api_server, tools)
    result = _run(lambda: build(profiles_dir, profile, crds, reparse=True), f"in profile {profile!r}")
    _warn(result.warnings)
    if tools:
        _run(lambda: _external_gates(result, crds, server), f"in the output of profile {profile!r}")
    _say(f"profile {profile}: {status('valid')} ({len(result.files)} files)")


def _api_server_choice(value: str | None, tools: bool) -> tuple[str, str | None] | None:
    """('local', None) or ('kubeconfig', CONTEXT or None), checked before anything runs."""
    if value is None:
        return None
    if not tools:
        raise typer.BadParameter("needs the tools (drop --no-tools)", param_hint="--api-server")
    kind, _, context = value.partition(":")
    if kind == "local" and not context:
        return ("local", None)
    if kind == "kubeconfig":
        return ("kubeconfig", context or None)
    raise typer.BadParameter(f"{value!r} is not local or kubeconfig[:CONTEXT]", param_hint="--api-server")


def _external_gates(result: Any, crds: list[Path], server: tuple[str, str | None] | None = None) -> None:
    import contextlib
    import tempfile

    from .errors import ValidationFailed
    from .validate.tools import run_all
    from .writing import write

    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="imageflow-validate-") as tmp, contextlib.ExitStack() as stack:
        write(Path(tmp), result.profile, result.files)
        try:
            api = None
            if server is not None:
                progress("starting the API server" if server[0] == "local" else "kubectl proxy")
                api = (stack.enter_context(_api_client(server)), server[0] == "local")
            outcomes = run_all(Path(tmp), result.profile, result.kubernetes_minor, crds, result.objects, progress, api)
        finally:
            progress.done()
    for outcome in outcomes:
        state = (
            f"{status('skipped')} ({outcome.skipped})"
            if outcome.skipped
            else (status("failed") if outcome.errors else status("ok"))
        )
        _say(f"{outcome.tool}: {state}" + (f" ({outcome.summary})" if outcome.summary else ""))
    _warn([p for outcome in outcomes for p in outcome.problems if p.severity == "warning"])
    problems = [p for outcome in outcomes for p in outcome.errors]
    if problems:
        raise ValidationFailed(problems)


def _api_client(server: tuple[str, str | None]) -> Any:
    """A context manager giving the ApiClient of the chosen server."""
    import contextlib

    from .resources import upstream_crds
    from .validate.apiserver import LocalApiServer, kubeconfig_proxy
    from .validate.tools import find

    kind, context = server
    if kind == "kubeconfig":
        kubectl = find("kubectl")
        if kubectl is None:
            raise UsageError(
                [Problem(Location("--api-server"), "", "kubectl is not installed (make tools installs it)")]
            )
        return kubeconfig_proxy(kubectl, context)
    binaries = _installed(("etcd", "kube-apiserver", "kube-pki"), "--api-server")

    @contextlib.contextmanager
    def local() -> Any:
        with LocalApiServer(binaries, upstream_crds()) as server:
            yield server.client

    return local()


def _installed(names: tuple[str, ...], where: str) -> dict[str, str]:
    """name -> path of each tool `make tools` builds; a usage error naming the missing ones."""
    from .validate.tools import find

    found = {name: find(name) for name in names}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        raise UsageError([Problem(Location(where), "", f"{', '.join(missing)} not installed (make tools builds them)")])
    return {name: path for name, path in found.items() if path is not None}


def _out(out: Path, profiles_dir: Path) -> Path:
    """The output directory; never the file system's root or the profiles' own directory."""
    resolved = out.resolve()
    if resolved == Path(resolved.anchor) or resolved == profiles_dir.resolve():
        raise typer.BadParameter(f"refusing to write into {out}: choose a directory of its own", param_hint="--out")
    return out


def _crds(paths: list[Path] | None) -> list[Path]:
    """The CRD schema folders given (each must exist) ahead of the shipped ones."""
    from .resources import crd_locations

    missing = [p for p in paths or [] if not p.is_dir()]
    if missing:
        raise typer.BadParameter(f"no such folder: {', '.join(map(str, missing))}", param_hint="--crd-schemas")
    return crd_locations(paths)


@app.command()
def profiles(profiles_dir: ProfilesDirOpt = Path("profiles")) -> None:
    """List the profiles, each with its one-line purpose.

    Example: imageflow-gen profiles
    """
    from .loading import list_profiles, read_file

    def purposes() -> list[tuple[str, str]]:
        if not profiles_dir.is_dir():
            raise UsageError([Problem(Location(str(profiles_dir)), "", "no such profiles directory")])
        rows = []
        for name in list_profiles(profiles_dir):
            tree = read_file(profiles_dir / f"{name}.yaml", str(profiles_dir / f"{name}.yaml"))
            purpose = tree.value.get("purpose")
            rows.append((name, purpose.value if purpose is not None else "(no purpose given)"))
        return rows

    rows = _run(purposes, f"in {profiles_dir}")
    width = max((len(name) for name, _ in rows), default=0)
    for name, purpose in rows:
        typer.echo(f"{name:<{width}}  {purpose}")


@app.command()
def schema(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write the schemas.", file_okay=False)] = Path(
        "schemas"
    ),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if a schema file is stale.")] = False,
) -> None:
    """Write the JSON schemas of the topology and of a profile file, generated from the model.

    Example: imageflow-gen schema --out-dir schemas
    """
    from .schema import files
    from .writing import put_files

    wanted = {out_dir / name: text for name, text in files().items()}
    stale = {
        target: text
        for target, text in wanted.items()
        if not target.is_file() or target.read_text(encoding="utf-8") != text
    }
    if not check:
        _run(lambda: put_files(stale), f"writing {out_dir}")
        for target in stale:
            typer.echo(f"wrote {target}")
    if check and stale:
        for target in stale:
            _echo_err(f"{target}: stale; run `imageflow-gen schema`")
        raise typer.Exit(1)


@app.command()
def graph(
    profile: ProfileOpt,
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="mermaid (Git hosts render it) or dot (Graphviz).", case_sensitive=False),
    ] = "mermaid",
) -> None:
    """Print the topology as a diagram: VMs, namespaces, workloads, Kafka, buckets, allowed flows.

    Solid edges are the flows the NetworkPolicies allow; dashed edges are traffic outside
    the cluster (Internet to the edge VM, the VPN to Kafka). A denied flow has no edge.

    Example: imageflow-gen graph --profile prod --format dot | dot -Tsvg > prod.svg
    """
    from .graph import FORMATS, build_graph, write
    from .pipeline import validated

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    _, _, plan = _run(lambda: validated(profiles_dir, profile), f"in profile {profile!r}")
    from .targets.kubernetes import objects
    from .validate.paths import path_problems

    typer.echo(write(build_graph(plan, path_problems(objects(plan))), fmt), nl=False)


@app.command()
def capacity(profile: ProfileOpt, profiles_dir: ProfilesDirOpt = Path("profiles")) -> None:
    """Print what the workloads request against what the nodes and VMs have, and the VMs' cost.

    One row per node group (the nodes a workload may run on), the cluster, each node (its
    local PersistentVolumes against its storage) and each VM with a compose stack (the
    stack's limits); for a workload that must survive a node's loss (availability:
    node-loss), its nodes less each one in turn (n-1). Exit 1 when something is over
    capacity; above 80% is a warning.

    Example: imageflow-gen capacity --profile prod
    """
    from .capacity import table
    from .pipeline import capacity_report

    loaded, result = _run(lambda: capacity_report(profiles_dir, profile), f"in profile {profile!r}")
    typer.echo(table(result), nl=False)
    for finding in result.findings:
        problem = loaded.problem(finding.path, finding.message)
        level = paint(f"{finding.level}:", "red" if finding.level == "error" else "yellow", sys.stderr)
        _echo_err(f"{level} {problem}")
    if result.errors:
        raise typer.Exit(1)


@app.command()
def simulate(
    profile: ProfileOpt,
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    fail_node: Annotated[
        str | None,
        typer.Option(
            "--fail-node", metavar="NODE", help="Then stop this node: what becomes unavailable, what cannot move."
        ),
    ] = None,
    drain: Annotated[
        str | None,
        typer.Option("--drain", metavar="NODE", help="Then drain this node, honouring disruption budgets."),
    ] = None,
    kubectl_apply: Annotated[
        bool,
        typer.Option(
            "--kubectl-apply",
            help="Apply everything at once in the overlay's order, as `kubectl apply -k` does, "
            "instead of wave by wave as Argo CD does.",
        ),
    ] = False,
    crd_schemas: CrdOpt = None,
) -> None:
    """Deploy a profile's output to a simulated cluster and report what becomes ready.

    A real kube-apiserver, kube-controller-manager and kube-scheduler (the cluster's Kubernetes
    release) run on this machine with kwok acting as the kubelet of fake nodes shaped like the
    profile's (names, addresses, labels, taints, capacity), plus what K3s provides (its
    add-ons, the StorageClasses the profile says the cluster has). The rendered overlay is
    applied in Argo CD's sync-wave order; then every workload is reported: where it was
    scheduled, ready or not, and why not in the scheduler's or controller's words; every
    claim, every Service's endpoints, every disruption budget and autoscaler.

    --fail-node and --drain then take one node away and report what becomes unavailable,
    compared with the single points of failure the generated README lists. Exit 1 when
    anything is not ready, any create was refused (even if a retry succeeded later), or a
    drill's impact differs from the README. Everything started
    is stopped on exit. Needs the tools (make tools builds them).

    Example: imageflow-gen simulate --profile prod --fail-node k3s-worker-01
    """
    from .pipeline import build

    if fail_node and drain:
        raise typer.BadParameter("give --fail-node or --drain, not both", param_hint="--drain")
    crds = _crds(crd_schemas)
    result = _run(lambda: build(profiles_dir, profile, crds), f"in profile {profile!r}")
    node = fail_node or drain
    names = [n.name for n in result.topology.cluster.nodes]
    if node is not None and node not in names:
        option = "--fail-node" if fail_node else "--drain"
        raise typer.BadParameter(f"{node!r} is not a node of profile {profile}: {', '.join(names)}", param_hint=option)
    outcome = _run(
        lambda: _simulate(result, "fail" if fail_node else "drain", node, kubectl_apply),
        f"simulating profile {profile!r}",
    )
    from .simulate.report import text

    typer.echo(text(outcome, profile), nl=False)
    if not outcome.ok:
        raise typer.Exit(1)


def _simulate(result: Any, action: str, node: str | None, at_once: bool = False) -> Any:
    import tempfile

    from .resources import upstream_crds
    from .simulate import Drill, run
    from .simulate.cluster import BINARIES
    from .validate.tools import kustomize_build
    from .writing import write
    from .yamlio import parse_all

    binaries = _installed((*BINARIES, "kubectl"), "simulate")
    progress = Progress()
    try:
        with tempfile.TemporaryDirectory(prefix="imageflow-simulate-") as tmp:
            write(Path(tmp), result.profile, result.files)
            built, text = kustomize_build(Path(tmp), f"kustomize/overlays/{result.profile}")
            if built.errors:
                from .errors import ValidationFailed

                raise ValidationFailed(built.errors)
        docs = [d for d in parse_all(text) if isinstance(d, dict)]
        outcome = run(
            binaries,
            upstream_crds(),
            result.plan,
            docs,
            Drill(action, node) if node else None,
            progress,
            at_once,
        )
    finally:
        progress.done()
    return outcome


_MODELINE = "# yaml-language-server: $schema="


def _with_modeline(text: str, schema: str) -> str:
    """A shipped profile's text with its schema modeline pointing at `schema`."""
    first, newline, rest = text.partition("\n")
    return f"{_MODELINE}{schema}{newline}{rest}" if first.startswith(_MODELINE) else text


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="Name of the new profile (its file is NAME.yaml).", show_default=False)],
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    extends: Annotated[str, typer.Option("--extends", help="The profile it extends.")] = "base",
    purpose: Annotated[str, typer.Option("--purpose", help="Its one-line purpose.")] = "",
) -> None:
    """Create profiles/NAME.yaml: extends a profile, with comments and the schema modeline.

    The new file validates as written; it refuses to overwrite an existing profile. A parent
    the profiles folder lacks (and its own parents) is copied there from the profiles shipped
    with the tool, so init works in an empty folder.

    Example: imageflow-gen init staging-eu --extends staging
    """
    from .loading import load_profile, missing_ancestors, profile_path
    from .rendering import render as render_template
    from .resources import PROFILE_FILE, data_dir
    from .modelling import topology
    from .writing import put_files

    def scaffold() -> list[Path]:
        target = profile_path(profiles_dir, name)
        parent = profile_path(profiles_dir, extends)
        if target.exists():
            raise UsageError([Problem(Location(str(target)), "", "already exists; init never overwrites a profile")])
        # A parent the folder lacks comes from the profiles shipped with the tool, with its own
        # ancestors: `init` in an empty folder gives a profile that renders.
        ancestors = missing_ancestors(profiles_dir, extends, data_dir("profiles"))
        if not parent.is_file() and not ancestors:
            raise UsageError(
                [
                    Problem(
                        Location(str(parent)),
                        "extends",
                        f"no profile {extends!r} to extend; `imageflow-gen profiles` lists them",
                    )
                ]
            )
        schema = os.path.relpath(data_dir("schemas") / PROFILE_FILE, profiles_dir.resolve())
        texts = {
            profiles_dir / shipped.name: _with_modeline(shipped.read_text(encoding="utf-8"), schema)
            for shipped in ancestors
        }
        texts[target] = render_template(
            "init/profile.yaml.j2",
            name=name,
            parent=extends,
            schema_path=schema,
            purpose=purpose or f"{name}: based on {extends}",
        )
        put_files(texts, create=True)
        try:
            topology(load_profile(profiles_dir, name))  # it must validate as written
        except BaseException:
            for path in texts:
                path.unlink(missing_ok=True)
            raise
        return list(texts)

    for path in _run(scaffold, f"creating profile {name!r}; nothing written"):
        _say(f"{status('created')} {path}")
    typer.echo(
        f"next: imageflow-gen validate --profile {name}"
        + (f" --profiles-dir {profiles_dir}" if profiles_dir != Path("profiles") else "")
    )


@app.command()
def explain(
    key: Annotated[
        str | None,
        typer.Argument(
            help="A dotted topology key, e.g. storage.minio.buckets (an unambiguous tail such as minio.buckets works).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Describe a topology key: its type, default, allowed values, description and fields.

    Like `kubectl explain`, from the same schema validation uses. Without a key, lists the
    top-level keys.

    Example: imageflow-gen explain minio.buckets
    """
    from .explain import explain as describe
    from .explain import lookup, overview

    if key is None:
        typer.echo(overview(), nl=False)
        return
    field, candidates = lookup(key)
    if field is None:
        hint = (
            "; did you mean: " + ", ".join(candidates[:8]) + (" ..." if len(candidates) > 8 else "")
            if candidates
            else "; `imageflow-gen explain` lists the top-level keys"
        )
        _echo_err(f"imageflow-gen: no key {key!r} in the topology{hint}")
        raise typer.Exit(2)
    typer.echo(describe(field), nl=False)


def main() -> None:
    """Console-script entry point."""
    # A command runs once and exits. A render builds millions of objects that live until then
    # (the model, the plan, the parsed objects) and few reference cycles; at CPython's default
    # thresholds a full collection walks all of them each time they grow by a quarter: 5 s of a
    # 37-second render at 2,000 services, 13 s of 70 at 4,000 (bench/README). Young objects are
    # collected in larger batches instead, for 4 MiB more at the peak.
    gc.set_threshold(50_000, 20, 100)
    app(prog_name="imageflow-gen")


if __name__ == "__main__":  # pragma: no cover
    main()
