"""Every profile string reaches each destination validated for its field or escaped for it:
YAML, Markdown, Mermaid, compose interpolation, Kubernetes `$(VAR)` expansion, shell and nginx;
and the model refuses what the API server and the runtimes would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PROFILES
from imageflow_gen.errors import ImageflowError
from imageflow_gen.graph import build_graph, mermaid
from imageflow_gen.pipeline import build, validated
from imageflow_gen.rendering import markdown_text
from imageflow_gen.targets.compose import Interpolated, _literal
from imageflow_gen.targets.kubernetes import objects
from test_hostile import profile_with

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# One line of text a person might write, or an attacker: markup of every language the output has.
PIECES = [
    "<script>alert(1)</script>",
    "|",
    "[x](javascript:alert(1))",
    "![i](http://x/i.png)",
    "*",
    "_",
    "#",
    "- ",
    "1. ",
    "&lt;",
    "&",
    '"',
    "'",
    "`",
    "\\",
    "${VAR}",
    "$(id)",
    "{{ x }}",
    "{% if %}",
    "#quot;",
    "<br/>",
    ": ",
    "yes",
    "0755",
    "~",
    "é",
    "\u00a0",
    "-->",
    "]]>",
    "%",
    "\\n",
]
one_line = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(alphabet="abcXYZ019 .,", max_size=6)), min_size=1, max_size=8
).map("".join)


@SETTINGS
@given(text=one_line)
def test_free_text_lands_unchanged_in_yaml_and_escaped_in_markdown_and_mermaid(tmp_path_factory, text: str) -> None:
    tmp = tmp_path_factory.mktemp("text")
    prod = validated(PROFILES, "prod")[1].model_dump()
    data = {
        "purpose": text,
        "extends": "prod",
        "vms": [{"name": prod["vms"][0]["name"], "purpose": text}],
        "namespaces": [{"name": "imageflow-web", "purpose": text}],
    }
    profiles = profile_with(tmp, "text", data)
    result = build(profiles, "text")
    # The chart's template is literal text to Go: each `{{` of the input is an action printing `{{`.
    template = result.files["helm/text/templates/cluster/namespace-imageflow-web.yaml"]
    assert "{{" not in template.replace('{{ "{{" }}', "")
    chart_namespace = yaml.safe_load(template.replace('{{ "{{" }}', "{{"))
    assert chart_namespace["metadata"]["annotations"]["imageflow.io/purpose"] == text
    (namespace,) = [
        o
        for o in objects(validated(profiles, "text")[2])
        if o["kind"] == "Namespace" and o["metadata"]["name"] == "imageflow-web"
    ]
    assert namespace["metadata"]["annotations"]["imageflow.io/purpose"] == text
    readme = result.files["docs/text/README.md"]
    lines = readme.splitlines()
    assert lines[3] == markdown_text(text)  # the line after the heading
    assert sum(1 for line in lines if markdown_text(text) in line) >= 2  # and in the VM order list
    # The diagram is checked below; its fence closes at a line's start (a label may hold ```).
    prose = re.sub(r"^```mermaid\n.*?^```$", "", readme, flags=re.S | re.M)
    for line in prose.splitlines():  # the text adds no HTML, link or image
        assert "<script" not in line and "](" not in line.replace("\\](", "")
    diagram = mermaid(build_graph(validated(profiles, "text")[2]))
    group_id = f"subgraph vm_{prod['vms'][0]['name']}"
    (group,) = [line for line in diagram.splitlines() if line.strip().startswith(group_id)]
    label = group.split('["', 1)[1].rsplit('"]', 1)[0]
    assert '"' not in label and "<" not in label.replace("<br/>", "")


def test_markdown_text_defuses_block_markers_and_inline_markup() -> None:
    assert markdown_text("# a") == "\\# a" and markdown_text("12. a") == "12\\. a" and markdown_text("- a") == "\\- a"
    assert markdown_text("a | b [c](d) *e* <b>") == "a \\| b \\[c\\](d) \\*e\\* &lt;b&gt;"


def test_compose_doubles_every_dollar_but_its_own_interpolations() -> None:
    value = {"a": ["x$y", "$$", "${VAR}"], "b": Interpolated("${FILE:?set FILE}"), "c": 3}
    assert _literal(value) == {"a": ["x$$y", "$$$$", "$${VAR}"], "b": "${FILE:?set FILE}", "c": 3}
    for profile in ("dev", "staging", "prod"):
        for path, text in build(PROFILES, profile).files.items():
            if path.endswith("docker-compose.yaml"):
                found = set(re.findall(r"\$+\{?[A-Za-z0-9_]*", text))
                assert found <= {
                    "${IMAGEFLOW_TLS_CERTIFICATE",
                    "${IMAGEFLOW_TLS_KEY",
                    "${MINIO_S3_CREDENTIALS_FILE",
                    "${MINIO_CA_FILE",
                    # the Secrets the backend reads on the edge VM: its MinIO user's keys, its database
                    # role's password, prod's session key
                    "${SECRET_MINIO_BACKEND_API__ACCESS_KEY_FILE",
                    "${SECRET_MINIO_BACKEND_API__SECRET_KEY_FILE",
                    "${SECRET_POSTGRESQL_IMAGEFLOW__PASSWORD_FILE",
                    "${SECRET_BACKEND_SESSION__SECRET_KEY_FILE",
                }, (path, found)


def containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get(
        "spec", spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    )
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_no_string_reaches_kubernetes_variable_expansion(profile: str) -> None:
    """Kubernetes replaces $(NAME) in command, args and env values: none may appear unescaped."""
    reference = re.compile(r"(?<!\$)\$\([A-Za-z_][A-Za-z0-9_]*\)")
    for obj in objects(validated(PROFILES, profile)[2]):
        for container in containers(obj):
            texts = [
                *container.get("command", []),
                *container.get("args", []),
                *(e.get("value", "") for e in container.get("env", [])),
            ]
            assert [t for t in texts if reference.search(t)] == [], (obj["kind"], obj["metadata"]["name"])


SHELL_OR_DIRECTIVE = set("$;'\"` (){}\\\n\t*?<>|&")


@SETTINGS
@given(
    text=st.lists(
        st.one_of(
            st.sampled_from(PIECES + ["/", "/..", "/.", "/a b", "/$x", "/a;b", "//"]),
            st.text(alphabet="abc/._-", max_size=6),
        ),
        min_size=1,
        max_size=6,
    ).map("".join)
)
def test_paths_and_prefixes_are_refused_or_safe_everywhere(tmp_path_factory, text: str) -> None:
    """Paths and URL prefixes land in shell commands, compose, nginx and env values."""
    data = {
        "purpose": "paths",
        "extends": "prod",
        "observability": {"tempo": {"storage_path": text}},
        "edge": {"backend_api": {"health_path": text}, "api_gateway": {"tls": {"certificate_path": text}}},
    }
    profiles = profile_with(tmp_path_factory.mktemp("paths"), "paths", data)
    try:
        files = build(profiles, "paths").files
    except ImageflowError as error:
        assert error.problems and all(p.location.line > 0 for p in error.problems)
        return
    assert not SHELL_OR_DIRECTIVE & set(text) and "/../" not in f"{text}/" and "/./" not in f"{text}/"
    assert text in files["compose/paths/vm0/docker-compose.yaml"] or text in files["compose/paths/vm0/.env.example"]


def refused(tmp: Path, data: dict) -> str:
    profiles = profile_with(tmp, "bad", {"purpose": "bad", "extends": "prod", **data})
    with pytest.raises(ImageflowError) as caught:
        build(profiles, "bad")
    assert all(p.location.line > 0 for p in caught.value.problems)
    return "\n".join(str(p) for p in caught.value.problems)


def test_integers_that_land_in_int32_fields_are_bounded(tmp_path: Path) -> None:
    message = refused(tmp_path, {"processing": {"services": [{"name": "resize", "replicas": 2**31}]}})
    assert "processing.services[1].replicas: 2147483648 is out of range" in message and "2147483647" in message


def test_service_names_are_dns_1035_labels(tmp_path: Path) -> None:
    message = refused(
        tmp_path, {"processing": {"services": [{"name": "9resize", "image": "r/x:1", "port": 1, "resources": {}}]}}
    )
    assert "'9resize' is not a DNS-1035 label" in message


@pytest.mark.parametrize(
    "memory, cpu",
    [
        ("1e3", "0.3"),  # vm0 has 0.2 CPUs left over web-ui's 0.2
        ("0.5", "100m"),
        ("100m", "200000u"),
        ("200000u", "1e-1"),
        ("64e6", "+0.2"),
        ("1Ki", "0.15"),
        ("1.5Gi", 0.25),
        (1e3, "2e-1"),
    ],
)
def test_every_kubernetes_quantity_form_parses(tmp_path: Path, memory: str, cpu: str) -> None:
    """Through the model, the capacity check and the compose limits; YAML numbers too."""
    data = {
        "purpose": "q",
        "extends": "prod",
        "edge": {
            "web_ui": {"resources": {"requests": {"cpu": "0", "memory": "0"}, "limits": {"cpu": cpu, "memory": memory}}}
        },
    }
    profiles = profile_with(tmp_path, "q", data)
    compose = yaml.safe_load(build(profiles, "q").files["compose/q/vm0/docker-compose.yaml"])
    limits = compose["services"]["web-ui"]["deploy"]["resources"]["limits"]
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", limits["cpus"]) and re.fullmatch(r"[0-9]+[bkmg]", limits["memory"])


@pytest.mark.parametrize("quantity", ["1e309", "1e999999999", "9223372036854775808"])
def test_an_out_of_range_quantity_is_a_located_error(tmp_path: Path, quantity: str) -> None:
    for written, shown in ((f'"{quantity}"', f"{quantity!r} "), (quantity, "")):  # a string, and a YAML number
        profiles = profile_with(tmp_path, "bad", {})
        (profiles / "bad.yaml").write_text(
            f"purpose: bad\nextends: prod\nstorage:\n  minio:\n    volumes:\n      size: {written}\n"
        )
        with pytest.raises(ImageflowError) as caught:
            build(profiles, "bad")
        (problem,) = caught.value.problems
        assert str(problem).startswith(f"{profiles / 'bad.yaml'}:6:13 storage.minio.volumes.size: {shown}")
        assert str(problem).endswith("is out of range: a Kubernetes quantity is at most 9223372036854775807")


def test_published_ports_are_unique_per_host(tmp_path: Path) -> None:
    message = refused(tmp_path, {"edge": {"api_gateway": {"http_port": 443, "https_port": 443}}})
    assert "duplicate port published on vm0 443" in message
