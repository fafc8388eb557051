"""imageflow-gen against the tools users would run instead, on the same work in the same run.

    python bench/bench.py                 the full table (make bench)
    python bench/bench.py --sizes 500 --runs 1   a smoke run (make test runs this)

Prints median, min and max of several runs of:
 1. cold `imageflow-gen render --profile prod` against `helm template` + `kubectl kustomize`
    on the output it produced, run by run in turn (interleaved): into its own up-to-date output
    (what every CI job and pre-commit hook does) and into an empty folder (the full work); then
    `imageflow-gen --help` and `validate --profile prod --no-tools` on their own;
 2. synthetic topologies (bench/gen_topology.py): render (built-in validation included)
    against helm template + kubectl kustomize + kubeconform on the result; wall time, peak
    memory, growth per doubling;
 3. built-in schema validation throughput against kubeconform on the same objects;
 4. a re-render with nothing changed: files written, and time;
 5. with --simulate (make bench): `simulate --profile prod`, plain and with a node drill, wall
    time and the peak memory of its largest process (etcd, the control plane, kwok or us).
Tools come from IMAGEFLOW_TOOLS (make tools puts them in .tools/bin).

Then each goal of bench/README.md is judged on what was measured; the exit code is 1 when a
measured figure misses its goal (--no-goals reports without judging: the smoke test in `make
test` runs beside the other tests on a loaded machine).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from gen_topology import write as write_topology  # noqa: E402

# The synthetic sizes of a full run. The largest must stay under the loader's 100,000 values
# (loading.MAX_VALUES; about 23 a service): tests/test_bench.py loads each.
SIZES = (500, 2000, 4000)

# The CRD schemas shipped with the tool: what `render` uses when no --crd-schemas is given.
CRDS = REPO / "schemas" / "crds"


def tool(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("IMAGEFLOW_TOOLS", ""), os.environ["PATH"]]))
    if not found:
        sys.exit(f"bench: {name} not found; run `make tools`")
    return found


class TimedOut(Exception):
    """A tool ran past the benchmark's time limit and was stopped."""


def run(
    argv: list[str], cwd: Path | None = None, stdin: bytes | None = None, timeout: float | None = None
) -> tuple[float, int, bytes]:
    """Wall seconds, peak resident memory (MiB) and stdout of one process (reaped with wait4).

    With `timeout`, a process still running after that many seconds is killed and TimedOut
    raised (polled every 50 ms; without a timeout the wait is exact).
    """
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        if stdin:
            fin.write(stdin)
            fin.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=fin, stdout=fout, stderr=ferr)
        if timeout is None:
            _, status, usage = os.wait4(proc.pid, 0)
        else:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - start > timeout:
                    proc.kill()
                    os.wait4(proc.pid, 0)
                    raise TimedOut(f"{Path(argv[0]).name} {argv[1]} stopped after {timeout:.0f} s")
                time.sleep(0.05)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    if proc.returncode:
        sys.exit(
            f"bench: {' '.join(argv[:4])} failed with exit code {proc.returncode}: {(err or out).decode()[-2000:]}"
        )
    return elapsed, round(usage.ru_maxrss / 1024), out


def gen(profiles: Path, profile: str, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "imageflow_gen",
        "render",
        "--profile",
        profile,
        "--profiles-dir",
        str(profiles),
        "--out",
        str(out),
        "--quiet",
    ]


def tools_on(out: Path, profile: str, minor: str, kubeconform: bool, limit: float | None = None) -> tuple[float, int]:
    """helm template + kubectl kustomize (+ kubeconform on both) over a rendered output.

    With `limit`, the tools together get that many seconds; past it the result is infinite.
    """
    total, peak = 0.0, 0

    def timed(argv: list[str]) -> bytes:
        nonlocal total, peak
        t, m, text = run(argv, timeout=None if limit is None else max(limit - total, 1.0))
        total, peak = total + t, max(peak, m)
        return text

    try:
        chart = timed([tool("helm"), "template", "imageflow", str(out / f"helm/{profile}")])
        built = timed([tool("kubectl"), "kustomize", str(out / f"kustomize/overlays/{profile}")])
        if kubeconform:
            for name, text in (("chart.yaml", chart), ("built.yaml", built)):
                (out / name).write_bytes(text)  # a file: kubeconform's stdin reading is racy (see README)
                timed(kubeconform_argv(minor) + [str(out / name)])
    except TimedOut as stopped:
        print(f"   ({stopped})", flush=True)
        return math.inf, peak
    return total, peak


def kubeconform_argv(minor: str) -> list[str]:
    return [
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-kubernetes-version",
        f"{minor}.0",
        "-schema-location",
        str(REPO / ".tools/kubernetes-schemas")
        + "/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json",
        "-schema-location",
        f"{CRDS}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
    ]


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}"


def row(label: str, ours: list[float], theirs: list[float], extra: str = "", limit: float | None = None) -> str:
    if math.isinf(statistics.median(theirs)) and limit:
        # The tools were stopped at the limit: the ratio is at most ours / limit.
        return (
            f"{label:<40} {stats(ours)} | {'>' + format(limit, '.0f'):>8} {'':>8} {'':>8} | "
            f"<{statistics.median(ours) / limit:5.2f}x {extra}"
        )
    ratio = statistics.median(ours) / statistics.median(theirs)
    return f"{label:<40} {stats(ours)} | {stats(theirs)} | {ratio:6.2f}x {extra}"


HEADER = (
    f"{'':<40} {'imageflow-gen (s)':^26} | {'helm+kustomize[+kubeconform] (s)':^26} | ratio\n"
    f"{'':<40} {'median':>8} {'min':>8} {'max':>8} | {'median':>8} {'min':>8} {'max':>8} |"
)


# What the goals are judged on: figure name -> the measured value (filled as the rows run).
MEASURED: dict[str, float] = {}


@dataclass(frozen=True)
class Goal:
    figure: str
    label: str
    at_most: float | None = None
    at_least: float | None = None
    unit: str = "x"

    def verdict(self, value: float | None) -> tuple[str, bool]:
        """(the target line, whether the goal is missed); a figure not measured misses nothing."""
        limit = f"<= {self.at_most:g}" if self.at_most is not None else f">= {self.at_least:g}"
        goal = f"{self.label:<44} {limit + self.unit:>14}"
        if value is None:
            return f"{goal}  {'':>10}  not measured", False
        missed = (self.at_most is not None and value > self.at_most) or (
            self.at_least is not None and value < self.at_least
        )
        return f"{goal}  {format(value, '.2f' if self.unit == 'x' else '.0f') + self.unit:>10}  " + (
            "MISSED" if missed else "met"
        ), missed


# bench/README.md's targets.
GOALS = (
    Goal("prod_uptodate", "cold render prod, output up to date", at_most=1.0),
    Goal("ratio_2000", "2000 services render+validate", at_most=0.15),
    Goal("peak_2000", "2000 services peak memory", at_most=300, unit=" MiB"),
    Goal("growth", "growth per doubling (largest)", at_most=2.1),
    Goal("throughput", "validation throughput against kubeconform", at_least=1.0),
    Goal("rerender_written", "files written by an unchanged re-render", at_most=0, unit=" files"),
)


def judge(measured: dict[str, float]) -> tuple[list[str], bool]:
    """The target lines, and whether any goal was missed."""
    lines, missed = ["targets:"], False
    for goal in GOALS:
        line, miss = goal.verdict(measured.get(goal.figure))
        lines.append("  " + line)
        missed = missed or miss
    return lines, missed


def bench_prod(runs: int, work: Path) -> list[str]:
    """Cold renders of prod against the tools on the same output, run by run in turn."""
    uptodate, full, theirs = [], [], []
    current = work / "prod-current"
    run(gen(REPO / "profiles", "prod", current))  # the output every later run finds up to date
    for i in range(runs):
        uptodate.append(run(gen(REPO / "profiles", "prod", current))[0])
        theirs.append(tools_on(current, "prod", "1.28", kubeconform=False)[0])
        full.append(run(gen(REPO / "profiles", "prod", work / f"prod-{i}"))[0])
    MEASURED["prod_uptodate"] = statistics.median(uptodate) / statistics.median(theirs)
    helps = [run([sys.executable, "-m", "imageflow_gen", "--help"])[0] for _ in range(runs)]
    validate = [
        run([sys.executable, "-m", "imageflow_gen", "validate", "--profile", "prod", "--no-tools"], cwd=REPO)[0]
        for _ in range(runs)
    ]
    return [
        row("1. cold render prod, output up to date", uptodate, theirs),
        row("1. cold render prod, empty output", full, theirs),
        f"{'1. imageflow-gen --help':<40} {stats(helps)}",
        f"{'1. validate --profile prod --no-tools':<40} {stats(validate)}",
    ]


def bench_synthetic(sizes: list[int], runs: int, work: Path, once_after: float, limit: float) -> list[str]:
    """One row per size (printed as it completes), then the growth per doubling.

    Each side runs `runs` times, except that a side whose first run took longer than
    `once_after` seconds (here kubectl kustomize from 2,000 services) is not repeated: a run
    of minutes averages the machine's noise by itself.
    """
    lines, medians = [], {}
    profiles = work / "profiles"
    for size in sizes:
        name = write_topology(size, profiles).stem
        ours, theirs, our_peak, their_peak = [], [], 0, 0
        for i in range(runs):
            again_ours = not ours or ours[0] <= once_after
            again_theirs = not theirs or theirs[0] <= once_after
            if not (again_ours or again_theirs):
                break
            if again_ours:
                t, m, _ = run(gen(profiles, name, work / f"{name}-{i}"))
                ours.append(t)
                our_peak = max(our_peak, m)
            if again_theirs:
                t, m = tools_on(work / f"{name}-{len(ours) - 1}", name, "1.28", kubeconform=True, limit=limit)
                theirs.append(t)
                their_peak = max(their_peak, m)
        medians[size] = statistics.median(ours)
        if size == 2000:
            MEASURED["ratio_2000"] = statistics.median(ours) / statistics.median(theirs)
            MEASURED["peak_2000"] = our_peak
        print(
            row(
                f"2. {size} services render+validate",
                ours,
                theirs,
                f"peak {our_peak} MiB vs {their_peak} MiB ({runs_label(len(ours), len(theirs))})",
                limit,
            ),
            flush=True,
        )
    ordered = sorted(medians)
    for a, b in itertools.pairwise(ordered):
        growth = (medians[b] / medians[a]) ** (1 / math.log2(b / a))
        MEASURED["growth"] = growth
        lines.append(f"   growth per doubling {a} -> {b}: {growth:.2f}x")
    return lines


def runs_label(ours: int, theirs: int) -> str:
    """The row's run count: `3 runs`, or `3 runs, tools 1` when the tools ran fewer times."""
    label = f"{ours} run{'s' if ours > 1 else ''}"
    return label if ours == theirs else f"{label}, tools {theirs}"


def bench_throughput(size: int, runs: int, work: Path) -> list[str]:
    """Objects per second: the built-in schema gate against kubeconform, on the same objects."""
    import yaml

    from imageflow_gen.validate.kubernetes import SchemaStore

    out = work / f"synthetic-{size}-0"
    # The synthetic row's first run left kubectl kustomize's output there (unless the tools were
    # stopped before it was complete); building it again would cost minutes for the same bytes.
    built_file = out / "built.yaml"
    if built_file.exists():
        built = built_file.read_bytes()
    else:
        _, _, built = run([tool("kubectl"), "kustomize", str(out / f"kustomize/overlays/synthetic-{size}")])
        built_file.write_bytes(built)
    docs = [d for d in yaml.safe_load_all(built) if d]
    ours, theirs = [], []
    for _ in range(runs):
        store = SchemaStore("1.28", [CRDS])
        start = time.perf_counter()
        problems = [e for d in docs for e in store.check(d)]
        ours.append(len(docs) / (time.perf_counter() - start))
        assert not problems, problems[:3]
        t, _, _ = run(kubeconform_argv("1.28") + [str(built_file)])
        theirs.append(len(docs) / t)
    ratio = statistics.median(ours) / statistics.median(theirs)
    MEASURED["throughput"] = ratio
    return [
        f"{f'3. validation, {len(docs)} objects (obj/s)':<40} {stats(ours)} | {stats(theirs)} | {ratio:6.2f}x "
        "(higher is better)"
    ]


def bench_rerender(runs: int, work: Path) -> list[str]:
    out = work / "prod-0"
    times, written = [], []
    for _ in range(runs):
        t, _, stdout = run(gen(REPO / "profiles", "prod", out)[:-1])
        times.append(t)
        summary = stdout.decode().strip().splitlines()[-1]
        counts = [int(word) for word in summary.replace(",", "").split() if word.isdigit()]
        written.append(counts[0] + counts[1] + counts[3])  # created, changed, removed
    MEASURED["rerender_written"] = max(written)
    return [f"{'4. re-render prod, nothing changed':<40} {stats(times)} | files written: {max(written)}"]


def bench_simulate(runs: int) -> list[str]:
    rows = []
    for label, extra in (("5. simulate prod", []), ("5. simulate prod --fail-node", ["--fail-node", "k3s-worker-01"])):
        times, peaks = [], []
        for _ in range(runs):
            argv = [sys.executable, "-m", "imageflow_gen", "simulate", "--profile", "prod", *extra]
            t, peak, _ = run(argv, cwd=REPO)
            times.append(t)
            peaks.append(peak)
        rows.append(f"{label:<40} {stats(times)} | peak {max(peaks)} MiB (largest process)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--once-after",
        type=float,
        default=120,
        help="seconds: a side of a synthetic row whose first run took longer is not repeated "
        "(kubectl kustomize takes 10 to 12 minutes at 2,000 services here)",
    )
    parser.add_argument(
        "--tools-limit",
        type=float,
        default=900,
        help="seconds the tools get per synthetic run; past it they are stopped and the "
        "ratio is reported as an upper bound (kubectl kustomize ran over 30 minutes "
        "at 8,000 services here, and grows with the square of the objects)",
    )
    parser.add_argument(
        "--simulate", action="store_true", help="also time `simulate --profile prod` (about a minute a run)"
    )
    parser.add_argument("--no-goals", action="store_true", help="report the targets without failing on a miss")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imageflow-bench-") as tmp:
        work = Path(tmp)
        print(HEADER, flush=True)
        steps = (
            lambda: bench_prod(args.runs, work),
            lambda: bench_synthetic(args.sizes, args.runs, work, args.once_after, args.tools_limit),
            lambda: bench_throughput(args.sizes[min(1, len(args.sizes) - 1)], args.runs, work),
            lambda: bench_rerender(args.runs, work),
            *([lambda: bench_simulate(args.runs)] if args.simulate else []),
        )
        for step in steps:
            print("\n".join(step()), flush=True)
    print(f"\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, runs per cell: {args.runs}")
    lines, missed = judge(MEASURED)
    print("\n".join(lines))
    if missed and not args.no_goals:
        sys.exit("bench: a target was missed")


if __name__ == "__main__":
    main()
