"""The command line as a user meets it: exit codes, messages, and what it writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import PROFILES
from imageflow_gen import __version__


def test_version(cli) -> None:
    result = cli("--version")
    assert (result.code, result.stdout) == (0, f"imageflow-gen {__version__}\n")


@pytest.mark.parametrize("command", ["render", "validate", "profiles", "schema"])
def test_every_command_has_help_with_an_example(cli, command: str) -> None:
    result = cli(command, "--help")
    assert result.code == 0 and "Example: imageflow-gen " + command in " ".join(result.stdout.split())


@pytest.mark.parametrize("profile", ["base", "dev", "staging", "prod"])
def test_validate_shipped_profiles(cli, profile: str) -> None:
    result = cli("validate", "--profile", profile)
    assert result.code == 0, result.stderr
    assert result.stderr == ""


def test_render_twice_writes_nothing_the_second_time(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = cli("render", "--profile", "prod", "--out", str(out))
    assert first.code == 0 and "0 changed, 0 unchanged" in first.stdout
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    second = cli("render", "--profile", "prod", "--out", str(out))
    assert second.code == 0 and " 0 created, 0 changed," in second.stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_failed_render_writes_nothing(cli, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "bad.yaml").write_text("purpose: x\nextends: prod\nstorage: {minio: {nodes: 2}}\n")
    result = cli("render", "--profile", "bad", "--profiles-dir", str(profiles), "--out", str(tmp_path / "out"))
    assert result.code == 1 and "needs at least 4 drives" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(cli) -> None:
    assert cli("render").code == 2
    assert cli("render", "--profile", "prod", "--bogus").code == 2



def test_template_cache_is_a_speed_up_only(cli, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outputs = []
    for i, setting in enumerate([str(cache), str(cache), "off"]):
        out = tmp_path / f"out{i}"
        result = cli("render", "--profile", "dev", "--out", str(out), "--quiet",
                     env={"IMAGEFLOW_CACHE_DIR": setting})
        assert result.code == 0, result.stderr
        outputs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outputs[0] == outputs[1] == outputs[2]
    assert list(cache.glob("jinja-*/__jinja2_*.cache")), "compiled templates were not kept"
    # A cache folder that cannot be created is skipped, not an error.
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli("render", "--profile", "dev", "--out", str(tmp_path / "out3"), "--quiet",
                 env={"IMAGEFLOW_CACHE_DIR": str(blocker / "sub")})
    assert result.code == 0 and result.stderr == ""
