"""Resident gRPC processing services: a Deployment, a Service and, if asked, an autoscaler each."""

from __future__ import annotations

from typing import Any

from ..model import Topology
from ..model.cluster import NODE_TYPE_LABEL
from ..model.processing import ProcessingService
from .common import (Spec, common_labels, container_security, grpc_probe, labels, pod_security, resources, service_dns, spec,
                     tmp_volume)
from .messaging import bootstrap_servers
from .observability import otlp_endpoint


def tolerations_for(topo: Topology, node_type: str | None) -> list[dict[str, Any]]:
    """Tolerate the taints of the nodes a workload is placed on (e.g. the GPU node's)."""
    if node_type is None:
        return []
    taints = {(t.key, t.value, t.effect) for n in topo.cluster.nodes if n.node_type == node_type for t in n.taints}
    return [{"key": key, "operator": "Equal", "value": value, "effect": effect}
            for key, value, effect in sorted(taints)]


def service_env(topo: Topology) -> list[dict[str, str]]:
    """Where a cluster workload finds MinIO, Kafka and the OTel agent."""
    minio = topo.storage.minio
    return [{"name": "MINIO_ENDPOINT", "value": f"{service_dns('minio', minio.namespace)}:{minio.port}"},
            {"name": "MINIO_REGION", "value": minio.region},
            {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": bootstrap_servers(topo)},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp_endpoint(topo)}]


GPU_RUNTIME_CLASS = "nvidia"


def specs(topo: Topology) -> list[Spec]:
    result = []
    if any(s.gpu for s in topo.processing.services):
        # K3s registers the NVIDIA container runtime as the handler `nvidia` when the node has
        # the NVIDIA container toolkit; GPU pods must ask for it by RuntimeClass.
        result.append(spec("RuntimeClass", "runtimeclass", ("processing", "services"), name=GPU_RUNTIME_CLASS,
                           labels=common_labels(), handler=GPU_RUNTIME_CLASS))
    for i, service in enumerate(topo.processing.services):
        source = ("processing", "services", i)
        result += [_deployment(topo, service, source), _service(topo, service, source)]
        if service.autoscaling:
            result.append(spec("HorizontalPodAutoscaler", "horizontalpodautoscaler", source + ("autoscaling",),
                               name=service.name, namespace=topo.processing.namespace,
                               labels=_labels(service), target_kind="Deployment",
                               min_replicas=service.autoscaling.min_replicas,
                               max_replicas=service.autoscaling.max_replicas,
                               cpu_utilization=service.autoscaling.target_cpu_utilization))
    return result


def _labels(service: ProcessingService) -> dict[str, str]:
    # `tier: processing` is what the seed's processing-isolation policy selects.
    return labels(service.name, "processing", tier="processing")


def _deployment(topo: Topology, service: ProcessingService, source: tuple) -> Spec:
    volume, mount = tmp_volume()
    container = {
        "name": service.name,
        "image": service.image,
        "ports": [{"name": "grpc", "containerPort": service.port, "protocol": "TCP"}],
        "env": [{"name": "GRPC_PORT", "value": str(service.port)}, *service_env(topo)],
        "resources": resources(service.resources, service.gpu),
        "volumeMounts": [mount],
        "livenessProbe": grpc_probe(service.port, delay=10),
        "readinessProbe": grpc_probe(service.port),
        "securityContext": container_security(),
    }
    pod: dict[str, Any] = {"securityContext": pod_security(), "automountServiceAccountToken": False,
                           "containers": [container], "volumes": [volume]}
    if service.gpu:
        pod["runtimeClassName"] = GPU_RUNTIME_CLASS
    if service.node_type:
        pod["nodeSelector"] = {NODE_TYPE_LABEL: service.node_type}
    if tolerations := tolerations_for(topo, service.node_type):
        pod["tolerations"] = tolerations
    return spec("Deployment", "deployment", source, name=service.name, namespace=topo.processing.namespace,
                labels=_labels(service), selector={"app": service.name}, pod_labels=_labels(service),
                replicas=None if service.autoscaling else service.replicas, pod=pod)


def _service(topo: Topology, service: ProcessingService, source: tuple) -> Spec:
    return spec("Service", "service", source, name=service.name, namespace=topo.processing.namespace,
                labels=_labels(service), selector={"app": service.name}, headless=False,
                ports=[{"name": "grpc", "port": service.port, "targetPort": "grpc", "protocol": "TCP",
                        "appProtocol": "grpc"}])
