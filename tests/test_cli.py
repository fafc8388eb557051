"""The command line as a user meets it: exit codes, messages, and what it writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import PROFILES, REPO
from imageflow_gen import __version__


def test_version(cli) -> None:
    result = cli("--version")
    assert (result.code, result.stdout) == (0, f"imageflow-gen {__version__}\n")


@pytest.mark.parametrize(
    "command", ["render", "check", "diff", "validate", "profiles", "schema", "graph", "init", "explain", "capacity"]
)
def test_every_command_has_help_with_an_example(cli, command: str) -> None:
    result = cli(command, "--help")
    assert result.code == 0 and "Example: imageflow-gen " + command in " ".join(result.stdout.split())


@pytest.mark.parametrize("profile", ["base", "dev", "staging", "prod"])
def test_validate_shipped_profiles(cli, profile: str) -> None:
    result = cli("validate", "--profile", profile)
    assert result.code == 0, result.stderr
    # Only capacity warnings (prod's and staging's are in docs/seed-deviations.md).
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())


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


def test_init_scaffolds_a_profile_that_validates_and_never_overwrites(cli, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    result = cli("init", "eu", "--profiles-dir", str(profiles), "--extends", "prod")
    assert result.code == 0 and result.stdout.startswith(f"created {profiles / 'eu.yaml'}\n"), result.stderr
    text = (profiles / "eu.yaml").read_text()
    modeline = text.splitlines()[0]
    assert modeline.startswith("# yaml-language-server: $schema=") and modeline.endswith("profile.schema.json")
    assert (profiles / modeline.split("=", 1)[1]).resolve() == (REPO / "schemas/profile.schema.json").resolve()
    assert 'extends: "prod"' in text and "# processing:" in text
    assert cli("validate", "--profile", "eu", "--profiles-dir", str(profiles), "--no-tools").code == 0
    # The scaffold's commented examples are valid too, once uncommented.
    body = "\n".join(
        line[2:] if line.startswith("# ") and not line.startswith("#   imageflow") else line
        for line in text.splitlines()[14:]
    )
    (profiles / "eu-full.yaml").write_text(text.splitlines()[13].replace("eu:", "eu-full:") + "\n" + body + "\n")
    full = cli("validate", "--profile", "eu-full", "--profiles-dir", str(profiles), "--no-tools")
    assert full.code == 0, full.stderr
    again = cli("init", "eu", "--profiles-dir", str(profiles))
    assert again.code == 2 and "already exists; init never overwrites a profile" in again.stderr
    assert (profiles / "eu.yaml").read_text() == text
    missing = cli("init", "x", "--profiles-dir", str(profiles), "--extends", "nope")
    assert missing.code == 2 and "no profile 'nope' to extend" in missing.stderr
    assert not (profiles / "x.yaml").exists() and not list(profiles.glob(".*tmp"))


def test_init_refuses_a_path_for_a_name(cli, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    result = cli("init", "../escape", "--profiles-dir", str(profiles))
    assert result.code == 2 and "is not a profile name" in result.stderr
    assert not (tmp_path / "escape.yaml").exists()


def test_status_is_coloured_only_when_asked(cli, tmp_path: Path) -> None:
    plain = cli("render", "--profile", "dev", "--out", str(tmp_path / "a"))
    assert "\033[" not in plain.stdout and plain.stdout.startswith("created   ")
    coloured = cli("render", "--profile", "dev", "--out", str(tmp_path / "b"), env={"FORCE_COLOR": "1"})
    assert coloured.stdout.startswith("\033[32mcreated  \033[0m ")
    assert "\033[" not in coloured.stderr


def test_shell_completion_of_commands_and_profile_names(cli) -> None:
    def complete(words: str) -> list[str]:
        result = cli(
            env={
                "_IMAGEFLOW_GEN_COMPLETE": "complete_bash",
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split(" ")) - 1),
            }
        )
        assert result.code == 0, result.stderr
        return result.stdout.split()

    assert complete("imageflow-gen gr") == ["graph"]
    assert complete("imageflow-gen render --profile st") == ["staging"]
    assert complete("imageflow-gen validate --profile ") == ["base", "dev", "prod", "staging"]
    # typer detects the user's shell; the CI's shell may be sh, so name bash explicitly (typer's
    # own switch for that, the one its tests use).
    script = cli("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.code == 0 and "_IMAGEFLOW_GEN_COMPLETE=complete_bash" in script.stdout
