"""The seed's slots as workloads: each processing service and each edge component that runs in
the cluster becomes a `Workload` (model/workloads.py) with a `Rendering`, and plan/workloads.py
renders it by the one code path of every workload.

What a slot keeps as its own typed sugar is what it means beyond a container: a processing
service is a gRPC port, called by name, wired to the OTel agent (and to what its `uses` name),
released rolling, blue-green or canary; an edge component is an HTTP port with a health path.
The slot's keys stay where they are in the profile (and its tunables in the Helm values).
"""

from __future__ import annotations

from typing import Any

from ..model import Topology
from ..model.edge import EdgeComponent
from ..model.processing import ProcessingService
from ..model.release import CanaryRelease
from ..model.workloads import Placement, Workload, env_in
from .common import tunable
from .observability import otlp_endpoint
from .workloads import Rendering, Variant, release_selector, release_variants

PROCESSING = "processing"
EDGE = "edge"
# The probes of a slot: liveness waits longer than readiness, so a slow start is not a restart.
_LIVENESS_DELAY, _READINESS_DELAY = 10, 5


def service_env(topo: Topology) -> list[dict[str, str]]:
    """Where a slot sends its telemetry: the OTel agent on its node. (Its MinIO and Kafka wiring
    follows from its uses, plan/clients.py.)"""
    return [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp_endpoint(topo)}]


def _probes(check: str, port: str, path: str | None = None) -> dict[str, Any]:
    target = {"port": port, **({"path": path} if path is not None else {})}
    return {
        "liveness": {check: target, "initial_delay": _LIVENESS_DELAY},
        "readiness": {check: target, "initial_delay": _READINESS_DELAY},
    }


# ---- processing services ------------------------------------------------------------------


def service_key(service: ProcessingService) -> tuple[str, ...]:
    """Where a service's tunables live: the profile's own path, with the service's name for its place."""
    return ("processing", "services", service.name)


def load_balancing(service: ProcessingService) -> str:
    """client (a headless Service) unless the profile or a canary's weights ask for the mesh."""
    if service.load_balancing is not None:
        return service.load_balancing
    return "mesh" if isinstance(service.release, CanaryRelease) else "client"


def processing_workload(topo: Topology, service: ProcessingService) -> tuple[Workload, Rendering]:
    """A processing service as a workload: its gRPC port (named `grpc`, also in GRPC_PORT),
    probed by the gRPC health protocol; the OTel agent wired in."""
    workload = Workload.model_validate(
        {
            "name": service.name,
            "namespace": topo.processing.namespace,
            "image": service.image,
            "replicas": service.replicas,
            "autoscaling": service.autoscaling,
            "ports": [{"name": "grpc", "port": service.port, "protocol": "grpc"}],
            "env": [{"name": "GRPC_PORT", "value": str(service.port)}, *service.env],
            "uses": service.uses,
            "probes": _probes("grpc", "grpc"),
            "resources": service.resources,
            "gpu": service.gpu,
            "node_type": service.node_type,
            "availability": service.availability,
        }
    )
    rendering = Rendering(
        component=PROCESSING,
        key=service_key(service),
        variants=release_variants(service, service_key(service), ProcessingService),
        selector=release_selector(service.name, service_key(service), service.release),
        headless=load_balancing(service) == "client",
        # `tier: processing` is what the seed's processing-isolation policy selects.
        labels={"tier": "processing"},
        env=service_env(topo),
        service_part=(),
        canary=service.release if isinstance(service.release, CanaryRelease) else None,
    )
    return workload, rendering


# ---- edge components ----------------------------------------------------------------------


def edge_fields(component: EdgeComponent, place: Placement) -> dict[str, Any]:
    """The workload fields of an edge component where it runs (`place`): its image, replicas,
    HTTP port (named `http`) and further ports, its own env set there, and resources."""
    return {
        "name": component.name,
        "image": component.image,
        "replicas": component.replicas,
        "ports": [{"name": "http", "port": component.port, "protocol": "http"}, *component.ports],
        "env": env_in(component.env, place),
        "uses": env_in(component.uses, place),
        "resources": component.resources,
    }


def edge_workload(topo: Topology, component: EdgeComponent, key: tuple[str, ...]) -> tuple[Workload, Rendering]:
    """An edge component in the cluster as a workload: its HTTP port (named `http`), probed at its
    health path; the backend API wired to the OTel agent as the processing services are."""
    workload = Workload.model_validate(
        {
            **edge_fields(component, "cluster"),
            "namespace": component.namespace,
            "probes": _probes("http", "http", component.health_path),
            "availability": component.availability,
        }
    )
    rendering = Rendering(
        component=EDGE,
        key=key,
        variants=[
            Variant(
                component.name,
                {},
                tunable(key + ("image",), component.image, EdgeComponent, "image"),
                tunable(key + ("replicas",), component.replicas, EdgeComponent, "replicas"),
                False,
            )
        ],
        selector={"app": component.name},
        headless=False,
        env=service_env(topo) if component is topo.edge.backend_api else [],
        service_part=(),
    )
    return workload, rendering
