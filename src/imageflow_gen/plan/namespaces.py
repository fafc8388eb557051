"""Namespaces (seed 8.1.2), labelled for the seed's namespaceSelector and Pod Security."""

from __future__ import annotations

from ..model import Topology
from .common import Spec, common_labels, spec


def specs(topo: Topology) -> list[Spec]:
    return [
        spec(
            "Namespace",
            "namespace",
            ("namespaces", i),
            name=ns.name,
            purpose=ns.purpose,
            exemption=ns.pod_security_reason,
            labels={
                **common_labels(),
                "name": ns.name,
                "pod-security.kubernetes.io/enforce": ns.pod_security,
                "pod-security.kubernetes.io/enforce-version": f"v{topo.cluster.kubernetes_minor}",
                "pod-security.kubernetes.io/audit": ns.pod_security,
                "pod-security.kubernetes.io/warn": ns.pod_security,
                **({"istio-injection": "enabled"} if ns.mesh else {}),
            },
        )
        for i, ns in enumerate(topo.namespaces)
    ]
