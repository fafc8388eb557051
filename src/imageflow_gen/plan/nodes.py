"""K3s node configs, derived once: one /etc/rancher/k3s/config.yaml per node of the cluster.

The first master initialises the cluster (embedded etcd when there are several masters);
other masters and all workers join it. Node labels (`node-type`) and taints come from the
topology. The join token is a file on the node, never a value in the output.

Each NodeConfig also says what the node will look like to the scheduler once K3s runs on it:
the labels the kubelet and K3s add to the profile's (`k3s_labels`), and its allocatable
resources: K3s reserves no CPU or memory for itself (no kube-reserved or system-reserved),
and its kubelet's hard eviction thresholds (imagefs and nodefs below 5%) replace the
kubelet's defaults, so only 5% of the local storage is held back. `simulate` creates its
nodes from these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import Topology
from ..model.cluster import ClusterNode
from ..model.quantity import parse

TOKEN_FILE = "/etc/rancher/k3s/cluster-token"
MAX_PODS = 110  # the kubelet's default, which K3s keeps
STORAGE_RESERVED_PERCENT = 5  # K3s' kubelet: --eviction-hard=imagefs.available<5%,nodefs.available<5%
GPU_RESOURCE = "nvidia.com/gpu"  # what the NVIDIA device plugin advertises


@dataclass(frozen=True)
class NodeConfig:
    """A node's K3s configuration and what its file's header says about it."""

    node: ClusterNode
    role: str  # server or agent
    version: str
    config: dict[str, Any]
    etcd: bool = False  # a server of a cluster with embedded etcd (several servers)

    @property
    def labels(self) -> dict[str, str]:
        """The profile's labels and those the kubelet and K3s add (K3s v1.28 on amd64 Linux)."""
        result = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/instance-type": "k3s",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.node.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "k3s",
        }
        if self.role == "server":
            result["node-role.kubernetes.io/control-plane"] = "true"
            result["node-role.kubernetes.io/master"] = "true"
            if self.etcd:
                result["node-role.kubernetes.io/etcd"] = "true"
        return {**result, **self.node.labels}

    @property
    def taints(self) -> list[dict[str, str]]:
        return [{"key": t.key, **({"value": t.value} if t.value else {}), "effect": t.effect} for t in self.node.taints]

    @property
    def capacity(self) -> dict[str, str]:
        res = self.node.resources
        result = {
            "cpu": str(res.cpu),
            "memory": res.memory,
            "ephemeral-storage": res.storage,
            "pods": str(MAX_PODS),
        }
        if res.gpu:
            result[GPU_RESOURCE] = str(res.gpu)
        return result

    @property
    def allocatable(self) -> dict[str, str]:
        storage = parse(self.node.resources.storage) * (100 - STORAGE_RESERVED_PERCENT) / 100
        return {**self.capacity, "ephemeral-storage": str(int(storage))}


def node_configs(topo: Topology) -> list[NodeConfig]:
    masters = topo.cluster.master_nodes
    return [
        NodeConfig(
            node=node,
            role="server" if node in masters else "agent",
            version=topo.cluster.version,
            config=_config(topo, node),
            etcd=node in masters and len(masters) > 1,
        )
        for node in topo.cluster.nodes
    ]


def _config(topo: Topology, node: ClusterNode) -> dict[str, Any]:
    first = topo.cluster.master_nodes[0]
    server = node in topo.cluster.master_nodes
    config: dict[str, Any] = {}
    if not server or node is not first:
        config["server"] = f"https://{first.ip}:6443"
    elif len(topo.cluster.master_nodes) > 1:
        config["cluster-init"] = True
    config.update({"token-file": TOKEN_FILE, "node-name": node.name, "node-ip": node.ip})
    if server:
        config.update(
            {
                "write-kubeconfig-mode": "0600",
                "tls-san": [first.ip],
                # Istio's ingress gateway serves ingress; K3s's bundled Traefik would compete for 80/443.
                "disable": ["traefik"],
                "secrets-encryption": True,
            }
        )
    if node.labels:
        config["node-label"] = [f"{k}={v}" for k, v in sorted(node.labels.items())]
    if node.taints:
        config["node-taint"] = [
            f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}" for t in node.taints
        ]
    return config
