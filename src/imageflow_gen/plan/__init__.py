"""Plan: every object the cluster gets, as data, derived once from the topology. Pure, no I/O.

Each area module returns `Spec`s: the kind template to render, the values it places, and
the topology key the object comes from (so a problem in the output can point at the input).
Templates only place what a spec holds; no template derives a name or a label itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from ..errors import Path, dotted
from ..model import Topology
from ..model.checks import MinioClient, minio_clients, secret_refs
from .common import Spec, common_labels
from . import (
    edge,
    messaging,
    grafana,
    monitoring,
    namespaces,
    network,
    observability,
    postgresql,
    processing,
    secrets,
    stacks,
    storage,
    workloads,
)
from .gitops import Application, application
from .nodes import NodeConfig, node_configs
from .stacks import Stack

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Kinds whose names must be DNS-1123 labels (the rest take subdomains, up to 253), and the
# longest name each may have: a StatefulSet's pods carry the label
# controller-revision-hash=<name>-<10 characters>, which must fit in 63.
_LABEL_LIMITS = {
    "Namespace": 63,
    "Service": 63,
    "Pod": 63,
    "StatefulSet": 52,
    "Deployment": 63,
    "DaemonSet": 63,
    "Job": 63,
    "CronJob": 52,  # its Jobs are named <name>-<11 digits>
}
_AREAS = (
    namespaces,
    secrets,
    storage,
    postgresql,
    processing,
    edge,
    workloads,
    messaging,
    observability,
    monitoring,
    grafana,
    network,
)


@dataclass(frozen=True)
class Plan:
    """Everything the targets need, derived from one topology."""

    profile: str
    topology: Topology
    kubernetes_minor: str
    specs: list[Spec]
    test_specs: list[Spec] = field(default_factory=list)
    """Objects only the Helm chart carries, as `helm test` hooks."""
    names: list[tuple[str, str, Path]] = field(default_factory=list)
    source_file: Callable[[Path], str] = field(default=lambda path: "", compare=False, repr=False)

    @cached_property
    def secret_refs(self) -> list[tuple[str, str, Any, Path]]:
        """(namespace, purpose, SecretRef, key) of every Secret the output references."""
        return secret_refs(self.topology)

    @cached_property
    def minio_clients(self) -> list[MinioClient]:
        """The workloads with their own MinIO user: where they run, their buckets and access."""
        return minio_clients(self.topology)

    @cached_property
    def stacks(self) -> list[Stack]:
        """The compose stacks of the VMs outside the cluster."""
        return stacks.stacks(self.topology)

    @cached_property
    def nodes(self) -> list[NodeConfig]:
        """The K3s configuration of each node."""
        return node_configs(self.topology)

    @cached_property
    def application(self) -> Application:
        """The Argo CD Application of the profile."""
        return application(self.topology, self.profile)

    def source(self, path: Path) -> str:
        """'prod.yaml#storage.minio': the profile file and key an object comes from."""
        file = self.source_file(path)
        return f"{file}#{dotted(path)}" if file else dotted(path)


def make_plan(topo: Topology, profile: str, source_file: Callable[[Path], str] | None = None) -> Plan:
    """Derive the plan of `topo` for `profile`; `source_file` names the file that wrote a key."""
    specs = [spec for area in _AREAS for spec in area.specs(topo)]
    tests = processing.test_specs(topo)
    names = [(s.kind, s.name, s.source) for s in specs + tests] + _pod_names(topo)
    return Plan(
        profile=profile,
        topology=topo,
        kubernetes_minor=topo.cluster.kubernetes_minor,
        specs=specs,
        test_specs=tests,
        names=names,
        source_file=source_file or (lambda path: ""),
    )


def _pod_names(topo: Topology) -> list[tuple[str, str, Path]]:
    """The host names a StatefulSet gives its last pod: <name>-<replicas - 1>."""
    minio, tempo = topo.storage.minio, topo.observability.tempo
    return [
        ("Pod", f"minio-{minio.nodes - 1}", ("storage", "minio", "nodes")),
        ("Pod", f"{tempo.name}-{tempo.replicas - 1}", ("observability", "tempo", "name")),
        *(
            ("Pod", f"{w.name}-{max(w.replicas - 1, 0)}", ("workloads", i, "name"))
            for i, w in enumerate(topo.workloads)
            if w.namespace is not None and w.kind == "stateful"
        ),
    ]


def name_findings(plan: Plan) -> list[tuple[Path, str]]:
    """Emitted names that Kubernetes would reject, after every prefix and suffix, and two
    objects of one kind and name in one namespace (a workload named like a seed's service)."""
    findings = []
    seen: dict[tuple[str, str, str], Path] = {}
    for s in plan.specs + plan.test_specs:
        identity = (s.kind, str(s.values.get("namespace", "")), s.name)
        if identity in seen:
            where = f"{identity[1]}/{s.name}" if identity[1] else s.name
            findings.append(
                (s.source, f"emits the {s.kind} {where}, which {dotted(seen[identity])} emits too: rename one")
            )
        else:
            seen[identity] = s.source
    for kind, name, path in plan.names:
        limit, pattern, what = (
            (_LABEL_LIMITS[kind], _LABEL, "DNS-1123 label")
            if kind in _LABEL_LIMITS
            else (253, _SUBDOMAIN, "DNS-1123 subdomain")
        )
        if len(name) > limit or not pattern.match(name):
            findings.append(
                (path, f"emits the {kind} name {name!r}, which is not a {what} of at most {limit} characters")
            )
    return findings


__all__ = ["Plan", "Spec", "common_labels", "make_plan", "name_findings"]
