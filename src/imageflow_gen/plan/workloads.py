"""The profile's typed workloads (model/workloads.py): what each becomes in the cluster, and
the facts the VM stacks, the network policies and the docs share (endpoints, flows, secrets).

In the cluster: a ConfigMap for its files, a Deployment (stateless) or a StatefulSet with a
headless Service and a claim per replica (stateful), a Service for its ports (NodePort when a
port has a node port), a claim per persistent volume of a stateless workload, an autoscaler, a
disruption budget for more than one replica, and a VirtualService for its route. The pod gets
the hardening every workload gets, less the exceptions the profile states with a reason.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..errors import Path
from ..model import Topology
from ..model.common import Autoscaling
from ..model.release import BlueGreenRelease, CanaryRelease
from ..model.types import duration_ms
from ..model.workloads import FILES_VOLUME, Endpoint, Probe, Workload, WorkloadPort, env_entries
from .clients import store_wiring
from .endpoints import endpoint_address
from .common import (
    placement,
    EXEMPTION_ANNOTATION,
    NON_ROOT_UID,
    Spec,
    Tunable,
    container_security,
    disruption_budget,
    labels,
    pod_security,
    resources,
    service_dns,
    spec,
    tmp_volume,
    tunable,
)

COMPONENT = "workload"


def cluster_workloads(topo: Topology) -> list[tuple[int, Workload]]:
    """(index, workload) of the workloads that run in the cluster."""
    return [(i, w) for i, w in enumerate(topo.workloads) if w.namespace is not None]


def vm_workloads(topo: Topology, vm: str) -> list[tuple[int, Workload]]:
    """(index, workload) of the workloads in `vm`'s compose stack."""
    return [(i, w) for i, w in enumerate(topo.workloads) if w.vm == vm]


def transport(port: WorkloadPort) -> str:
    """The port's transport protocol as Kubernetes and compose spell it."""
    return "UDP" if port.protocol == "udp" else "TCP"


def endpoint_value(topo: Topology, caller: Any, endpoint: Endpoint) -> str:
    """The env value of an endpoint: host:port, or a URL with its scheme and path."""
    address = endpoint_address(topo, caller, endpoint)
    assert address is not None, "checked by model/checks.py"
    host, port = address
    if endpoint.scheme == "none":
        return f"{host}:{port}"
    scheme = "dns:///" if endpoint.scheme == "grpc" else f"{endpoint.scheme}://"
    return f"{scheme}{host}:{port}{endpoint.path or ''}"


def kube_literal(text: str) -> str:
    """`text` written so that the kubelet passes it on unchanged: it expands `$(VAR)` in env
    values, command and args, and reads `$$` as one `$`, so every `$` is doubled."""
    return text.replace("$", "$$")


@dataclass(frozen=True)
class VmRoute:
    """A VM workload's route through the edge VM's nginx: a location on the gateway's server."""

    workload: str
    prefix: str
    port: int
    grpc: bool
    timeout: str  # in nginx's notation (whole milliseconds)


def vm_routes(topo: Topology) -> list[VmRoute]:
    """The routes of the workloads on the edge VM, which its nginx gateway serves."""
    result = []
    for w in topo.workloads:
        port = w.port(w.route.port) if w.route else None
        if w.vm == topo.edge.vm and w.route is not None and port is not None:
            timeout = f"{math.ceil(duration_ms(w.route.timeout))}ms"
            result.append(VmRoute(w.name, w.route.path_prefix, port.port, port.protocol == "grpc", timeout))
    return sorted(result, key=lambda r: r.prefix)


def config_map(workload: Workload) -> str:
    return f"{workload.name}-files"


# On the pods of a workload with files: a change of a file's content changes the pod template,
# so the pods are replaced (a subPath mount never sees the ConfigMap's new content).
FILES_HASH = "imageflow.io/files-sha256"


def files_hash(workload: Workload) -> str:
    """sha256 of the workload's files: their names, paths, modes and contents."""
    data = [[f.name, f.path, f.mode, f.content] for f in workload.files]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _probe(probe: Probe, workload: Workload) -> dict[str, Any]:
    if probe.http is not None:
        check: dict[str, Any] = {"httpGet": {"path": probe.http.path, "port": probe.http.port}}
    elif probe.grpc is not None:
        port = workload.port(probe.grpc.port)
        check = {"grpc": {"port": port.port if port else 0}}
    elif probe.tcp is not None:
        check = {"tcpSocket": {"port": probe.tcp.port}}
    else:
        check = {"exec": {"command": list(probe.exec or [])}}  # run as is: no variable expansion
    return {
        **check,
        "initialDelaySeconds": probe.initial_delay,
        "periodSeconds": probe.period,
        "timeoutSeconds": probe.timeout,
        "failureThreshold": probe.failure_threshold,
    }


def default_probe(workload: Workload) -> Probe | None:
    """Readiness and liveness when the profile gives none: by the first TCP port's protocol."""
    port = next((p for p in workload.ports if p.protocol != "udp"), None)
    if port is None:
        return None
    if port.protocol == "grpc":
        return Probe.model_validate({"grpc": {"port": port.name}})
    return Probe.model_validate({"tcp": {"port": port.name}})


def probes(workload: Workload) -> dict[str, Probe]:
    """The probes a workload gets: its own, readiness and liveness defaulted by protocol."""
    given = workload.probes
    fallback = default_probe(workload)
    result = {
        "liveness": given.liveness or fallback,
        "readiness": given.readiness or fallback,
        "startup": given.startup,
    }
    return {k: v for k, v in result.items() if v is not None}


def _env(topo: Topology, workload: Workload) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for _, var in env_entries(workload.env, workload.uses):
        if var.value is not None:
            result.append({"name": var.name, "value": kube_literal(var.value)})
        elif var.secret is not None:
            ref = {"name": var.secret.name, "key": var.secret.key}
            result.append({"name": var.name, "valueFrom": {"secretKeyRef": ref}})
        elif var.file is not None:
            ref = {"name": config_map(workload), "key": var.file}
            result.append({"name": var.name, "valueFrom": {"configMapKeyRef": ref}})
        elif var.endpoint is not None:
            result.append({"name": var.name, "value": kube_literal(endpoint_value(topo, workload, var.endpoint))})
    return result


def exceptions(topo: Topology) -> list[tuple[Workload, str, str]]:
    """(workload, exception, reason) of every stated exception to the hardening, for the docs."""
    result = []
    for w in topo.workloads:
        if w.security.writable_root_filesystem:
            result.append((w, "writable root file system", w.security.writable_root_filesystem))
        if w.security.run_as:
            result.append((w, f"runs as user {w.security.run_as.uid}", w.security.run_as.reason))
        result += [(w, f"hostPath {v.host_path.path}", v.host_path.reason) for v in w.volumes if v.host_path]
    return result


def _volumes(workload: Workload) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, container mounts, claim templates)."""
    tmp, tmp_mount = tmp_volume()
    volumes, mounts, claims = [tmp], [tmp_mount], []
    if workload.files:
        volumes.append(
            {
                "name": FILES_VOLUME,
                "configMap": {
                    "name": config_map(workload),
                    "items": [{"key": f.name, "path": f.name, "mode": f.mode} for f in workload.files],
                },
            }
        )
        mounts += [
            {"name": FILES_VOLUME, "mountPath": f.path, "subPath": f.name, "readOnly": True} for f in workload.files
        ]
    for volume in workload.volumes:
        mount: dict[str, Any] = {"name": volume.name, "mountPath": volume.path}
        if volume.read_only:
            mount["readOnly"] = True
        mounts.append(mount)
        if volume.persistent is not None:
            claim = _claim_spec(volume)
            if workload.kind == "stateful":
                claims.append({"metadata": {"name": volume.name}, "spec": claim})
            else:
                volumes.append(
                    {"name": volume.name, "persistentVolumeClaim": {"claimName": f"{workload.name}-{volume.name}"}}
                )
        elif volume.scratch is not None:
            empty: dict[str, Any] = {"sizeLimit": volume.scratch.size_limit}
            if volume.scratch.memory:
                empty["medium"] = "Memory"
            volumes.append({"name": volume.name, "emptyDir": empty})
        elif volume.host_path is not None:
            host = {"path": volume.host_path.path, **({} if volume.host_path.optional else {"type": "Directory"})}
            volumes.append({"name": volume.name, "hostPath": host})
    return volumes, mounts, claims


def _claim_spec(volume: Any) -> dict[str, Any]:
    persistent = volume.persistent
    claim: dict[str, Any] = {
        "accessModes": [persistent.access_mode],
        "resources": {"requests": {"storage": persistent.size}},
    }
    if persistent.storage_class:
        claim["storageClassName"] = persistent.storage_class
    return claim


def _pod(
    topo: Topology, workload: Workload, how: Rendering, variant: Variant
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(pod spec, claim templates) of one variant's pods."""
    volumes, mounts, claims = _volumes(workload)
    store_env, store_volumes, store_mounts = store_wiring(topo, workload)
    volumes, mounts = [*volumes, *store_volumes, *how.volumes], [*mounts, *store_mounts, *how.mounts]
    security = container_security()
    if workload.security.writable_root_filesystem:
        security["readOnlyRootFilesystem"] = False
    container: dict[str, Any] = {"name": workload.name, "image": variant.image}
    if workload.image_pull_policy:
        container["imagePullPolicy"] = workload.image_pull_policy
    if workload.command is not None:
        container["command"] = [kube_literal(a) for a in workload.command]
    if workload.args is not None:
        container["args"] = [kube_literal(a) for a in workload.args]
    if workload.working_dir:
        container["workingDir"] = workload.working_dir
    if workload.ports:
        container["ports"] = [
            {"name": p.name, "containerPort": p.port, "protocol": transport(p)} for p in workload.ports
        ]
    if env := [*_env(topo, workload), *store_env, *how.env]:
        container["env"] = env
    container["resources"] = resources(workload.resources, how.key, workload.gpu)
    container["volumeMounts"] = mounts
    for kind, probe in probes(workload).items():
        container[f"{kind}Probe"] = _probe(probe, workload)
    container["securityContext"] = security
    uid = workload.security.run_as.uid if workload.security.run_as else NON_ROOT_UID
    pod_sec = pod_security(uid)
    if uid == 0:
        pod_sec["runAsNonRoot"] = False
    pod: dict[str, Any] = {
        "securityContext": pod_sec,
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": volumes,
    }
    placed = placement(topo, workload, {"app": workload.name, **variant.labels})
    for key, value in how.pod.items():  # a slot's lists (tolerations) go first among the placement's
        if isinstance(value, list) and (merged := [*value, *placed.get(key, [])]):
            placed[key] = merged
    pod.update(placed)
    for key, value in how.pod.items():
        if isinstance(value, dict):
            pod[key] = {**pod.get(key, {}), **value}
        elif not isinstance(value, list):
            pod[key] = value
    return pod, claims


def _annotations(workload: Workload, how: Rendering) -> dict[str, str]:
    """The stated exceptions, with their reasons: what needs a weaker Pod Security level, and
    checkov's skips."""
    notes = {}
    exempt = [f"hostPath {v.host_path.path}: {v.host_path.reason}" for v in workload.volumes if v.host_path]
    if workload.security.run_as and workload.security.run_as.uid == 0:
        exempt.append(f"runs as root: {workload.security.run_as.reason}")
    if exempt:
        notes[EXEMPTION_ANNOTATION] = "; ".join(exempt)
    skips = []
    if workload.security.writable_root_filesystem:
        skips.append(f"CKV_K8S_22={workload.security.writable_root_filesystem}")
    if workload.security.run_as and workload.security.run_as.uid < 10000:
        skips.append(f"CKV_K8S_40={workload.security.run_as.reason}")
    if workload.security.run_as and workload.security.run_as.uid == 0:  # root, stated
        skips.append(f"CKV_K8S_23={workload.security.run_as.reason}")
    reads = ""
    if secret_env := [v.name for v in workload.env if v.secret is not None]:
        reads = f"the image reads {', '.join(secret_env)} from its environment ({'.'.join(how.key)}.env)"
    if any(u.postgresql is not None for u in workload.uses):
        reads += ("; " if reads else "") + "libpq reads PGPASSWORD from the environment (its use of PostgreSQL)"
    if reads:
        skips.append(f"CKV_K8S_35={reads}")
    notes.update({f"checkov.io/skip{i}": skip for i, skip in enumerate(skips, 1)})
    return notes


@dataclass(frozen=True)
class Variant:
    """One Deployment of a workload's release: the whole workload when it rolls; blue and green,
    or stable and canary, for the processing services' other strategies (plan/slots.py)."""

    name: str
    labels: dict[str, str]  # added to the pods' labels and to what the Deployment selects
    image: Tunable
    replicas: Tunable | int | None  # None: an autoscaler owns them; an int: fixed, not tunable
    autoscaled: bool


@dataclass(frozen=True)
class Rendering:
    """How a workload is rendered beyond its typed fields: what a typed workload gets by
    default (`typed`), and what a seed slot that plan/slots.py turns into a workload sets
    (its component and labels, the keys of its tunables, the wiring it gets to MinIO and Kafka,
    its release's variants, what its Service selects)."""

    component: str
    key: tuple[str, ...]  # where its tunables live in the Helm values
    variants: list[Variant]
    selector: dict[str, Any]  # what its Service selects
    headless: bool
    labels: dict[str, str] = field(default_factory=dict)
    env: list[dict[str, Any]] = field(default_factory=list)  # after the typed env
    volumes: list[dict[str, Any]] = field(default_factory=list)  # after the typed volumes
    mounts: list[dict[str, Any]] = field(default_factory=list)
    service_part: tuple[str, ...] = ("ports",)  # the Service's source, under the workload's
    canary: CanaryRelease | None = None  # a canary's own Service and the mesh's split
    # A slot's own pod settings (the OTel agent's service account and security context: a
    # key's maps are merged, its lists put first), and the ports its Service carries (None: all).
    pod: dict[str, Any] = field(default_factory=dict)
    service_ports: tuple[str, ...] | None = None


def single(component: str, key: tuple[str, ...], name: str, image: str, model: Any, **more: Any) -> Rendering:
    """A component of the generator's own with one pod of one image (the monitoring stack's):
    its image tunable at `key`, its Service selecting its `app` label; `more`: further fields."""
    image_tunable = tunable(key + ("image",), image, model, "image")
    return Rendering(
        component=component,
        key=key,
        variants=[Variant(name, {}, image_tunable, 1, False)],
        selector={"app": name},
        headless=False,
        **more,
    )


def typed(workload: Workload) -> Rendering:
    """A typed workload: its release's variants, its Service selecting the active or stable pods
    (headless when stateful)."""
    key, release = ("workloads", workload.name), workload.release
    return Rendering(
        component=COMPONENT,
        key=key,
        variants=release_variants(workload, key, Workload),
        selector=release_selector(workload.name, key, release),
        headless=workload.kind == "stateful",
        canary=release if isinstance(release, CanaryRelease) else None,
    )


def release_variants(owner: Any, key: tuple[str, ...], model: type[BaseModel]) -> list[Variant]:
    """The Deployments of a release (`owner`: a processing service or a workload, whose `model`
    describes its image and replicas tunables, under `key`).

    rolling: the owner itself. blue-green: `-blue` and `-green`, each labelled `color`, both at
    full size so the switch needs no scale-up. canary: the stable Deployment (the owner's name,
    `track: stable`, autoscaled if asked) and `-canary` (`track: canary`). Images and replicas
    are tunable at install time, under the profile's own keys.
    """
    release, name = owner.release, owner.name
    image = tunable(key + ("image",), owner.image, model, "image")
    fixed = None if owner.autoscaling else tunable(key + ("replicas",), owner.replicas, model, "replicas")
    scaled = owner.autoscaling is not None
    if isinstance(release, BlueGreenRelease):
        return [
            Variant(
                f"{name}-{colour}",
                {"color": colour},
                tunable(
                    key + ("release", f"{colour}_image"),
                    getattr(release, f"{colour}_image") or owner.image,
                    BlueGreenRelease,
                    f"{colour}_image",
                ),
                fixed,
                scaled,
            )
            for colour in ("blue", "green")
        ]
    if isinstance(release, CanaryRelease):
        canary_image = tunable(
            key + ("release", "canary_image"), release.canary_image or owner.image, CanaryRelease, "canary_image"
        )
        canary_replicas = tunable(
            key + ("release", "canary_replicas"), release.canary_replicas, CanaryRelease, "canary_replicas"
        )
        return [
            Variant(name, {"track": "stable"}, image, fixed, scaled),
            Variant(f"{name}-canary", {"track": "canary"}, canary_image, canary_replicas, False),
        ]
    return [Variant(name, {}, image, fixed, scaled)]


def release_selector(name: str, key: tuple[str, ...], release: Any) -> dict[str, Any]:
    """What the Service selects: the active colour for blue-green; the stable track for canary
    (callers without a sidecar never reach the canary through it); every pod otherwise."""
    if isinstance(release, BlueGreenRelease):
        return {
            "app": name,
            "color": tunable(key + ("release", "active"), release.active, BlueGreenRelease, "active"),
        }
    if isinstance(release, CanaryRelease):
        return {"app": name, "track": "stable"}
    return {"app": name}


def canary_service(name: str) -> str:
    """The Service of a canary's own pods: `<name>-canary`."""
    return f"{name}-canary"


def _canary_routing(workload: Workload, how: Rendering, release: CanaryRelease, source: Path) -> list[Spec]:
    """The canary's own Service, and an Istio route on the workload's host that sends the
    canary's weight of each http and grpc port's requests to it: callers in the mesh get the
    split; callers without a sidecar reach the stable pods only (the main Service selects
    track: stable), or the canary by its name."""
    name, namespace = workload.name, str(workload.namespace)
    host, canary = service_dns(name, namespace), service_dns(canary_service(name), namespace)
    key = how.key + ("release", "canary_weight")
    weight = release.canary_weight
    split = [p for p in workload.ports if p.protocol in ("http", "grpc")]
    http = []
    for port in split:
        route = [
            {"destination": {"host": target, "port": {"number": port.port}}, "weight": w}
            for target, w in (
                (host, tunable(key, weight, CanaryRelease, "canary_weight", complement=100)),
                (canary, tunable(key, weight, CanaryRelease, "canary_weight")),
            )
        ]
        http.append({"match": [{"port": port.port}], "route": route} if len(split) > 1 else {"route": route})
    meta = labels(name, how.component, **how.labels)
    return [
        *services(
            workload,
            how,
            meta,
            source,
            name=canary_service(name),
            selector={"app": name, "track": "canary"},
            node_ports=False,
        ),
        spec(
            "VirtualService",
            "virtualservice",
            source,
            name=name,
            namespace=namespace,
            labels=meta,
            hosts=[host],
            gateways=None,
            http=http,
        ),
    ]


def specs(topo: Topology) -> list[Spec]:
    result: list[Spec] = []
    for i, workload in cluster_workloads(topo):
        result += render(topo, workload, ("workloads", i), typed(workload))
    return result


def render(topo: Topology, workload: Workload, source: Path, how: Rendering) -> list[Spec]:
    """The cluster objects of a workload in the cluster: the one code path of typed workloads and
    of the seed's slots."""
    namespace = str(workload.namespace)
    meta = labels(workload.name, how.component, **how.labels)
    result: list[Spec] = []
    if workload.files:
        result.append(
            spec(
                "ConfigMap",
                "configmap",
                source + ("files",),
                name=config_map(workload),
                namespace=namespace,
                labels=meta,
                data={f.name: f.content for f in workload.files},
            )
        )
    annotations = _annotations(workload, how)
    for variant in how.variants:
        pod, claims = _pod(topo, workload, how, variant)
        selector = {"app": workload.name, **variant.labels}
        common = {
            **({"pod_annotations": {FILES_HASH: files_hash(workload)}} if workload.files else {}),
            "name": variant.name,
            "namespace": namespace,
            "labels": meta,
            "selector": selector,
            "pod_labels": dict(sorted({**meta, **variant.labels}.items())),
            "pod": pod,
            "replicas": variant.replicas,
            **({"annotations": annotations} if annotations else {}),
        }
        if workload.kind == "per-node":
            del common["replicas"]
            result.append(spec("DaemonSet", "daemonset", source, **common))
            continue  # one pod per node: no budget, no autoscaler
        if workload.kind == "stateful":
            result.append(
                spec(
                    "StatefulSet",
                    "statefulset",
                    source,
                    service_name=workload.name,
                    pod_management_policy=None,
                    claims=claims,
                    **common,
                )
            )
        else:
            result.append(spec("Deployment", "deployment", source, **common))
        scaling = workload.autoscaling if variant.autoscaled else None
        if scaling is not None:
            fewest: Any = scaling.min_replicas
        else:
            replicas = variant.replicas
            fewest = replicas.value if isinstance(replicas, Tunable) else 1 if replicas is None else replicas
        if fewest > 1:
            # A drain takes one pod of it at a time, so the others keep serving.
            result.append(disruption_budget(variant.name, namespace, source, how.component, selector))
        if scaling is not None:
            result.append(
                spec(
                    "HorizontalPodAutoscaler",
                    "horizontalpodautoscaler",
                    source + ("autoscaling",),
                    name=variant.name,
                    namespace=namespace,
                    labels=meta,
                    target_kind="Deployment",
                    min_replicas=tunable(
                        how.key + ("autoscaling", "min_replicas"), scaling.min_replicas, Autoscaling, "min_replicas"
                    ),
                    max_replicas=tunable(
                        how.key + ("autoscaling", "max_replicas"), scaling.max_replicas, Autoscaling, "max_replicas"
                    ),
                    cpu_utilization=scaling.target_cpu_utilization,
                )
            )
    if workload.kind != "stateful":
        for volume in workload.volumes:
            if volume.persistent is not None:
                result.append(
                    spec(
                        "PersistentVolumeClaim",
                        "persistentvolumeclaim",
                        source + ("volumes",),
                        name=f"{workload.name}-{volume.name}",
                        namespace=namespace,
                        labels=meta,
                        claim=_claim_spec(volume),
                    )
                )
    result += services(workload, how, meta, source + how.service_part)
    if how.canary is not None:
        result += _canary_routing(workload, how, how.canary, source + ("release",))
    return result


def _service_ports(workload: Workload, node_ports: bool) -> list[dict[str, Any]]:
    ports = []
    for p in workload.ports:
        port: dict[str, Any] = {"name": p.name, "port": p.port, "targetPort": p.name, "protocol": transport(p)}
        if p.protocol in ("http", "grpc"):
            port["appProtocol"] = p.protocol
        if node_ports and p.node_port is not None:
            port["nodePort"] = p.node_port
        ports.append(port)
    return ports


def services(
    workload: Workload,
    how: Rendering,
    meta: dict[str, str],
    source: Path,
    name: str | None = None,
    selector: dict[str, Any] | None = None,
    node_ports: bool = True,
) -> list[Spec]:
    """The workload's Service (`name`, `selector`: another Service of its pods, e.g. a canary's,
    which has no node ports) and, for a stateful workload with node ports, the NodePort Service
    beside its headless one."""
    if not workload.ports:
        return []
    namespace = str(workload.namespace)
    exposed = node_ports and any(p.node_port is not None for p in workload.ports)
    # A node port that admits only some VMs must see their addresses: no SNAT, so only the
    # node running the pod answers (the checks pin such a workload to one node).
    traffic = "Local" if any(p.node_port_from for p in workload.ports) else "Cluster"
    stateful = workload.kind == "stateful"
    ports = _service_ports(workload, node_ports and not stateful)
    if how.service_ports is not None:
        ports = [p for p in ports if p["name"] in how.service_ports]
    more: dict[str, Any] = {"type": "NodePort", "external_traffic_policy": traffic} if exposed and not stateful else {}
    if workload.kind == "per-node":  # each caller is answered by the pod on its own node
        more["internal_traffic_policy"] = "Local"
    result = [
        spec(
            "Service",
            "service",
            source,
            name=name or workload.name,
            namespace=namespace,
            labels=meta,
            selector=selector or how.selector,
            headless=how.headless,
            ports=ports,
            **more,
        )
    ]
    if exposed and stateful:
        result.append(
            spec(
                "Service",
                "service",
                source,
                name=f"{workload.name}-nodeport",
                namespace=namespace,
                labels=meta,
                selector=selector or how.selector,
                headless=False,
                ports=[p for p in _service_ports(workload, True) if "nodePort" in p],
                type="NodePort",
                external_traffic_policy=traffic,
            )
        )
    return result
