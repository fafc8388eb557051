"""The render-time path gate: every address a workload is given and every gateway route is
followed through DNS, the Service and both ends' NetworkPolicies on the rendered objects; a
broken leg is a located error naming the path and the layer, and nothing is written."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# The policy and peer lookups are indexed (a pod is compared only with the selectors that can
# select it); this brute force, written from the NetworkPolicy semantics, is what they must equal.
def _selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in ((selector or {}).get("matchLabels") or {}).items())


def _reference_admits(cluster: Any, pod: Any, direction: str, port: int, other: Any) -> bool:
    from ipaddress import ip_address, ip_network

    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in cluster.policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in p["spec"]["policyTypes"]
        and _selector_matches(p["spec"]["podSelector"], pod.labels)
    ]

    def peer_admits(policy: dict[str, Any], peer: dict[str, Any]) -> bool:
        if "ipBlock" in peer:
            return isinstance(other, str) and ip_address(other) in ip_network(peer["ipBlock"]["cidr"])
        if isinstance(other, str):
            return False
        if "namespaceSelector" in peer:
            return _selector_matches(peer["namespaceSelector"], cluster.ns_labels(other.namespace)) and (
                _selector_matches(peer.get("podSelector"), other.labels)
            )
        return other.namespace == policy["metadata"]["namespace"] and _selector_matches(
            peer.get("podSelector"), other.labels
        )

    return not selecting or any(
        (not rule.get("ports") or any(p["port"] == port for p in rule["ports"]))
        and (not rule.get(peers) or any(peer_admits(policy, peer) for peer in rule[peers]))
        for policy in selecting
        for rule in policy["spec"].get(key, [])
    )


_LABELS = st.dictionaries(st.sampled_from(["app", "tier", "team"]), st.sampled_from(["x", "y"]), max_size=2)
_SELECTOR = st.one_of(st.just({}), _LABELS.map(lambda labels: {"matchLabels": labels}))
_PEER = st.one_of(
    _SELECTOR.map(lambda s: {"podSelector": s}),
    st.just({}),
    st.tuples(_LABELS, st.one_of(st.none(), _SELECTOR)).map(
        lambda t: {"namespaceSelector": {"matchLabels": t[0]}, **({"podSelector": t[1]} if t[1] is not None else {})}
    ),
    st.sampled_from(["10.0.0.0/24", "10.0.1.5/32"]).map(lambda cidr: {"ipBlock": {"cidr": cidr}}),
)
_RULE = st.fixed_dictionaries(
    {}, optional={"peers": st.lists(_PEER, max_size=3), "ports": st.lists(st.sampled_from([80, 90]), max_size=2)}
)


@given(
    pods=st.lists(st.tuples(st.sampled_from(["a", "b"]), _LABELS), min_size=1, max_size=5),
    policies=st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            _SELECTOR,
            st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
            st.lists(_RULE, max_size=2),
        ),
        max_size=5,
    ),
    namespace_labels=st.tuples(_LABELS, _LABELS),
)
@settings(max_examples=300, deadline=None)
def test_the_indexed_policy_lookup_equals_the_brute_force(
    pods: list[tuple[str, dict[str, str]]],
    policies: list[tuple[str, dict[str, Any], list[str], list[dict[str, Any]]]],
    namespace_labels: tuple[dict[str, str], dict[str, str]],
) -> None:
    from imageflow_gen.validate.paths import Cluster

    objs: list[dict[str, Any]] = [
        {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        for name, labels in zip(["a", "b"], namespace_labels, strict=True)
    ]
    objs += [
        {
            "kind": "Deployment",
            "metadata": {"namespace": namespace, "name": f"pod-{i}"},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c"}]}}},
        }
        for i, (namespace, labels) in enumerate(pods)
    ]
    for i, (namespace, selector, types, rules) in enumerate(policies):
        spec: dict[str, Any] = {"podSelector": selector, "policyTypes": types}
        for direction in types:
            key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
            spec[key] = [
                {
                    **({peers: rule["peers"]} if "peers" in rule else {}),
                    **({"ports": [{"port": p} for p in rule["ports"]]} if "ports" in rule else {}),
                }
                for rule in rules
            ]
        objs.append({"kind": "NetworkPolicy", "metadata": {"namespace": namespace, "name": f"np-{i}"}, "spec": spec})
    cluster = Cluster(objs)
    for pod in cluster.pods:
        for port in (80, 90):
            for other in [*cluster.pods, "10.0.0.7", "10.0.1.5", "192.168.0.1"]:
                assert cluster.egress_admits(pod, port, other) == _reference_admits(cluster, pod, "Egress", port, other)
                if not isinstance(other, str):
                    assert cluster.ingress_admits(pod, port, other) == _reference_admits(
                        cluster, pod, "Ingress", port, other
                    )
        for namespace in ("a", "b"):
            selector = dict(pod.labels) or {"app": "x"}
            expected = [
                p
                for p in cluster.pods
                if p.namespace == namespace and _selector_matches({"matchLabels": selector}, p.labels)
            ]
            assert cluster.selected(namespace, selector) == expected
