"""Resident gRPC processing services (seed 8.0.3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Autoscaling, Availability, Resources
from .release import Release, RollingRelease
from .workloads import EnvVar, Use
from .types import Count, Image, LabelValue, Name, Port, ServiceName, Strict


class ProcessingService(Strict):
    """A resident gRPC service, called directly by the pipeline."""

    name: ServiceName
    """Service name (Deployment and Service)."""
    image: Image
    """Container image, pinned."""
    port: Port = 8080
    """gRPC port (the seed's policy admits TCP 8080)."""
    replicas: Count = 1
    """Replicas when not autoscaled."""
    resources: Resources
    """Requests and limits."""
    gpu: Count = 0
    """NVIDIA GPUs per pod."""
    node_type: LabelValue | None = None
    """Value of the nodes' `node-type` label to place the pods on (e.g. gpu-enabled)."""
    autoscaling: Autoscaling | None = None
    """Scale horizontally between min and max replicas."""
    calls: list[ServiceName] = Field(default_factory=list)
    """Processing services this one calls over gRPC (a gateway calls the services it fronts):
    the network policies admit exactly these calls between processing services."""
    load_balancing: Literal["client", "mesh"] | None = None
    """How requests spread over the pods. client: a headless Service, so a caller resolves every
    pod and balances each request itself (gRPC: target `dns:///<name>:<port>` with the
    round_robin policy) and new pods get traffic as the autoscaler adds them; mesh: a
    ClusterIP Service whose callers' Istio sidecars balance each request (without a sidecar,
    gRPC's one long connection stays on one pod). Default: client, mesh for a canary."""
    env: list[EnvVar] = Field(default_factory=list)
    """Environment variables of the application's own, besides what the service is given (GRPC_PORT
    and the MinIO, Kafka and OTel settings, which it may not set): plain values, Secret keys,
    other workloads' endpoints (workloads.<name>.env has the vocabulary)."""
    uses: list[Use] = Field(default_factory=list)
    """What it talks to besides what it is wired to (workloads.<name>.uses has the vocabulary)."""
    release: Release = Field(default_factory=RollingRelease)
    """Release strategy: rolling (default), blue-green or canary."""
    availability: Availability | None = None
    """What the workload must survive in the cluster: {survives: node-loss}, or {survives: nothing,
    reason: ...} for a workload that cannot (say why). Unset: nothing is promised."""


class Processing(Strict):
    """Where the processing services run and what they are."""

    namespace: Name
    """Namespace of the services (seed: imageflow-processing)."""
    services: list[ProcessingService] = Field(default_factory=list)
    """The services."""
    health_probe_image: Image = "ghcr.io/grpc-ecosystem/grpc-health-probe:v0.4.28"
    """Image of grpc_health_probe, which the Helm chart's `helm test` runs against each service."""
