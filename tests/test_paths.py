"""The render-time path gate: every address a workload is given and every gateway route is
followed through DNS, the Service and both ends' NetworkPolicies on the rendered objects; a
broken leg is a located error naming the path and the layer, and nothing is written."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from conftest import CRDS, PROFILES, REPO, cli_without
from imageflow_gen.errors import ValidationFailed
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate.paths import CALL_VARIABLES, path_problems

PROFILE_NAMES = ["base", "dev", "staging", "prod"]


@pytest.fixture(scope="module")
def prod() -> list[dict[str, Any]]:
    return objects(validated(PROFILES, "prod")[2])


def _without(objs: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    kept = [o for o in objs if (o["kind"], o["metadata"]["name"]) != (kind, name)]
    assert len(kept) < len(objs), (kind, name)
    return kept


def _edited(objs: list[dict[str, Any]], kind: str, name: str, edit: Any) -> list[dict[str, Any]]:
    result = copy.deepcopy(objs)
    (target,) = [o for o in result if (o["kind"], o["metadata"]["name"]) == (kind, name)]
    edit(target)
    return result


def _messages(objs: list[dict[str, Any]]) -> list[str]:
    return [p.message for p in path_problems(objs)]


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_shipped_profile_has_every_path_open(profile: str) -> None:
    objs = objects(validated(PROFILES, profile)[2])
    assert path_problems(objs) == []
    callers = [
        o
        for o in objs
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if e["name"] in CALL_VARIABLES
    ]
    # Not vacuous: each of the backend and the four processing services calls at least two
    # (the OTel agent, and MinIO or Kafka).
    assert len(callers) >= 2 * 5 and any(o["kind"] == "VirtualService" for o in objs)


def test_a_missing_policy_is_the_policy_layer_of_the_path(prod: list[dict[str, Any]]) -> None:
    # (The processing pods' egress to MinIO is open twice: the seed's processing-isolation too.)
    messages = _messages(_without(prod, "NetworkPolicy", "allow-resize-to-minio-ingress"))
    assert messages == [
        f"imageflow-processing/resize-{colour} -> minio.imageflow-storage.svc.cluster.local:9000 (MINIO_ENDPOINT): "
        f"NetworkPolicy: imageflow-storage/minio's ingress denies imageflow-processing/resize-{colour} on 9000"
        for colour in ("blue", "green")
    ]
    messages = _messages(_without(prod, "NetworkPolicy", "allow-backend-api-to-minio-ingress"))
    assert messages == [
        "imageflow-backend/backend-api -> minio.imageflow-storage.svc.cluster.local:9000 (MINIO_ENDPOINT): "
        "NetworkPolicy: imageflow-storage/minio's ingress denies imageflow-backend/backend-api on 9000"
    ]


def test_a_service_port_or_target_that_moved_is_the_service_layer(prod: list[dict[str, Any]]) -> None:
    def port(obj: dict[str, Any]) -> None:
        obj["spec"]["ports"][0]["port"] = 9002

    assert "Service imageflow-storage/minio: no port 9000" in _messages(_edited(prod, "Service", "minio", port))[0]

    def target(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "s3"

    messages = _messages(_edited(prod, "StatefulSet", "minio", target))
    assert messages and all(
        "Service imageflow-storage/minio: pod minio has no container port api" in m for m in messages
    )

    def selector(obj: dict[str, Any]) -> None:
        obj["spec"]["selector"] = {"app": "tempo-old"}

    messages = _messages(_edited(prod, "Service", "tempo", selector))
    assert messages == []  # nothing is configured to call Tempo's Service but the agent's exporter config
    messages = _messages(_edited(prod, "Service", "otel-agent", selector))
    assert any(
        "Service imageflow-observability/otel-agent: its selector {'app': 'tempo-old'} selects no pods" in m
        for m in messages
    )


def test_a_missing_service_or_address_is_the_dns_layer(prod: list[dict[str, Any]]) -> None:
    messages = _messages(_without(prod, "Service", "otel-agent"))
    assert any(m.endswith("DNS: no Service 'otel-agent' in namespace 'imageflow-observability'") for m in messages)
    messages = _messages(_without(prod, "EndpointSlice", "kafka-vm"))
    assert any("Service imageflow-backend/kafka: no EndpointSlice address for port 9094" in m for m in messages)

    def outside(obj: dict[str, Any]) -> None:
        env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
        next(e for e in env if e["name"] == "MINIO_ENDPOINT")["value"] = "http://minio.example.com:9000"

    assert _messages(_edited(prod, "Deployment", "filter", outside)) == [
        "imageflow-processing/filter -> minio.example.com:9000 (MINIO_ENDPOINT): DNS: 'minio.example.com' is not "
        "a Service of the cluster (<service>.<namespace>.svc.cluster.local)"
    ]


def test_kafka_addresses_are_checked_against_the_callers_egress(prod: list[dict[str, Any]]) -> None:
    messages = _messages(_without(prod, "NetworkPolicy", "allow-backend-api-to-kafka-egress"))
    assert [m.rsplit(": ", 2)[-2:] for m in messages] == [
        ["NetworkPolicy", f"imageflow-backend/backend-api's egress denies 10.0.2.10:{port}"]
        for port in (9094, 19094, 29094)
    ]


def test_a_gateway_route_is_followed_to_its_pods(prod: list[dict[str, Any]]) -> None:
    messages = _messages(_without(prod, "NetworkPolicy", "allow-gateway-to-web-ui-ingress"))
    assert messages == [
        "gateway imageflow-gateway -> web-ui:8080 (VirtualService imageflow-web/web-ui): NetworkPolicy: "
        "imageflow-web/web-ui's ingress denies istio-system/istio-ingressgateway on 8080"
    ]


def test_render_refuses_a_broken_path_at_the_callers_profile_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import imageflow_gen.pipeline as pipeline

    real = pipeline.objects
    monkeypatch.setattr(
        pipeline, "objects", lambda plan: _without(real(plan), "NetworkPolicy", "allow-backend-api-to-minio-ingress")
    )
    with pytest.raises(ValidationFailed) as caught:
        build(PROFILES, "prod", CRDS)
    (problem,) = caught.value.problems
    assert problem.key == "edge.backend_api" and problem.location.file.endswith("prod.yaml")
    assert problem.location.line > 0
    assert "NetworkPolicy: imageflow-storage/minio's ingress denies imageflow-backend/backend-api" in problem.message


_BROKEN = cli_without("imageflow_gen.pipeline", "allow-gateway-to-backend-api-ingress")


def test_the_cli_reports_the_broken_leg_and_writes_nothing(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN, "render", "--profile", "dev", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    assert (
        "profiles/base.yaml:282:7 network.routes[0]: gateway imageflow-gateway -> backend-api:8000 (VirtualService "
        "imageflow-backend/imageflow-api): NetworkPolicy: imageflow-backend/backend-api's ingress denies "
        "istio-system/istio-ingressgateway on 8000"
    ) in proc.stderr and "nothing written" in proc.stderr
