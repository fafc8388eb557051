"""K3s node configs, derived once: one /etc/rancher/k3s/config.yaml per node of the cluster.

The first master initialises the cluster (embedded etcd when there are several masters);
other masters and all workers join it. Node labels (`node-type`) and taints come from the
topology. The join token is a file on the node, never a value in the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import Topology
from ..model.cluster import ClusterNode

TOKEN_FILE = "/etc/rancher/k3s/cluster-token"


@dataclass(frozen=True)
class NodeConfig:
    """A node's K3s configuration and what its file's header says about it."""

    node: ClusterNode
    role: str  # server or agent
    version: str
    config: dict[str, Any]


def node_configs(topo: Topology) -> list[NodeConfig]:
    masters = topo.cluster.master_nodes
    return [
        NodeConfig(
            node=node,
            role="server" if node in masters else "agent",
            version=topo.cluster.version,
            config=_config(topo, node),
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
