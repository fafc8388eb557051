"""The VM0 edge: API gateway, backend API and web UI (seed 8.0.1), and where each runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import Availability, Resources
from .workloads import EnvVar, Placement, Use, WorkloadPort
from .types import (
    AbsolutePath,
    Count,
    HeaderName,
    Hostname,
    Image,
    Name,
    NginxSize,
    Port,
    PortName,
    Positive,
    ServiceName,
    Strict,
    Text,
    UrlPrefix,
)


API_PREFIX = "/v1/"  # the backend's API behind the edge gateway (seed 8.1.5's `/v1/` route)


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


class RateClass(Strict):
    """The limits of one class of routes, per client address."""

    requests_per_second: Positive
    """Sustained request rate."""
    burst: Count = 0
    """Requests allowed above the rate, at once, before 429."""
    body_limit: NginxSize
    """Largest request body (413 above it)."""


class Limits(Strict):
    """Abuse and DDoS limits at the gateway, per client address (seed 8.0.4: the load
    balancer's DDoS protection, the gateway's rate limiting): connections, request rates and
    bodies per class of routes, header sizes, slow clients' timeouts. Over a rate or the
    connections: 429."""

    connections_per_client: Positive = 50
    """Open connections of one client address at once."""
    api: RateClass = RateClass(requests_per_second=20, burst=40, body_limit="1m")
    """The API (`/v1/` and the routes of class api)."""
    upload: RateClass = RateClass(requests_per_second=2, burst=4, body_limit="64m")
    """Routes of class upload (images)."""
    static: RateClass = RateClass(requests_per_second=50, burst=100, body_limit="16k")
    """The web UI's files and routes of class static."""
    header_buffer: NginxSize = "1k"
    """A request's headers' first buffer (client_header_buffer_size)."""
    large_header_buffer: NginxSize = "8k"
    """Each of the four buffers a long request line or header may take (414 or 400 above it)."""
    header_timeout: Positive = 10
    """Seconds a client may take to send its headers."""
    body_timeout: Positive = 30
    """Seconds a client may pause between two reads of its body."""
    send_timeout: Positive = 30
    """Seconds a client may pause between two reads of the response."""
    keepalive_timeout: Positive = 65
    """Seconds an idle keep-alive connection stays open."""


class WafExclusion(Strict):
    """A rule of the Core Rule Set switched off on one route: a false positive there."""

    rule: Annotated[int, Field(ge=1, le=999999)]
    """The rule's id (e.g. 920420: a request content type the CRS does not allow)."""
    reason: Text
    """Why the rule misfires on this route."""


class RouteWaf(Strict):
    """The WAF on one route."""

    exclusions: list[WafExclusion] = Field(default_factory=list)
    """CRS rules switched off on this route."""
    inspect_body: bool = True
    """Whether the WAF reads the request body; false for binary uploads (the URL, query and
    headers are still inspected)."""


class GatewayRoute(Strict):
    """A path of the backend's API the gateway treats apart from the rest of `/v1/`."""

    path: UrlPrefix
    """The path (a prefix, or the exact path with `exact`)."""
    exact: bool = False
    """Match the path exactly, not as a prefix."""
    limits: Literal["api", "upload", "static"] = "api"
    """Its class of limits (limits.api, limits.upload, limits.static)."""
    body_limit: NginxSize | None = None
    """Largest request body here; unset: the class's."""
    public: bool = False
    """Passed on without authentication (health, login); the identity headers are removed."""
    waf: RouteWaf = Field(default_factory=RouteWaf)
    """The WAF on this route."""


class Verifier(Strict):
    """What the gateway asks before passing an authenticated request on: an HTTP endpoint of a
    service on the edge VM (the backend's token introspection, or an auth service)."""

    service: ServiceName
    """The service: the backend's name, or a workload on the edge VM."""
    port: PortName = "http"
    """Its port, by name (the backend's own port is `http`)."""
    path: UrlPrefix
    """The endpoint, e.g. /v1/auth/verify."""


class GatewayAuth(Strict):
    """Authentication at the gateway: every request to the API (and to the edge VM's workload
    routes), WebSockets too, is first sent, without its body, to the verifier, which answers
    2xx (passed on, with the identity headers it set), or 401 or 403 (returned to the client).
    Any other answer, or none, is a 500: the gateway fails closed."""

    verifier: Verifier
    """Who verifies."""
    identity_headers: list[HeaderName] = Field(default_factory=lambda: ["X-Auth-User"], min_length=1)
    """Headers of the verifier's answer passed upstream: the identity. A client's own copies
    are never passed on."""


class UpstreamServer(Strict):
    """A further server of the backend, as nginx reaches it."""

    address: Hostname
    """Host name or address."""
    port: Port
    """Port (plain HTTP)."""


class LoadBalancing(Strict):
    """The backend's upstream: its replicas on the edge VM (each an address of its compose
    name), health-aware, with kept-alive connections."""

    max_fails: Positive = 3
    """Failed attempts that take a server out..."""
    fail_timeout: Positive = 10
    """...for this many seconds (and the window they are counted in)."""
    keepalive: Positive = 32
    """Idle connections kept open to the backend, per nginx worker."""
    backups: list[UpstreamServer] = Field(default_factory=list)
    """Servers used only while every replica is down (e.g. the cluster's backend through an
    address the edge VM reaches)."""


class Waf(Strict):
    """ModSecurity v3 with the OWASP Core Rule Set (CRS 3.3) in the gateway's nginx: anomaly
    scoring over the request (and the response's headers), per route exclusions."""

    mode: Literal["blocking", "detection"] = "blocking"
    """blocking: a request over the threshold gets 403; detection: it passes, logged."""
    paranoia_level: Annotated[int, Field(ge=1, le=4)] = 1
    """The CRS paranoia level: 1 (few false positives) to 4."""
    inbound_threshold: Positive = 5
    """Anomaly score at which a request is blocked (5: one critical match)."""
    outbound_threshold: Positive = 4
    """Anomaly score at which a response is blocked."""
    crs_path: AbsolutePath = "/opt/owasp-crs"
    """Where the gateway's image has the CRS (its rules/ folder)."""
    module_path: AbsolutePath = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"
    """Where the gateway's image has nginx's ModSecurity module."""


class ApiGateway(EdgeComponent):
    """nginx in front of the backend on the edge VM (seed 8.0.4): TLS termination, the WAF,
    authentication, abuse limits, load balancing."""

    server_name: Hostname
    """Public host name."""
    https_port: Port = 443
    """Port published on the edge VM for HTTPS (the container listens on `port`)."""
    http_port: Port = 80
    """Port published on the edge VM for plain HTTP, which redirects to HTTPS."""
    tls: TlsFiles
    """Certificate and key paths."""
    auth: GatewayAuth
    """Authentication of the API."""
    limits: Limits = Field(default_factory=Limits)
    """Abuse and DDoS limits."""
    waf: Waf = Field(default_factory=Waf)
    """The web application firewall."""
    routes: list[GatewayRoute] = Field(default_factory=list)
    """Paths of the API with their own class, body limit, authentication or WAF settings."""
    load_balancing: LoadBalancing = Field(default_factory=LoadBalancing)
    """The backend's upstream."""


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
