"""A cold start does only what its command needs: imports per command, templates compiled
into the package, the model's validators and descriptions not built at import; and a large
topology is planned without copies: derivations once per object, shared values and strings.

Speed itself is measured by `make bench` (bench/README.md); these tests hold the mechanisms.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from imageflow_gen.rendering import PRECOMPILED, _environment, _Precompiled

# The CLI, reporting at exit which of these modules it imported and how many templates Jinja
# compiled from their source.
PROBE = """
import atexit, sys
import jinja2
compiled = []
original = jinja2.Environment.compile
def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
    compiled.append(name)
    return original(self, source, name, filename, raw, defer_init)
jinja2.Environment.compile = counting
del sys.modules["jinja2"]  # imported again only if the command needs it (the patch stays)
watched = ("jinja2", "ruamel.yaml", "yaml", "jsonschema", "imageflow_gen.model", "imageflow_gen.plan",
           "imageflow_gen.loading")
atexit.register(lambda: sys.stderr.write(
    "IMPORTED " + " ".join(m for m in watched if m in sys.modules) + f"\\nCOMPILED {len(compiled)}\\n"))
if sys.argv[1]:  # a folder of compiled templates instead of the package's
    import pathlib
    import imageflow_gen.rendering
    imageflow_gen.rendering.PRECOMPILED = pathlib.Path(sys.argv[1])
from imageflow_gen.cli import main
sys.argv = ["imageflow-gen", *sys.argv[2:]]
main()
"""


def probe(*args: str, precompiled: str = "") -> tuple[int, set[str], int]:
    """(exit code, the watched modules imported, templates compiled) of one CLI run."""
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, precompiled, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    lines = result.stderr.splitlines()
    imported = next(line for line in lines if line.startswith("IMPORTED")).split()[1:]
    compiled = int(next(line for line in lines if line.startswith("COMPILED")).split()[1])
    return result.returncode, set(imported), compiled


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (("--help",), set()),
        (("render", "--help"), set()),
        (("explain", "storage.minio.buckets"), set()),  # from the shipped schema, not the model
        (("profiles",), {"ruamel.yaml", "imageflow_gen.loading"}),  # reads each profile's purpose
    ],
)
def test_each_command_imports_only_what_it_uses(args: tuple[str, ...], allowed: set[str]) -> None:
    code, imported, _ = probe(*args)
    assert code == 0 and imported <= allowed, imported - allowed


def test_a_full_render_compiles_no_template(tmp_path: Path) -> None:
    code, imported, compiled = probe("render", "--profile", "dev", "--out", str(tmp_path / "out"), "-q")
    assert code == 0 and "jinja2" in imported
    assert compiled == 0, "the package's compiled templates were not used"


def test_the_package_carries_every_template_compiled() -> None:
    templates = sorted(p.relative_to(REPO / "templates").as_posix() for p in (REPO / "templates").rglob("*.j2"))
    keys = {_Precompiled(PRECOMPILED).get_cache_key(name) for name in templates}
    assert {p.stem for p in PRECOMPILED.glob("*.cache")} == keys


def test_an_edited_template_is_compiled_from_its_source_and_the_others_are_not(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    edited = templates / "helm/Chart.yaml.j2"
    edited.write_text(edited.read_text() + "# edited\n")
    env = _environment(templates, _Precompiled(PRECOMPILED))
    compiled: list[str | None] = []
    original = env.compile
    env.compile = lambda source, name=None, *rest: compiled.append(name) or original(source, name, *rest)  # type: ignore[method-assign]
    text = env.get_template("helm/Chart.yaml.j2").render(version="0.1.0", kube_minor="1.28")
    env.get_template("kubernetes/deployment.yaml.j2")
    assert text.endswith("# edited\n") and compiled == ["helm/Chart.yaml.j2"]


def test_a_damaged_compiled_template_is_compiled_from_its_source(tmp_path: Path) -> None:
    name = "helm/Chart.yaml.j2"
    damaged = tmp_path / "damaged"
    shutil.copytree(PRECOMPILED, damaged)
    entry = damaged / f"{_Precompiled(damaged).get_cache_key(name)}.cache"
    entry.write_bytes(entry.read_bytes()[:-40])  # header and checksum intact, the code cut short
    env = _environment(REPO / "templates", _Precompiled(damaged))
    assert "name: imageflow" in env.get_template(name).render(version="0.1.0", kube_minor="1.28")


def test_without_the_compiled_templates_a_render_only_takes_longer(tmp_path: Path) -> None:
    outputs = []
    for folder in (str(PRECOMPILED), str(tmp_path / "missing")):
        out = tmp_path / f"out-{len(outputs)}"
        code, _, compiled = probe("render", "--profile", "dev", "--out", str(out), "-q", precompiled=folder)
        assert code == 0
        outputs.append((compiled > 0, {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}))
    assert [c for c, _ in outputs] == [False, True] and outputs[0][1] == outputs[1][1]


def test_the_model_builds_its_validators_when_first_used_not_at_import() -> None:
    script = (
        "import imageflow_gen.model as m\n"
        "print(m.Topology.__pydantic_complete__, type(m.Topology.__pydantic_validator__).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "MockValSer"], result.stdout


def test_a_derivation_per_object_is_computed_once_for_each_and_forgotten_with_it() -> None:
    import gc

    from imageflow_gen.shared import once_per_object

    calls: list[int] = []

    class Plan:
        def __init__(self, n: int) -> None:
            self.n = n

    @once_per_object
    def derived(plan: Plan) -> list[int]:
        calls.append(plan.n)
        return [plan.n]

    first, second = Plan(1), Plan(2)
    assert derived(first) is derived(first) and derived(second) == [2] and calls == [1, 2]
    del first
    gc.collect()
    third = Plan(3)  # may reuse the first one's id: it must not get the first one's result
    assert derived(third) == [3] and calls == [1, 2, 3]


def test_planned_values_share_what_holds_no_tunable_with_the_raw_values() -> None:
    from imageflow_gen.plan.common import Tunable, placed

    plain = {"labels": {"app": "x"}, "ports": [{"port": 80}]}
    raw = {"spec": plain, "replicas": Tunable(("replicas",), 2, {}, "Replicas.")}
    values = placed(raw)
    assert values == {"spec": plain, "replicas": 2} and values is not raw
    assert values["spec"] is plain  # shared, not copied: the plan keeps both
    assert placed(plain) is plain


def test_parsed_objects_share_their_repeated_short_strings() -> None:
    from imageflow_gen.yamlio import parse_all

    first, second = parse_all("kind: Service\nmetadata: {name: web}\n---\nkind: Service\nmetadata: {name: web}\n")
    assert (
        first == second and first["kind"] is second["kind"] and first["metadata"]["name"] is second["metadata"]["name"]
    )
    assert [k for k in first][0] is [k for k in second][0]
