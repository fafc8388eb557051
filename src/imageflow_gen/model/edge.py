"""The VM0 edge: API gateway, backend API and web UI (seed 8.0.1), and where each runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Availability, Resources
from .workloads import EnvVar, Placement, Use, WorkloadPort
from .types import AbsolutePath, Count, Hostname, Image, Name, Port, Positive, ServiceName, Strict, Url, UrlPrefix


class EdgeComponent(Strict):
    """A component of the edge layer."""

    name: ServiceName
    """Service name (compose service, and Deployment/Service in the cluster)."""
    image: Image
    """Container image, pinned."""
    port: Port
    """Port the container listens on (its HTTP port, named `http`)."""
    ports: list[WorkloadPort] = Field(default_factory=list)
    """Further ports it listens on, named, in the workloads' vocabulary without exposure (say,
    the backend's gRPC API): env endpoints name them, and they are reached inside the cluster
    and on the edge VM's compose network only."""
    replicas: Positive = 1
    """Replicas (compose replicas on the VM; Deployment replicas in the cluster)."""
    resources: Resources
    """Requests and limits."""
    runs_on: list[Placement] = Field(min_length=1)
    """Where it runs: `vm` (Docker Compose on the edge VM), `cluster` (K3s), or both."""
    namespace: Name
    """Cluster namespace, used where it runs in the cluster."""
    env: list[EnvVar] = Field(default_factory=list)
    """Environment variables of the application's own, besides what the component is given (the
    backend: PORT and the MinIO, Kafka and OTel settings, which it may not set): plain values,
    Secret keys, other workloads' endpoints, resolved where it runs (workloads.<name>.env has
    the vocabulary)."""
    uses: list[Use] = Field(default_factory=list)
    """What it talks to besides what it is wired to, resolved where it runs
    (workloads.<name>.uses has the vocabulary)."""
    health_path: UrlPrefix = "/healthz"
    """HTTP path that answers 200 when the component is healthy (liveness and readiness)."""
    availability: Availability | None = None
    """What the workload must survive in the cluster: {survives: node-loss}, or {survives: nothing,
    reason: ...} for a workload that cannot (say why). Unset: nothing is promised."""


class TlsFiles(Strict):
    """Paths of the certificate and key on the edge VM; their contents are never read or written."""

    certificate_path: AbsolutePath
    """PEM certificate chain."""
    key_path: AbsolutePath
    """PEM private key."""


class RateLimit(Strict):
    """Request rate limiting per client address."""

    requests_per_second: Positive
    """Sustained rate."""
    burst: Count = 0
    """Requests allowed above the rate before rejecting."""


class AuthHook(Strict):
    """Authentication: `none`, or `subrequest` (nginx asks `url` before passing a request on)."""

    mode: Literal["none", "subrequest"] = "none"
    """How requests are authenticated."""
    url: Url | None = None
    """The authentication service, for `subrequest`."""


class ApiGateway(EdgeComponent):
    """nginx: TLS termination, authentication, load balancing, rate limiting."""

    server_name: Hostname
    """Public host name."""
    https_port: Port = 443
    """Port published on the edge VM for HTTPS (the container listens on `port`)."""
    http_port: Port = 80
    """Port published on the edge VM for plain HTTP, which redirects to HTTPS."""
    tls: TlsFiles
    """Certificate and key paths."""
    rate_limit: RateLimit
    """Rate limiting."""
    auth: AuthHook = AuthHook()
    """Authentication hook."""


class WebUi(EdgeComponent):
    """The React single-page app, served as static files by nginx."""

    hosts: list[Hostname] = Field(default_factory=list)
    """When it runs in the cluster: the hosts the Istio gateway sends to it (each one of
    network.gateway.hosts, none used by network.routes)."""


class Edge(Strict):
    """The front-end layer."""

    vm: Name
    """The edge VM (seed: vm0)."""
    api_gateway: ApiGateway
    """API gateway."""
    backend_api: EdgeComponent
    """FastAPI backend: business logic, Kafka producer, WebSockets."""
    web_ui: WebUi
    """React single-page app, served as static files by nginx."""

    @property
    def components(self) -> list[EdgeComponent]:
        return [self.api_gateway, self.backend_api, self.web_ui]
