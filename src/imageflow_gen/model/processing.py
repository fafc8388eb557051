"""Resident gRPC processing services (seed 8.0.3)."""

from __future__ import annotations

from pydantic import Field

from .common import Resources
from .types import Count, Image, Name, Port, Positive, Strict, UtilizationPercent


class Autoscaling(Strict):
    """Horizontal pod autoscaling on CPU utilisation."""

    min_replicas: Positive
    """Fewest replicas."""
    max_replicas: Positive
    """Most replicas."""
    target_cpu_utilization: UtilizationPercent
    """Average CPU utilisation, in whole percent of the requests, that the autoscaler aims for."""


class ProcessingService(Strict):
    """A resident gRPC service, called directly by the pipeline."""

    name: Name
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
    node_type: str | None = None
    """Value of the nodes' `node-type` label to place the pods on (e.g. gpu-enabled)."""
    autoscaling: Autoscaling | None = None
    """Scale horizontally between min and max replicas."""


class Processing(Strict):
    """Where the processing services run and what they are."""

    namespace: Name
    """Namespace of the services (seed: imageflow-processing)."""
    services: list[ProcessingService] = Field(default_factory=list)
    """The services."""
    health_probe_image: Image = "ghcr.io/grpc-ecosystem/grpc-health-probe:v0.4.28"
    """Image of grpc_health_probe, which the Helm chart's `helm test` runs against each service."""
