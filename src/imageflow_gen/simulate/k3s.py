"""What a K3s cluster has before anything of ours is applied, as `simulate` provides it.

- Nodes shaped as plan/nodes.py says K3s registers them (labels, taints, capacity, allocatable).
- The add-ons K3s deploys into kube-system and that take room on the nodes: CoreDNS,
  metrics-server (which HorizontalPodAutoscalers read) and the local-path provisioner, with
  the requests, tolerations and node selectors of K3s v1.28's manifests.
- The StorageClasses the profile says the cluster provides (`storage.cluster_classes`; K3s:
  `local-path`), with the local-path provisioner's behaviour emulated: a claim of such a class,
  once the scheduler has picked its pod's node, gets a volume on that node (`provision`).
"""

from __future__ import annotations

from typing import Any

from ..plan.nodes import NodeConfig
from ..validate.apiserver import ApiClient, ApiServerError
from .cluster import KWOK_LABEL

LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
_CRITICAL = [
    {"key": "CriticalAddonsOnly", "operator": "Exists"},
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
]
# name -> (requests, priority class): K3s v1.28's manifests (coredns.yaml, metrics-server/,
# local-storage.yaml).
ADDONS = {
    "coredns": ({"cpu": "100m", "memory": "70Mi"}, "system-cluster-critical"),
    "metrics-server": ({"cpu": "100m", "memory": "70Mi"}, "system-node-critical"),
    "local-path-provisioner": ({}, "system-node-critical"),
}


def node_object(node: NodeConfig) -> dict[str, Any]:
    """The Node a K3s agent or server registers, plus the label kwok manages it by."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.node.name, "labels": {**node.labels, KWOK_LABEL: "fake"}},
        "spec": {"taints": node.taints} if node.taints else {},
        "status": {
            "capacity": node.capacity,
            "allocatable": node.allocatable,
            "addresses": [
                {"type": "InternalIP", "address": node.node.ip},
                {"type": "Hostname", "address": node.node.name},
            ],
        },
    }


def addon_objects() -> list[dict[str, Any]]:
    result = []
    for name, (requests, priority) in ADDONS.items():
        labels = {"k8s-app": name}
        container: dict[str, Any] = {"name": name, "image": f"rancher/{name}"}
        if requests:
            container["resources"] = {"requests": requests}
        result.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "priorityClassName": priority,
                            "nodeSelector": {"kubernetes.io/os": "linux"},
                            "tolerations": _CRITICAL,
                            "containers": [container],
                        },
                    },
                },
            }
        )
    return result


def storage_class(name: str, default: bool) -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": name,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"} if default else {},
        },
        "provisioner": LOCAL_PATH_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete",
    }


def create(client: ApiClient, obj: dict[str, Any]) -> None:
    """Create `obj` (it must not fail: these are the simulation's own objects)."""
    path = client.path(obj).rsplit("/", 1)[0]
    status, body, _ = client.request("POST", path, obj)
    if status not in (201, 409):
        raise ApiServerError(f"creating {obj['kind']} {obj['metadata']['name']}: {body.get('message')}")


def provision(client: ApiClient, classes: set[str]) -> list[str]:
    """A volume on the selected node for every pending claim of a provided class, as the
    local-path provisioner makes one; the names of the volumes made."""
    _, body, _ = client.request("GET", "/api/v1/persistentvolumeclaims")
    made = []
    for claim in body.get("items", []):
        meta, spec = claim["metadata"], claim["spec"]
        node = meta.get("annotations", {}).get(SELECTED_NODE)
        if spec.get("storageClassName") not in classes or not node or spec.get("volumeName"):
            continue
        name = f"pvc-{meta['uid']}"
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": LOCAL_PATH_PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec["accessModes"],
                "storageClassName": spec["storageClassName"],
                "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                "hostPath": {"path": f"/var/lib/rancher/k3s/storage/{name}", "type": "DirectoryOrCreate"},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                                ]
                            }
                        ]
                    }
                },
            },
        }
        status, _, _ = client.request("POST", "/api/v1/persistentvolumes", volume)
        if status == 201:
            made.append(name)
    return made
