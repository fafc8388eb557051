"""What every area of the plan shares: the Spec, labels, and hardened pod and container parts."""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter

from ..errors import Path
from ..resources import field_description
from ..model.cluster import NODE_TYPE_LABEL
from ..model import Topology
from ..model.common import Resources
from ..model.workloads import TMP_PATH, TMP_VOLUME

PART_OF = "imageflow"

# Argo CD sync waves by kind (seed 8.0.6, staged deployment): Argo CD applies a wave and waits
# for it to be healthy before the next. Namespaces and cluster-wide settings first; then what
# workloads read (config, Secrets, volumes, Services, policies); then the stateful services
# (MinIO, Tempo) and the node agent; then the workloads that need them; routes last, once
# their destinations exist. The Helm chart's templates carry the same annotations.
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
SYNC_WAVES = {
    "Namespace": -3,
    "StorageClass": -3,
    "RuntimeClass": -3,
    "ServiceAccount": -2,
    "ClusterRole": -2,
    "ClusterRoleBinding": -2,
    "Role": -2,
    "RoleBinding": -2,
    "NetworkPolicy": -2,
    "PersistentVolume": -2,
    "PersistentVolumeClaim": -2,
    "ConfigMap": -2,
    "ExternalSecret": -2,
    "SealedSecret": -2,
    "Service": -2,
    "EndpointSlice": -2,
    "StatefulSet": -1,
    "DaemonSet": -1,
    "Job": 0,
    "CronJob": 0,
    "Deployment": 0,
    "HorizontalPodAutoscaler": 0,
    "PodDisruptionBudget": 0,
    "Gateway": 1,
    "VirtualService": 1,
}


def apply_order() -> list[str]:
    """Every kind the output has, in the order of its sync waves (by name within a wave): the
    order Argo CD applies them in, and the one `kubectl apply -k` gets from the kustomization,
    so that nothing is created before what it needs (a RuntimeClass before the pods)."""
    return sorted(SYNC_WAVES, key=lambda kind: (SYNC_WAVES[kind], kind))


MANAGED_BY = "imageflow-gen"
# On a workload that needs a weaker Pod Security level than restricted: what and why.
EXEMPTION_ANNOTATION = "imageflow.io/pod-security-exemption"
# K3s registers the NVIDIA container runtime as the handler `nvidia` when the node has the
# NVIDIA container toolkit; GPU pods must ask for it by RuntimeClass.
GPU_RUNTIME_CLASS = "nvidia"


def tolerations_for(topo: Any, node_type: str | None) -> list[dict[str, Any]]:
    """Tolerate the taints of the nodes a workload is placed on (e.g. the GPU node's)."""
    if node_type is None:
        return []
    taints = {(t.key, t.value, t.effect) for n in topo.cluster.nodes if n.node_type == node_type for t in n.taints}
    return [
        {"key": key, "operator": "Equal", "value": value, "effect": effect} for key, value, effect in sorted(taints)
    ]


def _every_taint(topo: Any) -> list[dict[str, Any]]:
    """Tolerate every node's taints: what must run on every node (a DaemonSet)."""
    taints = sorted({(t.key, t.effect) for node in topo.cluster.nodes for t in node.taints})
    return [{"key": key, "operator": "Exists", "effect": effect} for key, effect in taints]


def placement(topo: Any, workload: Any, selector: dict[str, str]) -> dict[str, Any]:
    """The pod-spec keys that place a workload's pods: the GPU runtime class, the node-type
    selector, the tolerations of those nodes' taints (a per-node workload without a node type:
    of every node's), and the spread over nodes when it must survive a node's loss (`selector`
    picks its pods)."""
    result: dict[str, Any] = {}
    if workload.gpu:
        result["runtimeClassName"] = GPU_RUNTIME_CLASS
    if workload.node_type:
        result["nodeSelector"] = {NODE_TYPE_LABEL: workload.node_type}
    if workload.kind == "per-node" and workload.node_type is None:
        tolerations = _every_taint(topo)
    else:
        tolerations = tolerations_for(topo, workload.node_type)
    if tolerations:
        result["tolerations"] = tolerations
    if survives_node_loss(workload):
        result["topologySpreadConstraints"] = spread_required(selector)
    return result


def needs_gpu_runtime(topo: Any) -> bool:
    """Whether a cluster pod runs in the NVIDIA runtime: one that asks for GPUs (a processing
    service's or a workload's), or the GPU exporter's."""
    prom = topo.observability.prometheus
    return (
        any(s.gpu for s in topo.processing.services)
        or any(w.gpu for w in topo.workloads if w.namespace)
        or (prom is not None and prom.gpu_exporter is not None)
    )


NON_ROOT_UID = 10001


@dataclass(frozen=True)
class Tunable:
    """A value an operator may change at install time without a re-render (replicas, images,
    resources, autoscaling bounds, the canary weight, the active colour).

    The plan places it where the value goes; Kustomize gets the value, the Helm chart a lookup
    of `key` in its values. `complement`: the object holds `complement - value` (the stable
    share of a canary split), so one setting moves both routes.
    """

    key: tuple[str, ...]
    value: Any
    schema: dict[str, Any] = field(compare=False)
    description: str = field(compare=False)
    complement: int | None = None

    @property
    def placed(self) -> Any:
        """What the object holds."""
        return self.value if self.complement is None else self.complement - self.value


def tunable(
    key: tuple[str, ...], value: Any, model: type[BaseModel], name: str, complement: int | None = None
) -> Tunable:
    """A Tunable whose schema and description are those of the model field `model.name`."""
    schema, description = _field_facts(model, name)
    return Tunable(key=key, value=value, schema=schema, description=description, complement=complement)


@cache
def _field_facts(model: type[BaseModel], name: str) -> tuple[dict[str, Any], str]:
    info = model.model_fields[name]
    annotation: Any = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):  # `Image | None`: the tunable is never null
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    schema = TypeAdapter(Annotated[(annotation, *info.metadata)] if info.metadata else annotation).json_schema()
    # The shipped schema holds the field's description (given in Field() or its docstring).
    description = field_description(model.__name__, info.alias or name) or name
    return {**schema, "description": description}, description


def with_tunables(value: Any, replace: Callable[[Tunable], Any]) -> Any:
    """`value` (spec values: maps, lists, scalars) with every Tunable replaced by `replace(it)`.
    A map or list holding no Tunable is returned itself, not copied: a spec's `values` and `raw`
    share it (neither is changed once planned), which halves the plan's memory."""
    if isinstance(value, Tunable):
        return replace(value)
    if isinstance(value, dict):
        mapped = {k: with_tunables(v, replace) for k, v in value.items()}
        return value if all(mapped[k] is v for k, v in value.items()) else mapped
    if isinstance(value, list):
        items = [with_tunables(v, replace) for v in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    return value


def placed(value: Any) -> Any:
    """`value` with every Tunable replaced by what the object holds."""
    return with_tunables(value, lambda t: t.placed)


@dataclass(frozen=True)
class Spec:
    """One object to render: its kind template, the values it places, and its source key.

    `values` hold plain data; `raw` the same with the Tunables still in place (for the chart).
    """

    kind: str
    name: str
    template: str
    values: dict[str, Any]
    source: Path
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def spec(kind: str, template: str, source: Path, **values: Any) -> Spec:
    """A Spec whose `name` is taken from the values; Tunables among them stay in `raw`."""
    return Spec(
        kind=kind,
        name=values["name"],
        template=f"kubernetes/{template}.yaml.j2",
        values=placed(values),
        source=source,
        raw=values,
    )


def common_labels() -> dict[str, str]:
    """Labels every generated object carries."""
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY}


def labels(name: str, component: str, **extra: str) -> dict[str, str]:
    """Standard labels of a workload and its pods, sorted; `app` is what selectors match."""
    return dict(
        sorted(
            {
                "app": name,
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/component": component,
                **common_labels(),
                **extra,
            }.items()
        )
    )


# On a pod that runs to completion (a Job's, a test's): an injected Istio sidecar would keep it
# running forever, so such pods never get one, whichever namespace they run in.
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}


def pod_security(uid: int = NON_ROOT_UID) -> dict[str, Any]:
    """Pod-level part of Pod Security `restricted`: non-root, fixed ids, RuntimeDefault seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """Container-level part of `restricted`, plus a read-only root file system."""
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def resources(res: Resources, key: tuple[str, ...], gpu: int = 0) -> dict[str, Any]:
    """Requests and limits, tunable under `key` + resources; GPUs go in limits (Kubernetes sets
    the request equal) and are not tunable (the node's devices are planned)."""
    result: dict[str, Any] = {}
    for part in ("requests", "limits"):
        amounts = getattr(res, part)
        result[part] = {
            name: tunable(key + ("resources", part, name), getattr(amounts, name), type(amounts), name)
            for name in ("cpu", "memory")
        }
    if gpu:
        result["limits"]["nvidia.com/gpu"] = gpu
    return result


def http_probe(path: str, port: str | int, *, delay: int = 5, https: bool = False) -> dict[str, Any]:
    """An HTTP GET probe; over HTTPS the kubelet does not verify the certificate."""
    return {
        "httpGet": {"path": path, "port": port, **({"scheme": "HTTPS"} if https else {})},
        "initialDelaySeconds": delay,
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """Scratch space for a read-only root file system: (volume, mount)."""
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "256Mi"}}, {"name": TMP_VOLUME, "mountPath": TMP_PATH}


def service_dns(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def spread_over_nodes(app: str) -> dict[str, Any]:
    """Prefer one pod per node; preferred, because the volumes pin where the pods can go."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": app}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def spread_required(selector: dict[str, str]) -> list[dict[str, Any]]:
    """One pod per node before two on any, as a hard rule (a workload that must survive a node's
    loss): counted over the nodes the pod may run on, its node selector and taints honoured."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": dict(sorted(selector.items()))},
            "nodeAffinityPolicy": "Honor",
            "nodeTaintsPolicy": "Honor",
        }
    ]


def survives_node_loss(workload: Any) -> bool:
    """Whether a processing service or edge component must survive the loss of a node."""
    availability = getattr(workload, "availability", None)
    return availability is not None and availability.survives == "node-loss"


def disruption_budget(
    name: str, namespace: str, source: Path, component: str, selector: dict[str, str] | None = None
) -> Spec:
    """At most one pod of the workload down at a time during voluntary disruptions (drains);
    `selector` picks its pods (default: app=<name>)."""
    return spec(
        "PodDisruptionBudget",
        "poddisruptionbudget",
        source,
        name=name,
        namespace=namespace,
        labels=labels(name, component),
        selector=selector or {"app": name},
    )


def task(
    kind: str,
    source: Path,
    name: str,
    namespace: str,
    component: str,
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    init_containers: list[dict[str, Any]] | None = None,
    **values: Any,
) -> Spec:
    """A Job or CronJob of the generator's own (the bucket job, PostgreSQL's bootstrap and
    backups): hardened pods without a service account token or a sidecar, run again on failure."""
    pod: dict[str, Any] = {
        "securityContext": pod_security(),
        "automountServiceAccountToken": False,
        "restartPolicy": "OnFailure",
    }
    if init_containers:
        pod["initContainers"] = init_containers
    pod |= {"containers": containers, "volumes": volumes}
    return spec(
        kind,
        kind.lower(),
        source,
        name=name,
        namespace=namespace,
        labels=labels(name, component),
        pod_labels=labels(name, component) | NO_SIDECAR,
        pod=pod,
        **values,
    )


def workload_secret(secret: str, key: str) -> tuple[str, str]:
    """(compose secret name, .env variable naming its file) of a key of a Secret a VM workload
    reads: compose mounts it at /run/secrets/<name>."""

    def upper(name: str) -> str:
        return name.replace("-", "_").upper()

    return f"{secret}__{key}", f"SECRET_{upper(secret)}__{upper(key)}_FILE"


def meshed_namespaces(topo: Topology) -> list[str]:
    """The namespaces whose pods get Istio sidecars (`mesh: true`)."""
    return [ns.name for ns in topo.namespaces if ns.mesh]
