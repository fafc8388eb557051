"""Resident gRPC processing services: each a workload (plan/slots.py) rendered as every workload
is, plus what its release adds (a canary's Service and route) and its `helm test` pods."""

from __future__ import annotations

from typing import Any

from ..model import Topology
from ..model.checks import placed_env, slot_envs
from ..model.processing import ProcessingService
from .common import (
    GPU_RUNTIME_CLASS,
    NO_SIDECAR,
    Spec,
    common_labels,
    container_security,
    labels,
    needs_gpu_runtime,
    pod_security,
    service_dns,
    spec,
)
from .common import meshed_namespaces
from .slots import processing_workload
from .workloads import render


def specs(topo: Topology) -> list[Spec]:
    result = []
    if needs_gpu_runtime(topo):
        # K3s registers the NVIDIA container runtime as the handler `nvidia` when the node has
        # the NVIDIA container toolkit; GPU pods must ask for it by RuntimeClass.
        result.append(
            spec(
                "RuntimeClass",
                "runtimeclass",
                ("processing", "services"),
                name=GPU_RUNTIME_CLASS,
                labels=common_labels(),
                handler=GPU_RUNTIME_CLASS,
            )
        )
    for i, service in enumerate(topo.processing.services):
        workload, how = processing_workload(topo, service)
        result += render(topo, workload, ("processing", "services", i), how)
    return result


def callers(topo: Topology, service: ProcessingService) -> list[tuple[str, str, bool]]:
    """(caller, its namespace, whether it has a sidecar) for each cluster workload that calls
    `service`: by an env endpoint or a use of its port, or as a processing service's `calls`.
    Only callers with a sidecar follow the mesh's routes (a canary's weight) and balance per
    request."""
    meshed = set(meshed_namespaces(topo))
    found: list[tuple[str, str]] = []
    everyone: list[Any] = [*slot_envs(topo), *topo.workloads]
    for w in everyone:
        if w.namespace is not None and any(
            var.endpoint is not None and var.endpoint.workload == service.name for _, var in placed_env(w)
        ):
            found.append((w.name, w.namespace))
    namespace = topo.processing.namespace
    found += [(s.name, namespace) for s in topo.processing.services if service.name in s.calls]
    unique = list(dict.fromkeys(found))
    return [(name, ns, ns in meshed) for name, ns in unique]


TEST_LABEL = "imageflow.io/helm-test"


def test_specs(topo: Topology) -> list[Spec]:
    """`helm test`: a Pod per processing service that asks its gRPC health service, and the two
    policies that let those pods through the processing namespace's default deny."""
    processing = topo.processing
    namespace, source = processing.namespace, ("processing", "health_probe_image")
    skip = "a helm test pod runs one check and exits; "
    result = []
    for i, service in enumerate(processing.services):
        name = f"{service.name}-grpc-health-test"
        container = {
            "name": "grpc-health",
            "image": processing.health_probe_image,
            "args": [
                f"-addr={service_dns(service.name, namespace)}:{service.port}",
                "-connect-timeout=5s",
                "-rpc-timeout=5s",
            ],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
            "securityContext": container_security(),
        }
        result.append(
            spec(
                "Pod",
                "pod",
                ("processing", "services", i, "name"),
                name=name,
                namespace=namespace,
                labels=labels(f"{service.name}-test", "test", **{TEST_LABEL: "true"}, **NO_SIDECAR),
                annotations={
                    "checkov.io/skip1": f"CKV_K8S_8={skip}a liveness probe has nothing to watch",
                    "checkov.io/skip2": f"CKV_K8S_9={skip}nothing routes traffic to it",
                },
                pod={
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "containers": [container],
                },
            )
        )
    if result:
        result += [
            spec(
                "NetworkPolicy",
                "networkpolicy",
                source,
                name="allow-helm-test-egress",
                namespace=namespace,
                labels=common_labels(),
                pod_selector={TEST_LABEL: "true"},
                policy_types=["Egress"],
                egress=[{"to": [{"podSelector": {"matchLabels": {"tier": "processing"}}}]}],
            ),
            spec(
                "NetworkPolicy",
                "networkpolicy",
                source,
                name="allow-helm-test-ingress",
                namespace=namespace,
                labels=common_labels(),
                pod_selector={"tier": "processing"},
                policy_types=["Ingress"],
                ingress=[{"from": [{"podSelector": {"matchLabels": {TEST_LABEL: "true"}}}]}],
            ),
        ]
    return result
