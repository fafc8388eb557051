"""Resident gRPC processing services: a Deployment, a Service and, if asked, an autoscaler each."""

from __future__ import annotations

from typing import Any

from ..errors import Path
from ..model import Topology
from ..model.checks import MinioClient, minio_clients
from ..model.processing import Autoscaling, BlueGreenRelease, CanaryRelease, ProcessingService
from .common import (
    placement,
    GPU_RUNTIME_CLASS,
    NO_SIDECAR,
    needs_gpu_runtime,
    Spec,
    disruption_budget,
    Tunable,
    common_labels,
    container_security,
    grpc_probe,
    labels,
    pod_security,
    resources,
    service_dns,
    spec,
    tmp_volume,
    tunable,
)
from .messaging import bootstrap_servers, cluster_client
from .network import meshed_namespaces
from .storage import client_env, client_volumes, cluster_endpoint
from .observability import otlp_endpoint


def service_env(topo: Topology) -> list[dict[str, str]]:
    """Where a cluster workload finds MinIO (and its own MinIO user's keys), Kafka (and how it
    authenticates) and the OTel agent."""
    minio = topo.storage.minio
    return [
        {"name": "MINIO_ENDPOINT", "value": cluster_endpoint(minio)},
        {"name": "MINIO_REGION", "value": minio.region},
        *client_env(minio),
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": bootstrap_servers(topo)},
        *cluster_client(topo)[0],
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp_endpoint(topo)},
    ]


def service_files(topo: Topology, client: MinioClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts) a cluster workload adds for its MinIO user's keys and its Kafka client files."""
    _, volumes, mounts = cluster_client(topo)
    minio_volumes, minio_mounts = client_volumes(topo.storage.minio, client)
    return [*minio_volumes, *volumes], [*minio_mounts, *mounts]


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
    clients = {c.name: c for c in minio_clients(topo)}
    for i, service in enumerate(topo.processing.services):
        source = ("processing", "services", i)
        result += _release_specs(topo, service, source, clients[service.name])
    return result


def variants(service: ProcessingService) -> list[tuple[str, dict[str, str], Tunable, Tunable | None, bool]]:
    """(Deployment name, extra pod labels, image, fixed replicas, autoscaled) of each variant.

    rolling: the service itself. blue-green: `-blue` and `-green`, each labelled `color`, both
    at full size so the switch needs no scale-up. canary: the stable Deployment (the service's
    name, `track: stable`, autoscaled if asked) and `-canary` (`track: canary`). Images and
    replicas are tunable at install time, under the profile's own keys.
    """
    release, key = service.release, _key(service)
    image = tunable(key + ("image",), service.image, ProcessingService, "image")
    fixed = (
        None if service.autoscaling else tunable(key + ("replicas",), service.replicas, ProcessingService, "replicas")
    )
    scaled = bool(service.autoscaling)
    if isinstance(release, BlueGreenRelease):
        return [
            (
                f"{service.name}-{colour}",
                {"color": colour},
                tunable(
                    key + ("release", f"{colour}_image"),
                    getattr(release, f"{colour}_image") or service.image,
                    BlueGreenRelease,
                    f"{colour}_image",
                ),
                fixed,
                scaled,
            )
            for colour in ("blue", "green")
        ]
    if isinstance(release, CanaryRelease):
        return [
            (service.name, {"track": "stable"}, image, fixed, scaled),
            (
                f"{service.name}-canary",
                {"track": "canary"},
                tunable(
                    key + ("release", "canary_image"),
                    release.canary_image or service.image,
                    CanaryRelease,
                    "canary_image",
                ),
                tunable(
                    key + ("release", "canary_replicas"), release.canary_replicas, CanaryRelease, "canary_replicas"
                ),
                False,
            ),
        ]
    return [(service.name, {}, image, fixed, scaled)]


def _key(service: ProcessingService) -> tuple[str, ...]:
    """Where a service's tunables live: the profile's own path, with the service's name for its place."""
    return ("processing", "services", service.name)


def service_selector(service: ProcessingService) -> dict[str, Any]:
    """What the Service selects: the active colour for blue-green; the stable track for canary
    (callers without a sidecar never reach the canary through it); the service's pods otherwise."""
    release = service.release
    if isinstance(release, BlueGreenRelease):
        return {
            "app": service.name,
            "color": tunable(_key(service) + ("release", "active"), release.active, BlueGreenRelease, "active"),
        }
    if isinstance(release, CanaryRelease):
        return {"app": service.name, "track": "stable"}
    return {"app": service.name}


def load_balancing(service: ProcessingService) -> str:
    """client (a headless Service) unless the profile or a canary's weights ask for the mesh."""
    if service.load_balancing is not None:
        return service.load_balancing
    return "mesh" if isinstance(service.release, CanaryRelease) else "client"


def callers(topo: Topology, service: ProcessingService) -> list[tuple[str, str, bool]]:
    """(caller, its namespace, whether it has a sidecar) for each workload that calls `service`:
    the backend API when it runs in the cluster, and the processing services that call it. Only
    callers with a sidecar follow the mesh's routes (a canary's weight) and balance per request."""
    meshed = set(meshed_namespaces(topo))
    backend, namespace = topo.edge.backend_api, topo.processing.namespace
    result = [(backend.name, backend.namespace)] if "cluster" in backend.runs_on else []
    result += [(s.name, namespace) for s in topo.processing.services if service.name in s.calls]
    return [(name, ns, ns in meshed) for name, ns in result]


def canary_service(service: ProcessingService) -> str:
    """The Service of a canary's own pods: `<name>-canary`."""
    return f"{service.name}-canary"


def _release_specs(topo: Topology, service: ProcessingService, source: Path, client: MinioClient) -> list[Spec]:
    result = []
    namespace = topo.processing.namespace
    for name, extra, image, replicas, autoscaled in variants(service):
        result.append(_deployment(topo, service, source, client, name, extra, image, replicas))
        if autoscaled and service.autoscaling:
            fewest = service.autoscaling.min_replicas
        else:
            fewest = replicas.value if replicas is not None else 1
        if isinstance(fewest, int) and fewest > 1:
            # A drain takes one pod of it at a time, so the others keep serving.
            selector = {"app": service.name, **extra}
            result.append(disruption_budget(name, namespace, source, "processing", selector))
        if autoscaled and service.autoscaling:
            result.append(
                spec(
                    "HorizontalPodAutoscaler",
                    "horizontalpodautoscaler",
                    source + ("autoscaling",),
                    name=name,
                    namespace=namespace,
                    labels=_labels(service),
                    target_kind="Deployment",
                    min_replicas=tunable(
                        _key(service) + ("autoscaling", "min_replicas"),
                        service.autoscaling.min_replicas,
                        Autoscaling,
                        "min_replicas",
                    ),
                    max_replicas=tunable(
                        _key(service) + ("autoscaling", "max_replicas"),
                        service.autoscaling.max_replicas,
                        Autoscaling,
                        "max_replicas",
                    ),
                    cpu_utilization=service.autoscaling.target_cpu_utilization,
                )
            )
    result.append(_service(topo, service, source))
    if isinstance(service.release, CanaryRelease):
        result += _canary_routing(topo, service, service.release, source + ("release",))
    return result


def _canary_routing(topo: Topology, service: ProcessingService, release: CanaryRelease, source: Path) -> list[Spec]:
    """The canary's own Service, and an Istio route on the service's host that sends the
    canary's weight to it: callers in the mesh get the split; callers without a sidecar reach
    the stable pods only (the main Service selects track: stable), or the canary by its name."""
    namespace = topo.processing.namespace
    host = service_dns(service.name, namespace)
    weight = release.canary_weight
    key = _key(service) + ("release", "canary_weight")
    route = [
        {"destination": {"host": target, "port": {"number": service.port}}, "weight": w}
        for target, w in (
            (host, tunable(key, weight, CanaryRelease, "canary_weight", complement=100)),
            (service_dns(canary_service(service), namespace), tunable(key, weight, CanaryRelease, "canary_weight")),
        )
    ]
    return [
        _service(
            topo, service, source, name=canary_service(service), selector={"app": service.name, "track": "canary"}
        ),
        spec(
            "VirtualService",
            "virtualservice",
            source,
            name=service.name,
            namespace=namespace,
            labels=_labels(service),
            hosts=[host],
            gateways=None,
            http=[{"route": route}],
        ),
    ]


def _labels(service: ProcessingService) -> dict[str, str]:
    # `tier: processing` is what the seed's processing-isolation policy selects.
    return labels(service.name, "processing", tier="processing")


def _deployment(
    topo: Topology,
    service: ProcessingService,
    source: Path,
    client: MinioClient,
    name: str,
    extra: dict[str, str],
    image: Tunable,
    replicas: Tunable | None,
) -> Spec:
    volume, mount = tmp_volume()
    volumes, mounts = service_files(topo, client)
    container = {
        "name": service.name,
        "image": image,
        "ports": [{"name": "grpc", "containerPort": service.port, "protocol": "TCP"}],
        "env": [{"name": "GRPC_PORT", "value": str(service.port)}, *service_env(topo)],
        "resources": resources(service.resources, _key(service), service.gpu),
        "volumeMounts": [mount, *mounts],
        "livenessProbe": grpc_probe(service.port, delay=10),
        "readinessProbe": grpc_probe(service.port),
        "securityContext": container_security(),
    }
    pod: dict[str, Any] = {
        "securityContext": pod_security(),
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [volume, *volumes],
    }
    pod.update(placement(topo, service, {"app": service.name, **extra}))
    pod_labels = dict(sorted({**_labels(service), **extra}.items()))
    return spec(
        "Deployment",
        "deployment",
        source,
        name=name,
        namespace=topo.processing.namespace,
        labels=_labels(service),
        selector={"app": service.name, **extra},
        pod_labels=pod_labels,
        replicas=replicas,
        pod=pod,
    )


def _service(
    topo: Topology,
    service: ProcessingService,
    source: Path,
    name: str | None = None,
    selector: dict[str, Any] | None = None,
) -> Spec:
    return spec(
        "Service",
        "service",
        source,
        name=name or service.name,
        namespace=topo.processing.namespace,
        labels=_labels(service),
        selector=selector or service_selector(service),
        headless=load_balancing(service) == "client",
        ports=[{"name": "grpc", "port": service.port, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"}],
    )


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
