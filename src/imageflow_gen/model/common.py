"""Pieces several areas share: container resources, secret references."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .types import (
    Cpu,
    LabelKey,
    LabelValue,
    Name,
    Positive,
    Quantity,
    SecretKey,
    Sorted,
    Strict,
    SubdomainName,
    Text,
    UtilizationPercent,
)


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


class SurvivesNodeLoss(Strict):
    """The workload keeps serving through the loss of any one node: render refuses a placement
    that cannot (fewer than two replicas, or fewer than two nodes it may run on, or no room for
    all of its replicas once any one of those nodes is gone), and spreads its replicas over the
    nodes it may run on, one per node before two on any."""

    survives: Literal["node-loss"]
    """node-loss, or nothing (with a reason)."""


class GoesDownWithItsNode(Strict):
    """The workload may stop with a node; the reason is listed with the single points of
    failure in the generated README."""

    survives: Literal["nothing"]
    """node-loss, or nothing (with a reason)."""
    reason: Text
    """Why it cannot survive a node's loss (e.g. the only GPU node)."""


# What the workload must survive; unset: nothing is promised (the README still lists what
# each node's loss takes down).
Availability = Annotated[SurvivesNodeLoss | GoesDownWithItsNode, Field(discriminator="survives")]


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


class Autoscaling(Strict):
    """Horizontal pod autoscaling on CPU utilisation."""

    min_replicas: Positive
    """Fewest replicas."""
    max_replicas: Positive
    """Most replicas."""
    target_cpu_utilization: UtilizationPercent
    """Average CPU utilisation, in whole percent of the requests, that the autoscaler aims for."""
