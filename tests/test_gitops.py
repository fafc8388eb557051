"""The GitOps workflow: deterministic bytes, locks, minimal writes, safe pruning, check/diff, Argo CD."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import CRDS, PROFILES, REPO, run_cli
from imageflow_gen import __version__
from imageflow_gen.pipeline import build
from imageflow_gen.resources import generator_fingerprint


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def render(
    out: Path,
    profile: str = "prod",
    cwd: Path | None = None,
    profiles: Path = PROFILES,
    env: dict[str, str] | None = None,
):
    return run_cli("render", "--profile", profile, "--out", str(out), "--profiles-dir", str(profiles), cwd=cwd, env=env)


def test_output_is_identical_across_hash_seeds_locales_and_working_directories(tmp_path: Path) -> None:
    results = []
    for i, (seed, locale, cwd) in enumerate([("0", "C", REPO), ("1", "C.UTF-8", tmp_path), ("12345", "POSIX", REPO)]):
        out = tmp_path / f"out{i}"
        result = render(out, cwd=cwd, env={"PYTHONHASHSEED": seed, "LC_ALL": locale, "LANG": locale})
        assert result.code == 0, result.stderr
        results.append(tree_hashes(out))
    assert results[0] == results[1] == results[2]
    assert all(b"\r" not in p.read_bytes() for p in (tmp_path / "out0").rglob("*") if p.is_file())


def reversed_keys(node):
    if isinstance(node, dict):
        return {k: reversed_keys(node[k]) for k in reversed(list(node))}
    if isinstance(node, list):
        return [reversed_keys(v) for v in node]
    return node


def test_the_key_order_of_the_input_does_not_change_the_output(tmp_path: Path) -> None:
    shuffled = tmp_path / "profiles"
    shuffled.mkdir()
    for path in PROFILES.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        (shuffled / path.name).write_text(yaml.safe_dump(reversed_keys(data), sort_keys=False))
    original = build(PROFILES, "prod", CRDS).files
    reordered = build(shuffled, "prod", CRDS).files
    assert original == reordered


def test_rendering_twice_writes_nothing_the_second_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(out).code == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    second = render(out)
    assert second.code == 0 and "0 created, 0 changed," in second.stdout and " 0 removed" in second.stdout
    assert all(line.startswith("unchanged ") for line in second.stdout.splitlines()[:-1])
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_lock_lists_version_input_hash_and_every_owned_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(out)
    lock = json.loads((out / ".imageflow-gen/prod.lock.json").read_text())
    assert lock["generator"] == __version__ and lock["profile"] == "prod"
    assert lock["format"] == 2 and lock["root"] == "base" and lock["inputs"] == ["base.yaml", "prod.yaml"]
    assert lock["generator_sha256"] == generator_fingerprint()
    digest = hashlib.sha256()
    for name in ("base.yaml", "prod.yaml"):
        digest.update(name.encode() + b"\0" + (PROFILES / name).read_bytes() + b"\0")
    assert lock["input_sha256"] == digest.hexdigest()
    owned = {k: v for k, v in tree_hashes(out).items() if k != ".imageflow-gen/prod.lock.json"}
    assert lock["files"] == owned


def changed_profiles(tmp_path: Path) -> Path:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    return profiles


def test_check_exits_1_with_a_diff_when_the_input_changed_and_writes_nothing(tmp_path: Path) -> None:
    out, profiles = tmp_path / "out", changed_profiles(tmp_path)
    assert render(out, profiles=profiles).code == 0
    args = ("--profile", "prod", "--out", str(out), "--profiles-dir", str(profiles))
    assert run_cli("check", *args).code == 0
    text = (
        (profiles / "prod.yaml")
        .read_text()
        .replace("      autoscaling: {min_replicas: 2, max_replicas: 6, target_cpu_utilization: 70}\n", "", 1)
    )
    (profiles / "prod.yaml").write_text(text)
    before = tree_hashes(out)
    result = run_cli("check", *args)
    assert result.code == 1 and "is stale" in result.stderr or "are stale" in result.stderr
    assert (
        "--- a/kustomize/overlays/prod/resources/imageflow-processing/horizontalpodautoscaler-resize-blue.yaml"
        in result.stdout
        and "+++ /dev/null" in result.stdout
    )
    assert tree_hashes(out) == before
    shown = run_cli("diff", *args)
    assert shown.code == 0 and shown.stdout == result.stdout
    render(out, profiles=profiles)
    assert not (
        out / "kustomize/overlays/prod/resources/imageflow-processing/horizontalpodautoscaler-resize-blue.yaml"
    ).exists()
    assert run_cli("check", *args).code == 0


def test_check_notices_missing_and_edited_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(out)
    (out / "kustomize/base/kustomization.yaml").unlink()
    (out / "ci/validate.sh").write_text("echo edited\n")
    result = run_cli("check", "--profile", "prod", "--out", str(out))
    assert result.code == 1
    assert "+++ b/kustomize/base/kustomization.yaml" in result.stdout and "-echo edited" in result.stdout


def test_a_failure_mid_render_leaves_the_output_untouched(tmp_path: Path) -> None:
    out, profiles = tmp_path / "out", changed_profiles(tmp_path)
    assert render(out, profiles=profiles).code == 0
    before = tree_hashes(out)
    # Valid for the model, caught only by the output gates (a literal credential in a rendered file).
    (profiles / "prod.yaml").write_text(
        (profiles / "prod.yaml")
        .read_text()
        .replace("purpose: Production", "purpose: api_token=abcdef123456 Production", 1)
    )
    result = render(out, profiles=profiles)
    assert result.code == 1 and "looks like a credential" in result.stderr and "nothing written" in result.stderr
    assert tree_hashes(out) == before


def test_pruning_never_touches_a_users_own_file(tmp_path: Path) -> None:
    out, profiles = tmp_path / "out", changed_profiles(tmp_path)
    render(out, profiles=profiles)
    mine = out / "kustomize/overlays/prod/resources/imageflow-processing/NOTES.md"
    mine.write_text("my notes\n")
    (profiles / "prod.yaml").write_text(
        (profiles / "prod.yaml")
        .read_text()
        .replace("      autoscaling: {min_replicas: 2, max_replicas: 6, target_cpu_utilization: 70}\n", "")
    )
    result = render(out, profiles=profiles)
    assert result.code == 0 and "removed   " in result.stdout
    assert mine.read_text() == "my notes\n"
    assert not (
        out / "kustomize/overlays/prod/resources/imageflow-processing/horizontalpodautoscaler-filter.yaml"
    ).exists()


def test_shared_files_stay_while_another_profile_owns_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(out, "prod")
    render(out, "dev")
    (out / ".imageflow-gen/prod.lock.json").write_text(
        json.dumps({"files": {"kustomize/base/extra.yaml": hashlib.sha256(b"kept\n").hexdigest()}})
    )
    (out / "kustomize/base/extra.yaml").write_text("kept\n")
    render(out, "dev")
    assert (out / "kustomize/base/extra.yaml").exists()


def test_a_generated_path_taken_by_a_users_file_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "ci").mkdir(parents=True)
    (out / "ci/validate.sh").write_text("# mine\n")
    result = render(out)
    assert result.code == 1 and "was not generated by imageflow-gen" in result.stderr
    assert sorted(p.name for p in out.rglob("*")) == ["ci", "validate.sh"]


def test_the_writer_never_follows_a_symlink_inside_the_output(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "kustomize")
    result = render(out)
    assert result.code == 1 and "symbolic link" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_argocd_application_per_profile(tmp_path: Path) -> None:
    files = build(PROFILES, "prod", CRDS).files
    app = yaml.safe_load(files["argocd/prod.yaml"])
    assert app["kind"] == "Application" and app["metadata"]["namespace"] == "argocd"
    assert app["spec"]["source"] == {
        "repoURL": "https://git.example.com/imageflow/gitops.git",
        "targetRevision": "main",
        "path": "kustomize/overlays/prod",
    }
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    profiles = changed_profiles(tmp_path)
    (profiles / "helmed.yaml").write_text(
        "purpose: chart\nextends: prod\ngitops:\n  argocd:\n    source: helm\n    path: clusters/imageflow\n"
    )
    app = yaml.safe_load(build(profiles, "helmed", CRDS).files["argocd/helmed.yaml"])
    # The profile's own chart, whose values.yaml is the profile's: no value files to name.
    assert app["spec"]["source"]["path"] == "clusters/imageflow/helm/helmed" and "helm" not in app["spec"]["source"]


def test_every_object_names_its_profile_file_and_key() -> None:
    result = build(PROFILES, "prod", CRDS)
    for _, obj in result.objects:
        if obj["kind"] != "Application":
            assert obj["metadata"]["annotations"]["imageflow.io/source"].split("#")[0] in ("base.yaml", "prod.yaml")
    minio = next(
        o
        for _, o in result.objects
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "minio" and "overlays" in _
    )
    assert minio["metadata"]["annotations"]["imageflow.io/source"] == "prod.yaml#storage.minio"


def test_pre_commit_hook_runs_check() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "imageflow-gen-check" and hook["entry"] == "imageflow-gen check"
    assert hook["pass_filenames"] is False
    command = [sys.executable, "-m", "imageflow_gen", "check", "--help"]
    assert subprocess.run(command, capture_output=True).returncode == 0


def test_sync_waves_put_what_workloads_need_before_them() -> None:
    from imageflow_gen.pipeline import validated
    from imageflow_gen.plan.common import SYNC_WAVE_ANNOTATION, SYNC_WAVES
    from imageflow_gen.targets.kubernetes import objects

    objs = objects(validated(PROFILES, "prod")[2])
    wave = {}
    for obj in objs:
        value = obj["metadata"]["annotations"][SYNC_WAVE_ANNOTATION]
        wave.setdefault(obj["kind"], set()).add(int(value))
    assert all(len(values) == 1 for values in wave.values())
    w = {kind: values.pop() for kind, values in wave.items()}
    assert w["Namespace"] < w["ConfigMap"] == w["ExternalSecret"] == w["PersistentVolume"] < w["StatefulSet"]
    assert w["StatefulSet"] < w["Deployment"] == w["Job"] < w["VirtualService"] == w["Gateway"]
    assert w == {kind: SYNC_WAVES[kind] for kind in w}
    # The chart carries the same annotations: its templates are these objects (tests/test_helm.py).
