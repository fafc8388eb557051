"""Hostile input: nothing crashes the tool, writes half an output, or changes the output's structure."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CRDS, PROFILES, run_cli
from imageflow_gen.errors import ImageflowError
from imageflow_gen.loading import load_profile, walk
from imageflow_gen.pipeline import build

PROD = load_profile(PROFILES, "prod").data
FRAGMENTS = [
    "\n",
    ": ",
    "{{ x }}",
    "{% if %}",
    "#",
    "'",
    '"',
    "*a",
    "&a",
    "---",
    "...",
    "|",
    ">",
    "!tag",
    "%",
    "@",
    "`",
    "\\",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "yes",
    "0755",
    "1.10",
    "~",
    "\t",
    "é",
    "${VAR}",
    "$(id)",
]
hostile = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet="abcXYZ019 ._-", max_size=6)), min_size=1, max_size=8
).map("".join)


def profile_with(tmp: Path, name: str, data: dict[str, Any]) -> Path:
    profiles = tmp / "profiles"
    if not profiles.exists():
        shutil.copytree(PROFILES, profiles)
    (profiles / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return profiles


def objects_by_name(files: dict[str, str], profile: str) -> dict[tuple[str, str], dict]:
    result = {}
    for path, text in files.items():
        if path.startswith((f"kustomize/overlays/{profile}/resources/", "kustomize/base/")) and not path.endswith(
            "kustomization.yaml"
        ):
            for doc in yaml.safe_load_all(text):
                result[(doc["kind"], doc["metadata"]["name"])] = doc
    return result


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile)
def test_no_input_string_changes_the_structure_of_the_output(tmp_path_factory, text: str) -> None:
    tmp = tmp_path_factory.mktemp("hostile")
    data = {
        "purpose": "hostile strings",
        "extends": "base",
        "namespaces": [{"name": "imageflow-web", "purpose": text}],
        "storage": {"minio": {"region": text}, "storage_classes": [{"name": "fast-ssd", "parameters": {"type": text}}]},
    }
    profiles = profile_with(tmp, "hostile", data)
    try:
        result = build(profiles, "hostile", CRDS)
    except ImageflowError as error:  # refused with a located message is fine; a crash is not
        assert all(p.location.file for p in error.problems)
        return
    base_objects = objects_by_name(result.files, "hostile")
    # The base comes from base.yaml; the profile's values reach the output through the overlay
    # patches and the chart's templates (literal text to Go: `{{` becomes an action printing it).
    chart = {
        p: yaml.safe_load(t.replace('{{ "{{" }}', "{{"))
        for p, t in result.files.items()
        if p.startswith("helm/hostile/templates/")
        and p.endswith(("namespace-imageflow-web.yaml", "storageclass-fast-ssd.yaml"))
    }
    assert sorted(o["kind"] for o in chart.values()) == ["Namespace", "StorageClass"]
    assert all(o.get("parameters", {}).get("type", text) == text for o in chart.values())
    assert any(o["metadata"].get("annotations", {}).get("imageflow.io/purpose") == text for o in chart.values())
    patches = {p: yaml.safe_load(t) for p, t in result.files.items() if "/overlays/hostile/patches/" in p}
    carried = [op["value"] for ops in patches.values() for op in ops if op["op"] in ("add", "replace")]
    assert any(v == text or (isinstance(v, dict) and text in v.values()) for v in carried)
    compose = yaml.safe_load(result.files["compose/hostile/vm0/docker-compose.yaml"])
    assert compose["services"]["backend-api"]["environment"]["MINIO_REGION"] == text
    assert base_objects  # the rest of the output still parses object by object


def mutations() -> st.SearchStrategy:
    """A path into prod's topology and a value of any type to put there."""
    paths = [path for path, _ in walk(PROD)]
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 70000),
        st.floats(allow_nan=False),
        hostile,
        st.sampled_from(["", "imageflow-web", "10.0.1.10", "1Gi", "nginx:1.27.3"]),
        st.lists(st.integers(0, 3), max_size=2),
        st.dictionaries(st.sampled_from(["a", "name"]), st.integers(), max_size=2),
    )
    return st.tuples(st.sampled_from(paths[1:]), values)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(mutations(), min_size=1, max_size=3))
def test_any_topology_either_passes_every_gate_or_is_refused_with_locations(tmp_path_factory, changes) -> None:
    data = copy.deepcopy(PROD)
    for path, value in changes:
        target = data
        try:
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    data = {"purpose": "mutated", **{k: v for k, v in data.items() if k != "purpose"}}
    profiles = profile_with(tmp_path_factory.mktemp("mutated"), "mutated", data)
    try:
        build(profiles, "mutated", CRDS)  # passing means every built-in gate passed
    except ImageflowError as error:
        assert error.problems and all(str(p.location) for p in error.problems)


@pytest.mark.parametrize(
    "text",
    [
        "purpose: x\nextends: prod\nstorage: {minio: {nodes: 2}}\n",  # a cross-field problem
        "purpose: x\nextends: prod\nstorage: {minio: {image: '{{ evil }}'}}\n",  # a bad image
        "a: &a [1]\nb: *a\nc: !!binary aGVsbG8=\n",  # a tag
    ],
)
def test_invalid_input_exits_non_zero_and_writes_nothing(tmp_path: Path, text: str) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "bad.yaml").write_text(text)
    out = tmp_path / "out"
    result = run_cli("render", "--profile", "bad", "--profiles-dir", str(profiles), "--out", str(out))
    assert result.code in (1, 2) and "Traceback" not in result.stderr and not out.exists()


@pytest.mark.parametrize("args", [["--profile", "../prod"], ["--profile", "/etc/passwd"], ["--profile", "prod/x"]])
def test_profile_names_cannot_escape(tmp_path: Path, args: list[str]) -> None:
    result = run_cli("render", *args, "--out", str(tmp_path / "out"))
    assert result.code == 2 and "is not a profile name" in result.stderr


def test_out_cannot_be_the_root_or_the_profiles(tmp_path: Path) -> None:
    assert run_cli("render", "--profile", "prod", "--out", "/").code == 2
    assert run_cli("render", "--profile", "prod", "--out", "profiles").code == 2


def test_a_literal_secret_in_a_profile_is_refused_with_its_line(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "leak.yaml").write_text(
        "purpose: x\nextends: prod\nstorage:\n  storage_classes:\n"
        "    - name: fast-ssd\n      parameters:\n        api_token: abcdef123456\n"
    )
    result = run_cli("validate", "--profile", "leak", "--profiles-dir", str(profiles), "--no-tools")
    assert result.code == 1
    assert "leak.yaml:7:20 storage.storage_classes[0].parameters.api_token: looks like a secret value" in result.stderr
    assert "abcdef123456" not in result.stderr + result.stdout
