"""The edge gateway as the seed draws it (8.0.4: load balancer, WAF, API gateway), proven with
live requests: Debian's nginx with its ModSecurity module and the CRS runs the rendered files,
unchanged, in a private mount and network namespace, in front of a stub backend that also
verifies tokens. All traffic stays on that namespace's loopback."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import CRDS, PROFILES
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, validated
from imageflow_gen.plan.gateway import controls
from imageflow_gen.validate import tools as gates
from test_compose import nginx_test, stage_nginx

GOOD = {"Authorization": "Bearer good-token"}
SQL_INJECTION = "/v1/images?id=1%27%20OR%20%271%27%3D%271"
TRAVERSAL = "/v1/files?path=..%2F..%2F..%2F..%2Fetc%2Fpasswd"
REQUESTS = [
    {"name": "authenticated", "path": "/v1/images", "headers": {**GOOD, "X-Auth-User": "mallory"}},
    {"name": "anonymous", "path": "/v1/images"},
    {"name": "bad token", "path": "/v1/images", "headers": {"Authorization": "Bearer forged"}},
    {"name": "public, forged identity", "path": "/v1/auth/login", "method": "POST", "headers": {"X-Auth-User": "root"}},
    {"name": "sql injection", "path": SQL_INJECTION, "headers": GOOD},
    {"name": "path traversal", "path": TRAVERSAL, "headers": GOOD},
    {"name": "oversized", "path": "/v1/images", "method": "POST", "body": 2 * 1024 * 1024, "headers": GOOD},
    {
        "name": "image upload",
        "path": "/v1/images/upload",
        "method": "POST",
        "body": 2 * 1024 * 1024,
        "headers": {**GOOD, "Content-Type": "image/jpeg"},
    },
    {
        "name": "image elsewhere",
        "path": "/v1/images",
        "method": "POST",
        "body": 1024,
        "headers": {**GOOD, "Content-Type": "image/jpeg"},
    },
    {"name": "websocket, anonymous", "path": "/v1/ws", "headers": {"Upgrade": "websocket", "Connection": "Upgrade"}},
    {
        "name": "websocket",
        "path": "/v1/ws",
        "headers": {**GOOD, "Upgrade": "websocket", "Connection": "Upgrade", "X-Auth-User": "mallory"},
    },
    {"name": "burst", "path": "/v1/images", "headers": GOOD, "repeat": 80},
]


def _live(profile: str, tmp_path: Path) -> dict[str, Any]:
    """The requests against the profile's rendered gateway; what each got and what reached the
    backend, ModSecurity's audit log, nginx's errors."""
    files = build(PROFILES, profile, CRDS).files
    conf = files[f"compose/{profile}/vm0/nginx/api-gateway.conf"]
    modsecurity = files[f"compose/{profile}/vm0/nginx/modsecurity.conf"]
    hosts = {"backend-api": "127.0.0.2", "web-ui": "127.0.0.3"}
    _, mounts = stage_nginx(conf, tmp_path, hosts, modsecurity)
    (tmp_path / "requests.json").write_text(json.dumps(REQUESTS))
    driver = Path(__file__).parent / "gateway_live.py"
    script = (
        f"ip link set lo up && {mounts} && "
        f"exec {sys.executable} {driver} {gates.find('nginx')} {tmp_path / 'requests.json'}"
    )
    result = subprocess.run(
        ["unshare", "--mount", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    data["by_name"] = {r["name"]: r for r in data["results"]}
    return data


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _live("prod", tmp_path_factory.mktemp("prod"))


def test_an_authenticated_request_reaches_the_backend_with_the_verified_identity_only(prod: dict[str, Any]) -> None:
    got = prod["by_name"]["authenticated"]
    assert got["statuses"] == [200]
    assert got["reached"] == [{"path": "/v1/images", "identity": ["alice"], "upgrade": None}]  # not "mallory"


def test_without_valid_credentials_the_gateway_answers_401_and_the_backend_sees_nothing(prod: dict[str, Any]) -> None:
    for name in ("anonymous", "bad token"):
        got = prod["by_name"][name]
        assert got["statuses"] == [401] and got["reached"] == [], name


def test_a_public_route_passes_without_credentials_and_without_the_clients_identity(prod: dict[str, Any]) -> None:
    got = prod["by_name"]["public, forged identity"]
    assert got["statuses"] == [200]
    assert got["reached"] == [{"path": "/v1/auth/login", "identity": [], "upgrade": None}]


def test_a_websocket_is_authenticated_as_it_opens(prod: dict[str, Any]) -> None:
    """The upgrade request goes through the verifier like any other: refused without a token;
    with one, passed on as an upgrade with the verified identity only."""
    anonymous = prod["by_name"]["websocket, anonymous"]
    assert anonymous["statuses"] == [401] and anonymous["reached"] == []
    got = prod["by_name"]["websocket"]
    assert got["reached"] == [{"path": "/v1/ws", "identity": ["alice"], "upgrade": "websocket"}]


def test_the_waf_blocks_attacks_in_blocking_mode(prod: dict[str, Any]) -> None:
    for name, rule in (("sql injection", "942"), ("path traversal", "930")):
        got = prod["by_name"][name]
        assert got["statuses"] == [403] and got["reached"] == [], name
        assert re.search(rf'\[id "{rule}\d+"\]', prod["audit"]), name


def test_the_limits_answer_413_and_429(prod: dict[str, Any]) -> None:
    assert prod["by_name"]["oversized"]["statuses"] == [413]
    burst = prod["by_name"]["burst"]["statuses"]
    assert set(burst) == {200, 429} and burst[0] == 200 and burst[-1] == 429


def test_a_routes_exclusion_holds_on_that_route_only(prod: dict[str, Any]) -> None:
    """The upload route takes a 2 MiB image/jpeg (its class's body limit, its exclusion of
    920420, its body not read); the same content type anywhere else is blocked."""
    assert prod["by_name"]["image upload"]["statuses"] == [200]
    assert prod["by_name"]["image upload"]["reached"] == [
        {"path": "/v1/images/upload", "identity": ["alice"], "upgrade": None}
    ]
    assert prod["by_name"]["image elsewhere"]["statuses"] == [403]
    matched = [line for line in prod["audit"].splitlines() if '[id "920420"]' in line]
    assert matched and all('[uri "/v1/images"]' in line for line in matched)


def test_the_audit_log_holds_no_credentials(prod: dict[str, Any]) -> None:
    assert prod["audit"] and "good-token" not in prod["audit"] and "Authorization" not in prod["audit"]


def test_in_detection_mode_attacks_pass_and_are_logged(tmp_path: Path) -> None:
    dev = _live("dev", tmp_path)
    for name, rule in (("sql injection", "942"), ("path traversal", "930")):
        assert dev["by_name"][name]["statuses"] == [200], name
        assert re.search(rf'\[id "{rule}\d+"\]', dev["audit"]), name
    assert dev["by_name"]["anonymous"]["statuses"] == [401]  # authentication is not the WAF's


@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_the_header_claims_only_what_the_configuration_does(profile: str) -> None:
    """Each control the header names has its directive in the configuration, and the header
    names nothing else."""
    _, topo, _ = validated(PROFILES, profile)
    conf = build(PROFILES, profile, CRDS).files[f"compose/{profile}/vm0/nginx/api-gateway.conf"]
    header = [line[len("#   - ") :] for line in conf.splitlines() if line.startswith("#   - ")]
    claimed = controls(topo)
    assert header == [claim for claim, _ in claimed]
    body = "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
    for claim, directive in claimed:
        assert directive in body, claim


def test_the_gateway_publishes_only_80_and_443() -> None:
    import yaml

    files = build(PROFILES, "prod", CRDS).files
    services = yaml.safe_load(files["compose/prod/vm0/docker-compose.yaml"])["services"]
    assert services["api-gateway"]["ports"] == ["443:8443", "80:8080"]
    init = services["api-gateway-audit-init"]
    assert init["user"] == "0:0" and init["cap_add"] == ["CHOWN"] and init["network_mode"] == "none"
    assert services["api-gateway"]["depends_on"]["api-gateway-audit-init"] == {
        "condition": "service_completed_successfully"
    }


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_nginx_t_passes_with_modsecurity_and_the_crs(profile: str, tmp_path: Path) -> None:
    files = build(PROFILES, profile, CRDS).files
    conf = files[f"compose/{profile}/vm0/nginx/api-gateway.conf"]
    modsecurity = files[f"compose/{profile}/vm0/nginx/modsecurity.conf"]
    result = nginx_test(conf, tmp_path, ["backend-api", "web-ui"], modsecurity)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def _refused(tmp_path: Path, child: str) -> list[str]:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "c.yaml").write_text("purpose: x\nextends: prod\n" + child)
    with pytest.raises(ImageflowError) as caught:
        validated(profiles, "c")
    return [f"{p.key}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "      verifier: {service: nobody, path: /verify}\n",
            "edge.api_gateway.auth.verifier.service: 'nobody' can be no verifier: the backend or a workload on vm0 "
            "(defined: backend-api)",
        ),
        (
            "      verifier: {service: backend-api, port: admin, path: /verify}\n",
            "edge.api_gateway.auth.verifier.port: backend-api has no port named 'admin' (defined: grpc, http)",
        ),
        (
            "      verifier: {service: backend-api, path: /verify}\n      identity_headers: [Authorization]\n",
            "edge.api_gateway.auth.identity_headers[0]: Authorization is a header the gateway sets or passes "
            "itself; name the identity otherwise",
        ),
    ],
)
def test_an_auth_setting_is_checked_where_it_is_written(tmp_path: Path, text: str, message: str) -> None:
    assert message in _refused(tmp_path, "edge:\n  api_gateway:\n    auth:\n" + text)


def test_routes_are_the_apis_and_each_once(tmp_path: Path) -> None:
    child = "edge:\n  api_gateway:\n    routes:\n      - {path: /admin}\n      - {path: /v1/x}\n      - {path: /v1/x}\n"
    messages = _refused(tmp_path, child)
    assert "edge.api_gateway.routes[0].path: /admin is not under the API's /v1/, which these routes divide" in messages
    assert "edge.api_gateway.routes[2].path: /v1/x is routed twice" in messages


def test_backup_servers_take_over_only_when_every_replica_is_down(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "lb.yaml").write_text(
        "purpose: x\nextends: prod\nedge:\n  api_gateway:\n    load_balancing:\n"
        "      max_fails: 2\n      fail_timeout: 30\n      backups: [{address: 10.0.1.10, port: 30080}]\n"
    )
    files = build(profiles, "lb", CRDS).files
    conf = files["compose/lb/vm0/nginx/api-gateway.conf"]
    upstream = conf[conf.index("upstream backend_api {") :].split("}", 1)[0]
    assert "server backend-api:8000 max_fails=2 fail_timeout=30s;" in upstream
    assert "server 10.0.1.10:30080 backup;" in upstream and "keepalive 32;" in upstream
    result = nginx_test(conf, tmp_path / "t", ["backend-api", "web-ui"], files["compose/lb/vm0/nginx/modsecurity.conf"])
    assert result.returncode == 0, result.stderr
