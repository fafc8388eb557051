"""The committed JSON schemas are what the model generates, and they accept the profiles."""

from __future__ import annotations

import json

import jsonschema
import pytest

from conftest import PROFILES, REPO
from imageflow_gen import schema
from imageflow_gen.loading import load_profile, read_file


def test_committed_schemas_are_fresh() -> None:
    for name, text in schema.files().items():
        committed = (REPO / "schemas" / name).read_text(encoding="utf-8")
        assert committed == text, f"schemas/{name} is stale; run `make schema`"


def _plain(tree):
    if isinstance(tree.value, dict):
        return {k: _plain(v) for k, v in tree.value.items()}
    if isinstance(tree.value, list):
        return [_plain(v) for v in tree.value]
    return tree.value


@pytest.mark.parametrize("profile", ["base", "dev", "staging", "prod"])
def test_profile_files_match_the_profile_schema(profile: str) -> None:
    path = PROFILES / f"{profile}.yaml"
    jsonschema.validate(_plain(read_file(path, str(path))), schema.profile_schema())
    assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/profile.schema.json\n")


@pytest.mark.parametrize("profile", ["base", "dev", "staging", "prod"])
def test_merged_profiles_match_the_topology_schema(profile: str) -> None:
    jsonschema.validate(load_profile(PROFILES, profile).data, schema.topology_schema())


def test_topology_schema_rejects_unknown_keys_and_bad_values() -> None:
    data = load_profile(PROFILES, "prod").data
    validator = jsonschema.Draft202012Validator(schema.topology_schema())
    bad = json.loads(json.dumps(data))
    bad["storage"]["minio"]["colour"] = "blue"
    bad["storage"]["minio"]["buckets"][0]["access"] = "rwx"
    errors = {tuple(e.absolute_path) for e in validator.iter_errors(bad)}
    assert ("storage", "minio") in errors and ("storage", "minio", "buckets", 0, "access") in errors


def test_schema_command_check_mode(cli, tmp_path) -> None:
    assert cli("schema", "--check").code == 0
    stale = tmp_path / "schemas"
    assert cli("schema", "--check", "--out-dir", str(stale)).code == 1
    assert not stale.exists()
    assert cli("schema", "--out-dir", str(stale)).code == 0
    assert cli("schema", "--check", "--out-dir", str(stale)).code == 0
