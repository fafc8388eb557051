"""The typed topology: one module per area; `Topology` ties them together."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, Field, Tag

from .cluster import Cluster, VirtualMachine
from .edge import Edge
from .gitops import GitOps
from .messaging import Messaging
from .namespaces import Namespace
from .network import Network
from .observability import Observability
from .processing import Processing
from .secrets import Secrets
from .storage import Storage
from .types import Strict, Text
from .workloads import Workload


class Topology(Strict):
    """The whole ImageFlowCanvas deployment: machines, cluster, services and policies."""

    purpose: Text
    """One line saying what this profile is for."""
    vms: list[VirtualMachine] = Field(min_length=1)
    """The machines (seed 8.0: vm0 edge, vm1 messaging, vm2 compute)."""
    cluster: Cluster
    """The K3s cluster (seed 8.1.1)."""
    namespaces: list[Namespace] = Field(min_length=1)
    """Namespaces (seed 8.1.2)."""
    processing: Processing
    """gRPC processing services."""
    storage: Storage
    """Storage classes and MinIO (seed 8.2)."""
    messaging: Messaging
    """Kafka on VM1."""
    observability: Observability
    """Tracing (seed 8.1.3)."""
    network: Network
    """Istio and network policies (seed 8.3)."""
    edge: Edge
    """The edge layer (seed 8.0.1)."""
    secrets: Secrets
    """Where the Secrets the output references (never contains) come from."""
    gitops: GitOps
    """GitOps wiring: the repository the output is committed to, and Argo CD (seed 8.0.6)."""
    workloads: list[Workload] = Field(default_factory=list)
    """The application's own containers beyond the seed's services, in the cluster or on a VM."""


def is_model(value: Any) -> bool:
    """Whether `value` is a pydantic model class."""
    return isinstance(value, type) and issubclass(value, BaseModel)


def model_in(annotation: Any) -> Any:
    """The model class inside list[X], X | None, dict[str, X] or X itself."""
    if is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def union_members(annotation: Any) -> dict[str, Any]:
    """The members of a tagged union by tag ({} otherwise): Annotated[Model, Tag("t")] | ...,
    or a union with a discriminator field (Annotated[A | B, Field(discriminator="k")])."""
    members = {}
    for arg in get_args(annotation):
        parts = get_args(arg)
        tag = next((m for m in parts[1:] if isinstance(m, Tag)), None)
        if tag is not None and is_model(parts[0]):
            members[tag.tag] = parts[0]
        key = next((getattr(m, "discriminator", None) for m in parts[1:]), None)
        if isinstance(key, str):
            for member in get_args(parts[0]):
                members.update({value: member for value in get_args(member.model_fields[key].annotation)})
    return members


def union_key(members: dict[str, Any]) -> str:
    """The field that tells a tagged union's members apart: the one each member fixes to its tag."""
    first = next(iter(members.values()))
    return str(
        next(
            name
            for name in first.model_fields
            if all(
                get_args(m.model_fields[name].annotation) == (t,) for t, m in members.items() if name in m.model_fields
            )
        )
    )


__all__ = ["Topology", "is_model", "model_in", "union_key", "union_members"]
