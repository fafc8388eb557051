"""Istio routing and network policies (seed 8.3)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import SecretRef
from .types import (
    Hostname,
    LabelKey,
    LabelValue,
    MeshDuration,
    Name,
    Percent,
    Port,
    Positive,
    Sorted,
    Strict,
    UrlPrefix,
)


class IstioGateway(Strict):
    """The Istio Gateway that routes reference (the seed names imageflow-gateway)."""

    name: Name
    """Gateway name."""
    namespace: Name
    """Namespace of the Gateway object."""
    hosts: list[Hostname] = Field(min_length=1)
    """Hosts it accepts."""
    port: Port = 443
    """HTTPS port."""
    tls: SecretRef
    """Secret with the certificate and key (keys: cert, key); never their contents."""
    selector: Annotated[dict[LabelKey, LabelValue], Sorted] = Field(default_factory=lambda: {"istio": "ingressgateway"})
    """Labels of the ingress gateway pods."""


class Destination(Strict):
    """Where a route sends traffic."""

    service: Name
    """Service name, in the route's namespace."""
    port: Port
    """Service port."""


class Retries(Strict):
    """Retry policy."""

    attempts: Positive
    """Retries."""
    per_try_timeout: MeshDuration
    """Timeout of each try."""


class FaultDelay(Strict):
    """A fixed delay injected into a share of requests."""

    percentage: Percent
    """Share of requests, in percent (seed: 0.1)."""
    fixed_delay: MeshDuration
    """Delay (seed: 5s)."""


class Fault(Strict):
    """Fault injection."""

    delay: FaultDelay
    """Delay."""


class Route(Strict):
    """An HTTP route through the mesh (an Istio VirtualService)."""

    name: Name
    """VirtualService name."""
    namespace: Name
    """Namespace."""
    hosts: list[Hostname] = Field(min_length=1)
    """Hosts."""
    gateway: Name
    """Gateway name (must be the topology's gateway)."""
    prefix: UrlPrefix
    """URI prefix matched."""
    destination: Destination
    """Target service and port."""
    retries: Retries | None = None
    """Retry policy."""
    fault: Fault | None = None
    """Fault injection."""


class PolicyPort(Strict):
    """A port a policy rule allows."""

    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    """Protocol."""
    port: Port
    """Port."""


class IngressRule(Strict):
    """Traffic allowed in: from pods in these namespaces, to these ports."""

    from_namespaces: list[Name] = Field(min_length=1)
    """Source namespaces."""
    ports: list[PolicyPort] = Field(min_length=1)
    """Destination ports on the selected pods."""


class EgressRule(Strict):
    """Traffic allowed out: to pods in these namespaces, on these ports."""

    to_namespaces: list[Name] = Field(min_length=1)
    """Destination namespaces."""
    ports: list[PolicyPort] = Field(min_length=1)
    """Destination ports."""


class NetworkPolicy(Strict):
    """A NetworkPolicy; a direction that is listed (even empty) is isolated to its rules."""

    name: Name
    """Policy name."""
    namespace: Name
    """Namespace."""
    pod_selector: Annotated[dict[LabelKey, LabelValue], Sorted]
    """Labels of the pods it applies to."""
    ingress: list[IngressRule] | None = None
    """Allowed ingress; absent: ingress not isolated."""
    egress: list[EgressRule] | None = None
    """Allowed egress; absent: egress not isolated."""


class Network(Strict):
    """Mesh routing and isolation."""

    gateway: IstioGateway
    """The Istio Gateway."""
    routes: list[Route] = Field(default_factory=list)
    """VirtualServices."""
    policies: list[NetworkPolicy] = Field(default_factory=list)
    """NetworkPolicies."""
