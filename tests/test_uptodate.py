"""An unchanged render is proved, not redone: uptodate.py and the lock's provenance.

Each test runs the CLI in a fresh process with the pipeline module replaced by one whose
`build` says so and exits 99: a command that finishes without it never rendered. The proof must hold
only when the profile files, the generator and every output file are what the lock records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROFILES, REPO, run_cli
from imageflow_gen.resources import fingerprint_of, generator_fingerprint

# The CLI with the full render replaced, reporting which heavy modules were imported.
NO_BUILD = """
import atexit, sys, types

def refused(*args, **kwargs):
    sys.stderr.write("FULL RENDER\\n")
    raise SystemExit(99)

# A stand-in for the pipeline module, so that importing it imports nothing either.
sys.modules["imageflow_gen.pipeline"] = types.SimpleNamespace(build=refused)
# pydantic is left out: typer itself imports it to convert the options.
heavy = ("jinja2", "ruamel.yaml", "yaml", "jsonschema", "imageflow_gen.model", "imageflow_gen.plan")
atexit.register(lambda: sys.stderr.write("IMPORTED " + " ".join(m for m in heavy if m in sys.modules) + "\\n"))
from imageflow_gen.cli import main
sys.argv = ["imageflow-gen", *sys.argv[1:]]
main()
"""


def without_build(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-c", NO_BUILD, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def proved(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 99 and "FULL RENDER" not in result.stderr


def user_lines(stderr: str) -> str:
    return "".join(line + "\n" for line in stderr.splitlines() if not line.startswith("IMPORTED "))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("uptodate")
    shutil.copytree(PROFILES, work / "profiles")
    result = run_cli("render", "--profile", "prod", "--out", "out", "-q", cwd=work)
    assert result.code == 0, result.stderr
    return work


@pytest.fixture
def work(rendered: Path, tmp_path: Path) -> Path:
    shutil.copytree(rendered, tmp_path / "w", symlinks=True)
    return tmp_path / "w"


def render(work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return without_build("render", "--profile", "prod", "--out", "out", *extra, cwd=work)


def test_an_unchanged_render_is_proved_and_says_what_a_full_one_says(work: Path) -> None:
    proof = render(work)
    assert proved(proof) and proof.returncode == 0, proof.stderr
    # What a full render of the same input into a copy of the same output prints.
    shutil.copytree(work / "out", work / "full")
    lock = work / "full/.imageflow-gen/prod.lock.json"
    lock.write_text(lock.read_text().replace(generator_fingerprint(), "0" * 64))  # proves nothing
    full = run_cli("render", "--profile", "prod", "--out", "full", cwd=work)
    assert full.code == 0
    assert proof.stdout.replace(" out/", " full/").replace(" in out", " in full") == full.stdout.replace(
        "changed   full/.imageflow-gen/prod.lock.json", "unchanged full/.imageflow-gen/prod.lock.json"
    ).replace("1 changed", "0 changed").replace("611 unchanged", "612 unchanged")
    # The capacity warnings of prod, from the lock, located as the loader locates them.
    assert user_lines(proof.stderr) == full.stderr and "warning: profiles/base.yaml:18:5 vms[0]:" in full.stderr
    # Nothing heavy was imported: the proof reads hashes, not YAML.
    assert proof.stderr.splitlines()[-1] == "IMPORTED "


def test_the_warnings_name_the_profiles_where_this_run_finds_them(work: Path) -> None:
    elsewhere = work / "sub"
    elsewhere.mkdir()
    proof = without_build(
        "render", "--profile", "prod", "--out", "../out", "--profiles-dir", str(work / "profiles"), cwd=elsewhere
    )
    assert proved(proof) and proof.returncode == 0
    assert f"warning: {work / 'profiles/base.yaml'}:18:5 vms[0]: 95% of capacity" in proof.stderr


def test_check_and_diff_take_the_proof_too(work: Path) -> None:
    check = without_build("check", "--profile", "prod", "--out", "out", cwd=work)
    assert proved(check) and check.returncode == 0 and "out is up to date" in check.stdout
    diff = without_build("diff", "--profile", "prod", "--out", "out", cwd=work)
    assert proved(diff) and diff.returncode == 0 and diff.stdout == ""


def _edit_profile(work: Path) -> None:
    with (work / "profiles/prod.yaml").open("a") as handle:
        handle.write("# a comment changes the input hash\n")


def _edit_parent(work: Path) -> None:
    with (work / "profiles/base.yaml").open("a") as handle:
        handle.write("\n")


def _edit_output(work: Path) -> None:
    target = work / "out/docs/prod/README.md"
    target.write_text(target.read_text() + "edited\n")


def _delete_output(work: Path) -> None:
    (work / "out/helm/prod/Chart.yaml").unlink()


def _folder_link(work: Path) -> None:
    docs = work / "out/docs/prod"
    docs.rename(work / "elsewhere")
    docs.symlink_to(work / "elsewhere")


def _lock(work: Path, change) -> None:
    path = work / "out/.imageflow-gen/prod.lock.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _lock_spacing(work: Path) -> None:
    path = work / "out/.imageflow-gen/prod.lock.json"
    path.write_text(path.read_text().replace('"format": 2', '"format":  2'))


def _journal(work: Path) -> None:
    (work / "out/.imageflow-gen/staging").mkdir()


def _malformed_other_lock(work: Path) -> None:
    (work / "out/.imageflow-gen/dev.lock.json").write_text("[]")


CASES = {
    "the profile edited": _edit_profile,
    "a parent profile edited": _edit_parent,
    "an output file edited": _edit_output,
    "an output file deleted": _delete_output,
    "a folder of the output replaced by a link": _folder_link,
    "another generator version": lambda w: _lock(w, lambda d: d.update(generator="0.0.9")),
    "another generator fingerprint": lambda w: _lock(w, lambda d: d.update(generator_sha256="0" * 64)),
    "a lock of format 1": lambda w: _lock(
        w, lambda d: [d.pop(k) for k in ("generator_sha256", "inputs", "warnings")] and d.update(format=1)
    ),
    "a lock claiming another chain": lambda w: _lock(w, lambda d: d.update(inputs=["prod.yaml"], root="prod")),
    "a lock with a warning's line as text": lambda w: _lock(w, lambda d: d["warnings"][0].update(line="18")),
    "a lock not in its written form": _lock_spacing,
    "an interrupted render's staging": _journal,
    "another profile's lock malformed": _malformed_other_lock,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_anything_the_lock_does_not_vouch_for_means_a_full_render(work: Path, case: str) -> None:
    CASES[case](work)
    assert not proved(render(work)), case


def test_extra_crd_schemas_are_not_in_the_lock_so_they_mean_a_full_render(work: Path) -> None:
    assert not proved(render(work, "--crd-schemas", str(REPO / "schemas/crds")))


def test_a_full_render_after_an_edit_restores_the_file_and_the_proof_holds_again(work: Path) -> None:
    _edit_output(work)
    full = run_cli("render", "--profile", "prod", "--out", "out", "-q", cwd=work)
    assert full.code == 0 and "1 changed" in full.stdout
    assert proved(render(work, "-q"))


def test_the_fingerprint_covers_code_templates_and_schemas_by_their_place(tmp_path: Path) -> None:
    src = REPO / "src/imageflow_gen"
    trees = [
        ("imageflow_gen", src, (".py",)),
        ("templates", REPO / "templates", None),
        ("schemas", REPO / "schemas", None),
    ]
    assert fingerprint_of(trees) == generator_fingerprint()
    # The same files somewhere else (a wheel's layout) give the same fingerprint; caches do not count.
    copies = [(name, tmp_path / name, suffixes) for name, _, suffixes in trees]
    for (_, root, _), (_, copy, _) in zip(trees, copies, strict=True):
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "imageflow_gen/__pycache__").mkdir()
    (tmp_path / "imageflow_gen/__pycache__/cli.cpython-311.pyc").write_bytes(b"cache")
    (tmp_path / "imageflow_gen/_data").mkdir()
    (tmp_path / "imageflow_gen/_data/x.py").write_text("packaged data")
    assert fingerprint_of(copies) == generator_fingerprint()
    # One byte of a template, a schema or the code changes it.
    for edited in ("templates/helm/Chart.yaml.j2", "schemas/topology.schema.json", "imageflow_gen/cli.py"):
        path = tmp_path / edited
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        assert fingerprint_of(copies) != generator_fingerprint(), edited
        path.write_bytes(original)
