"""The error paths the happy tests never take: a bug is exit 70 with a short message (a
traceback only on request), and a broken template is a problem naming template:line."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from typer.testing import CliRunner

from conftest import PROFILES
from imageflow_gen import cli, pipeline, rendering
from imageflow_gen.errors import ValidationFailed


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_is_exit_70_with_a_short_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, debug: bool) -> None:
    monkeypatch.setattr(pipeline, "build", _boom)
    if debug:
        monkeypatch.setenv("IMAGEFLOW_DEBUG", "1")
    else:
        monkeypatch.delenv("IMAGEFLOW_DEBUG", raising=False)
    result = CliRunner().invoke(
        cli.app, ["render", "--profile", "dev", "--profiles-dir", str(PROFILES), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == cli.EXIT_INTERNAL == 70
    assert "imageflow-gen: internal error: RuntimeError: boom" in result.stderr
    assert ("Traceback (most recent call last)" in result.stderr) is debug
    assert ("set IMAGEFLOW_DEBUG=1" in result.stderr) is not debug
    assert not (tmp_path / "out").exists()  # nothing written


def _environment(templates: dict[str, str]) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.DictLoader(templates), undefined=jinja2.StrictUndefined)
    env.filters["nginx"] = rendering.nginx_value
    return env


@pytest.mark.parametrize(
    ("template", "text", "expected"),
    [
        ("broken.j2", "line one\n{% if %}\n", "templates/broken.j2:2:1 template error:"),
        ("undefined.j2", "{{ missing }}\n", "templates/undefined.j2 template error: 'missing' is undefined"),
        ("refused.j2", "listen {{ 'a;b' | nginx }};\n", "templates/refused.j2 'a;b' cannot be written into an nginx"),
    ],
)
def test_a_broken_template_is_a_located_problem(
    monkeypatch: pytest.MonkeyPatch, template: str, text: str, expected: str
) -> None:
    monkeypatch.setattr(rendering, "environment", lambda: _environment({template: text}))
    with pytest.raises(ValidationFailed) as caught:
        rendering.render(template)
    (problem,) = caught.value.problems
    assert str(problem).startswith(expected)
