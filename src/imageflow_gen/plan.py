"""Plan: every name, label and selector derived once from the topology. Pure, no I/O.

Templates only place what the plan holds; no template derives a name or a label itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import Path
from .model import Topology

PART_OF = "imageflow"
MANAGED_BY = "imageflow-gen"
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Kinds whose names must be DNS-1123 labels (the rest take subdomains, up to 253), and the
# longest name each may have: a StatefulSet's pods carry the label
# controller-revision-hash=<name>-<10 characters>, which must fit in 63.
_LABEL_LIMITS = {"Namespace": 63, "Service": 63, "Pod": 63, "StatefulSet": 52, "Deployment": 63}


@dataclass(frozen=True)
class NamespacePlan:
    """A namespace with its labels: `name` for the seed's namespaceSelector, Pod Security levels."""

    name: str
    purpose: str
    labels: dict[str, str]
    path: Path


@dataclass(frozen=True)
class Plan:
    """Everything the targets need, derived from one topology."""

    profile: str
    topology: Topology
    kubernetes_minor: str
    namespaces: list[NamespacePlan]
    names: list[tuple[str, str, Path]] = field(default_factory=list)


def common_labels() -> dict[str, str]:
    """Labels every generated object carries."""
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY}


def make_plan(topo: Topology, profile: str) -> Plan:
    """Derive the plan of `topo` for `profile`."""
    major, minor = topo.cluster.kubernetes_version.split(".")[:2]
    version = f"v{major}.{minor}"
    namespaces = [_namespace(ns, i, version) for i, ns in enumerate(topo.namespaces)]
    names = [("Namespace", ns.name, ns.path + ("name",)) for ns in namespaces] + _workload_names(topo)
    return Plan(profile=profile, topology=topo, kubernetes_minor=f"{major}.{minor}",
                namespaces=namespaces, names=names)


def _namespace(ns, index: int, version: str) -> NamespacePlan:
    labels = {
        **common_labels(),
        "name": ns.name,
        "pod-security.kubernetes.io/enforce": ns.pod_security,
        "pod-security.kubernetes.io/enforce-version": version,
        "pod-security.kubernetes.io/audit": ns.pod_security,
        "pod-security.kubernetes.io/warn": ns.pod_security,
    }
    return NamespacePlan(name=ns.name, purpose=ns.purpose, labels=labels, path=("namespaces", index))


def _workload_names(topo: Topology) -> list[tuple[str, str, Path]]:
    """Names of the workloads, their Services and the pods a StatefulSet names itself."""
    minio, tempo = topo.storage.minio, topo.observability.tempo
    names: list[tuple[str, str, Path]] = []
    for i, service in enumerate(topo.processing.services):
        path = ("processing", "services", i, "name")
        names += [("Deployment", service.name, path), ("Service", service.name, path)]
    for kind_name, replicas, path in (("minio", minio.nodes, ("storage", "minio", "nodes")),
                                      (tempo.name, tempo.replicas, ("observability", "tempo", "name"))):
        names += [("StatefulSet", kind_name, path), ("Pod", f"{kind_name}-{replicas - 1}", path)]
    names += [("PersistentVolume", pv_name(n), ("storage", "minio", "volumes"))
              for n in range(1, minio.drives + 1)]
    return names


def pv_name(number: int) -> str:
    """minio-data-01, minio-data-02, ... as the seed names the first."""
    return f"minio-data-{number:02d}"


def name_findings(plan: Plan) -> list[tuple[Path, str]]:
    """Emitted names that Kubernetes would reject, after every prefix and suffix."""
    findings = []
    for kind, name, path in plan.names:
        limit, pattern, what = (_LABEL_LIMITS[kind], _LABEL, "DNS-1123 label") if kind in _LABEL_LIMITS else \
            (253, _SUBDOMAIN, "DNS-1123 subdomain")
        if len(name) > limit or not pattern.match(name):
            findings.append((path, f"emits the {kind} name {name!r}, which is not a {what} of at most {limit} characters"))
    return findings
