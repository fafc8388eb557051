"""Kustomize layout: one base for all profiles; an overlay that is exactly the profile's difference."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CRDS, PROFILES
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets import jsonpatch
from imageflow_gen.targets.kubernetes import identity, objects
from imageflow_gen.writing import write
from imageflow_gen.yamlio import parse_all

PROFILE_NAMES = ["dev", "staging", "prod"]


def base_files(files: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in files.items() if k.startswith("kustomize/base/")}


def test_base_is_identical_whichever_profile_renders_it() -> None:
    bases = [base_files(build(PROFILES, p, CRDS).files) for p in PROFILE_NAMES]
    assert bases[0] and all(b == bases[0] for b in bases)


def overlay_result(files: dict[str, str], profile: str) -> dict:
    """Apply the overlay to the base in Python, as kustomize would (resources, 6902 and delete patches)."""
    root = f"kustomize/overlays/{profile}"
    kustomization = parse_all(files[f"{root}/kustomization.yaml"])[0]
    result = {}
    for resource in parse_all(files["kustomize/base/kustomization.yaml"])[0]["resources"]:
        obj = parse_all(files[f"kustomize/base/{resource}"])[0]
        result[identity(obj)] = obj
    for resource in kustomization["resources"][1:]:
        obj = parse_all(files[f"{root}/{resource}"])[0]
        result[identity(obj)] = obj
    for patch in kustomization.get("patches", []):
        body = parse_all(files[f"{root}/{patch['path']}"])[0]
        if isinstance(body, dict) and body.get("$patch") == "delete":
            del result[identity(body)]
            continue
        target = patch["target"]
        key = (target["group"], target["kind"], target.get("namespace", ""), target["name"])
        result[key] = jsonpatch.apply(result[key], body)
    return result


def test_overlay_applied_to_base_gives_the_profile_objects() -> None:
    for profile in PROFILE_NAMES:
        files = build(PROFILES, profile, CRDS).files
        expected = {identity(o): o for o in objects(validated(PROFILES, profile)[2])}
        assert overlay_result(files, profile) == expected


def test_jsonpatch_diff_and_apply_round_trip() -> None:
    old = {"a": 1, "b": {"c": [1, 2, {"d": "x/y~z"}]}, "gone": True}
    new = {"a": 2, "b": {"c": [1, 3, {"d": "w", "e": 1}], "f": [1]}, "x/y": None}
    assert jsonpatch.apply(old, jsonpatch.diff(old, new)) == new
    assert jsonpatch.diff(old, old) == []


@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_a_plain_kubectl_apply_creates_each_object_after_what_it_needs(profile: str, tmp_path: Path) -> None:
    """The built overlay lists the objects in Argo CD's wave order (a RuntimeClass, a Namespace
    or a StorageClass before the pods that use them), which `kubectl apply -k` follows."""
    import yaml

    from imageflow_gen.plan.common import SYNC_WAVES
    from imageflow_gen.validate import tools as gates

    write(tmp_path, profile, build(PROFILES, profile, CRDS).files)
    _, built = gates.kustomize_build(tmp_path, f"kustomize/overlays/{profile}")
    waves = [SYNC_WAVES[d["kind"]] for d in yaml.safe_load_all(built) if isinstance(d, dict)]
    assert len(waves) > 50 and waves == sorted(waves), waves
