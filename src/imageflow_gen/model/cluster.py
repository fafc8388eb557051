"""The K3s cluster and its nodes (seed 8.1.1), and the three VMs (seed 8.0)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .types import Count, IPv4, K3sVersion, LabelKey, LabelValue, Name, Positive, Quantity, Sorted, Strict, Text

NODE_TYPE_LABEL = "node-type"


class NodeResources(Strict):
    """What a node offers to workloads."""

    cpu: Positive
    """CPU cores."""
    memory: Quantity
    """Memory, as a Kubernetes quantity (e.g. 16Gi)."""
    storage: Quantity
    """Local storage, as a Kubernetes quantity (e.g. 500Gi)."""
    gpu: Count = 0
    """NVIDIA GPUs on the node."""


class Taint(Strict):
    """A node taint: only pods that tolerate it are scheduled on the node."""

    key: LabelKey
    """Taint key, e.g. nvidia.com/gpu."""
    value: LabelValue = ""
    """Taint value; may be empty."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    """What the taint does to pods that do not tolerate it."""


class ClusterNode(Strict):
    """One K3s node."""

    name: Name
    """Node name, also its host name."""
    ip: IPv4
    """Address on the cluster network (K3s node-ip)."""
    resources: NodeResources
    """Capacity of the node."""
    labels: Annotated[dict[LabelKey, LabelValue], Sorted] = Field(default_factory=dict)
    """Node labels; `node-type` is what workloads are placed by."""
    taints: list[Taint] = Field(default_factory=list)
    """Node taints, e.g. on GPU nodes so only GPU workloads land there."""

    @property
    def node_type(self) -> str | None:
        return self.labels.get(NODE_TYPE_LABEL)


class Cluster(Strict):
    """The K3s cluster on VM2."""

    name: Name
    """Cluster name."""
    version: K3sVersion
    """K3s release; its Kubernetes version selects the schemas output is checked against."""
    master_nodes: list[ClusterNode] = Field(min_length=1)
    """Server (control-plane) nodes."""
    worker_nodes: list[ClusterNode] = Field(default_factory=list)
    """Agent nodes."""

    @property
    def nodes(self) -> list[ClusterNode]:
        return [*self.master_nodes, *self.worker_nodes]

    @property
    def kubernetes_version(self) -> str:
        """'v1.28.9+k3s1' -> '1.28.9'."""
        return str(self.version[1:].split("+", 1)[0])

    @property
    def kubernetes_minor(self) -> str:
        """'v1.28.9+k3s1' -> '1.28': the version the schemas, Pod Security and the chart name."""
        return ".".join(self.kubernetes_version.split(".")[:2])


class CostRange(Strict):
    """An estimated monthly cost range in US dollars."""

    min: Count
    """Lower estimate."""
    max: Count
    """Upper estimate."""


class VirtualMachine(Strict):
    """One of the three machines of the seed's hosting plan (8.0)."""

    name: Name
    """Machine name: vm0, vm1 or vm2 in the seed."""
    role: Literal["edge", "messaging", "compute"]
    """edge: API gateway, backend, web UI; messaging: Kafka; compute: the K3s cluster."""
    purpose: Text
    """One line on what the machine is for."""
    cpu: Positive
    """vCPUs."""
    memory_gb: Positive
    """Memory in GB."""
    storage_gb: Positive
    """Disk in GB."""
    storage_type: Literal["ssd", "nvme"]
    """Disk kind."""
    network_gbps: Positive
    """Network bandwidth in Gbps."""
    gpu: Count = 0
    """GPUs."""
    address: IPv4
    """Address on the private network (reached by the other machines and the cluster)."""
    vpn_address: IPv4 | None = None
    """Address on the VPN or dedicated line between VM0 and VM1, where there is one."""
    monthly_cost_usd: CostRange
    """Estimated monthly cost."""
