"""What every area of the plan shares: the Spec, labels, and hardened pod and container parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Path
from ..model.common import Resources

PART_OF = "imageflow"

# Argo CD sync waves by kind (seed 8.0.6, staged deployment): Argo CD applies a wave and waits
# for it to be healthy before the next. Namespaces and cluster-wide settings first; then what
# workloads read (config, Secrets, volumes, Services, policies); then the stateful services
# (MinIO, Tempo) and the node agent; then the workloads that need them; routes last, once
# their destinations exist. The Helm chart's imageflow.syncWave helper mirrors this table.
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
SYNC_WAVES = {
    "Namespace": -3, "StorageClass": -3, "RuntimeClass": -3,
    "ServiceAccount": -2, "ClusterRole": -2, "ClusterRoleBinding": -2, "NetworkPolicy": -2,
    "PersistentVolume": -2, "ConfigMap": -2, "ExternalSecret": -2, "SealedSecret": -2, "Service": -2,
    "EndpointSlice": -2,
    "StatefulSet": -1, "DaemonSet": -1,
    "Job": 0, "Deployment": 0, "HorizontalPodAutoscaler": 0, "PodDisruptionBudget": 0,
    "Gateway": 1, "VirtualService": 1, "DestinationRule": 1,
}
MANAGED_BY = "imageflow-gen"
NON_ROOT_UID = 10001


@dataclass(frozen=True)
class Spec:
    """One object to render: its kind template, the values it places, and its source key."""

    kind: str
    name: str
    template: str
    values: dict[str, Any]
    source: Path


def spec(kind: str, template: str, source: Path, **values: Any) -> Spec:
    """A Spec whose `name` is taken from the values."""
    return Spec(kind=kind, name=values["name"], template=f"kubernetes/{template}.yaml.j2", values=values,
                source=source)


def common_labels() -> dict[str, str]:
    """Labels every generated object carries."""
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY}


def labels(name: str, component: str, **extra: str) -> dict[str, str]:
    """Standard labels of a workload and its pods, sorted; `app` is what selectors match."""
    return dict(sorted({"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
                        **common_labels(), **extra}.items()))


def pod_security(uid: int = NON_ROOT_UID) -> dict[str, Any]:
    """Pod-level part of Pod Security `restricted`: non-root, fixed ids, RuntimeDefault seccomp."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    """Container-level part of `restricted`, plus a read-only root file system."""
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def resources(res: Resources, gpu: int = 0) -> dict[str, Any]:
    """Requests and limits; GPUs go in limits (Kubernetes sets the request equal)."""
    limits: dict[str, Any] = {"cpu": res.limits.cpu, "memory": res.limits.memory}
    if gpu:
        limits["nvidia.com/gpu"] = gpu
    return {"requests": {"cpu": res.requests.cpu, "memory": res.requests.memory}, "limits": limits}


def http_probe(path: str, port: str | int, *, delay: int = 5) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "initialDelaySeconds": delay, "periodSeconds": 10,
            "timeoutSeconds": 3, "failureThreshold": 3}


def grpc_probe(port: int, *, delay: int = 5) -> dict[str, Any]:
    """The gRPC health checking protocol, probed by the kubelet itself (Kubernetes >= 1.27)."""
    return {"grpc": {"port": port}, "initialDelaySeconds": delay, "periodSeconds": 10, "timeoutSeconds": 3,
            "failureThreshold": 3}


def tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """Scratch space for a read-only root file system: (volume, mount)."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}, {"name": "tmp", "mountPath": "/tmp"}


def service_dns(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def spread_over_nodes(app: str) -> dict[str, Any]:
    """Prefer one pod per node; preferred, because the volumes pin where the pods can go."""
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": app}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}}


def disruption_budget(name: str, namespace: str, source: tuple, component: str) -> Spec:
    """At most one pod of the workload down at a time during voluntary disruptions (drains)."""
    return spec("PodDisruptionBudget", "poddisruptionbudget", source, name=name, namespace=namespace,
                labels=labels(name, component), selector={"app": name})
