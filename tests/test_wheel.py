"""The package on its own: a wheel built from the checkout, installed into a fresh virtualenv
outside the repository, renders and validates with no flags and no environment variables, and
renders exactly what the checkout renders."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import PROFILES, REPO, run_cli


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(the venv's bin folder, an environment without any imageflow-gen variable)."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEFLOW_", "VIRTUAL_ENV", "PYTHON"))}
    env.update({"NO_COLOR": "1"})
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(work / "dist"),
            str(REPO),
        ],
        work,
        env,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("imageflow_gen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for data in (
        "templates/kubernetes/deployment.yaml.j2",
        "schemas/topology.schema.json",
        "schemas/crds/networking.istio.io/virtualservice_v1beta1.json",
        "schemas/crds/sources.json",
        "schemas/crds/upstream/virtualservices.networking.istio.io.yaml",
        "profiles/base.yaml",
    ):
        assert f"imageflow_gen/_data/{data}" in names, data
    # The templates compiled when the wheel was built (hatch_build.py), one per template.
    compiled = [n for n in names if n.startswith("imageflow_gen/_templates/") and n.endswith(".cache")]
    assert len(compiled) == len(list((REPO / "templates").rglob("*.j2")))
    venv = work / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], work, env).returncode == 0
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    deps = run(pip + ["-r", str(REPO / "requirements.lock")], work, env)
    assert deps.returncode == 0, deps.stderr
    wheel_install = run(pip + ["--no-deps", str(wheel)], work, env)
    assert wheel_install.returncode == 0, wheel_install.stderr
    return venv / "bin", env


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_wheel_is_the_package_that_runs(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = installed
    where = run([str(bin_dir / "python"), "-c", "import imageflow_gen; print(imageflow_gen.__file__)"], tmp_path, env)
    assert where.returncode == 0 and where.stdout.startswith(str(bin_dir.parent)), where.stdout + where.stderr


def test_the_wheel_renders_prod_byte_identically(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = installed
    ours = run(
        [
            str(bin_dir / "imageflow-gen"),
            "render",
            "--profile",
            "prod",
            "--profiles-dir",
            str(PROFILES),
            "--out",
            "out",
            "--quiet",
        ],
        tmp_path,
        env,
    )
    assert ours.returncode == 0, ours.stderr
    checkout = run_cli("render", "--profile", "prod", "--out", str(tmp_path / "checkout"), "--quiet")
    assert checkout.code == 0, checkout.stderr
    assert tree(tmp_path / "out") == tree(tmp_path / "checkout")


def test_the_wheel_validates_prod_without_flags(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = installed
    result = run(
        [
            str(bin_dir / "imageflow-gen"),
            "validate",
            "--profile",
            "prod",
            "--profiles-dir",
            str(PROFILES),
            "--no-tools",
        ],
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "profile prod: valid" in result.stdout


def test_init_then_render_in_an_empty_folder(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = installed
    init = run([str(bin_dir / "imageflow-gen"), "init", "site", "--extends", "prod"], tmp_path, env)
    assert init.returncode == 0, init.stderr
    # prod and its own parent come from the shipped profiles; the new one extends prod.
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == ["base.yaml", "prod.yaml", "site.yaml"]
    assert (tmp_path / "profiles/prod.yaml").read_text().split("\n", 1)[1] == (
        PROFILES / "prod.yaml"
    ).read_text().split("\n", 1)[1]
    render = run([str(bin_dir / "imageflow-gen"), "render", "--profile", "site", "--quiet"], tmp_path, env)
    assert render.returncode == 0, render.stderr
    assert (tmp_path / "out/kustomize/overlays/site/kustomization.yaml").is_file()
