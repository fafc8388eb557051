"""Pieces several areas share: container resources, secret references."""

from __future__ import annotations

from typing import Annotated

from .types import Cpu, LabelKey, LabelValue, Name, Quantity, SecretKey, Sorted, Strict, SubdomainName


class Amounts(Strict):
    """CPU and memory amounts."""

    cpu: Cpu
    """CPU: whole cores (2) or a quantity ("500m")."""
    memory: Quantity
    """Memory, e.g. 512Mi."""


class Resources(Strict):
    """Container requests and limits."""

    requests: Amounts
    """What the scheduler reserves."""
    limits: Amounts
    """The most the container may use."""


class SecretRef(Strict):
    """A Kubernetes Secret that holds credentials; only its name and keys are ever written."""

    name: SubdomainName
    """Secret name."""
    keys: Annotated[dict[Name, SecretKey], Sorted]
    """Logical key -> key inside the Secret, e.g. {access-key: rootUser}."""


class Pods(Strict):
    """Pods by namespace and labels: who may reach a port (a NetworkPolicy peer)."""

    namespace: Name
    """Namespace of the pods."""
    pods: Annotated[dict[LabelKey, LabelValue], Sorted]
    """Labels the pods carry, e.g. {app: prometheus}; {} is every pod of the namespace."""
