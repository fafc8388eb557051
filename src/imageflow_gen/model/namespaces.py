"""Kubernetes namespaces (seed 8.1.2)."""

from __future__ import annotations

from typing import Literal

from .types import Name, Strict, Text


class Namespace(Strict):
    """A namespace and what runs in it."""

    name: Name
    """Namespace name."""
    purpose: Text
    """What runs here (seed 8.1.2)."""
    pod_security: Literal["restricted", "baseline", "privileged"] = "restricted"
    """Pod Security admission level enforced in the namespace."""
    pod_security_reason: Text | None = None
    """Why the namespace cannot be `restricted`; required for any other level, and written as an annotation."""
    mesh: bool = False
    """Istio sidecars in its pods (label istio-injection=enabled): their calls follow the mesh's
    routes (a canary's weight) and balance per request. Needs Istio installed with its CNI plugin:
    without it, the injected init container needs NET_ADMIN and NET_RAW, which Pod Security
    `restricted` refuses."""
