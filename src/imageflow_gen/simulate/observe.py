"""What the simulated cluster says about each object: ready or not, where, and why not.

Everything here reads one `Snapshot` (every list the report needs, fetched once) and judges
it as Argo CD's health checks would, in the words of the component that decided: the
scheduler's condition on a pending pod, a controller's warning event (a refused create), the
volume binder's event on a claim.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..validate.apiserver import ApiClient

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
_LISTS = {
    "Node": "/api/v1/nodes",
    "Pod": "/api/v1/pods",
    "PersistentVolumeClaim": "/api/v1/persistentvolumeclaims",
    "PersistentVolume": "/api/v1/persistentvolumes",
    "Service": "/api/v1/services",
    "Event": "/api/v1/events",
    "EndpointSlice": "/apis/discovery.k8s.io/v1/endpointslices",
    "Deployment": "/apis/apps/v1/deployments",
    "ReplicaSet": "/apis/apps/v1/replicasets",
    "StatefulSet": "/apis/apps/v1/statefulsets",
    "DaemonSet": "/apis/apps/v1/daemonsets",
    "Job": "/apis/batch/v1/jobs",
    "PodDisruptionBudget": "/apis/policy/v1/poddisruptionbudgets",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/horizontalpodautoscalers",
}


@dataclass(frozen=True)
class Observation:
    """One object's state: `ok`, a one-line summary, and the reasons when it is not ok."""

    kind: str
    namespace: str
    name: str
    ok: bool
    summary: str
    reasons: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()  # where its ready pods run (workloads), its volume's node (claims)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass
class Snapshot:
    items: dict[str, list[dict[str, Any]]]
    _owners: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def fetch(cls, client: ApiClient) -> Snapshot:
        items = {}
        for kind, path in _LISTS.items():
            status, body, _ = client.request("GET", path)
            items[kind] = body.get("items", []) if status == 200 else []
            for obj in items[kind]:
                obj["kind"] = kind  # list items carry no kind of their own
        snap = cls(items)
        snap._owners = {o["metadata"]["uid"]: o for kind in (*WORKLOADS, "ReplicaSet") for o in items[kind]}
        return snap

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        for obj in self.items.get(kind, []):
            meta = obj["metadata"]
            if meta["name"] == name and meta.get("namespace", "") == namespace:
                return obj
        return None

    def workload_of(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """The Deployment, StatefulSet, DaemonSet or Job a pod belongs to."""
        obj: dict[str, Any] | None = pod
        while obj is not None:
            refs = [r for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")]
            obj = self._owners.get(refs[0]["uid"]) if refs else None
            if obj is not None and obj["kind"] in WORKLOADS:
                return obj
        return None

    def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        uid = workload["metadata"]["uid"]
        return [p for p in self.items["Pod"] if (w := self.workload_of(p)) is not None and w["metadata"]["uid"] == uid]

    def warnings(self, kind: str, namespace: str, name: str) -> list[str]:
        """The newest message of each reason of the Warning events about one object."""
        latest: dict[str, tuple[str, str]] = {}
        for event in self.items["Event"]:
            ref = event.get("involvedObject", {})
            if event.get("type") != "Warning" or (ref.get("kind"), ref.get("namespace", ""), ref.get("name")) != (
                kind,
                namespace,
                name,
            ):
                continue
            stamp = event.get("lastTimestamp") or event.get("eventTime") or ""
            reason = event.get("reason", "")
            if reason not in latest or stamp >= latest[reason][0]:
                latest[reason] = (stamp, f"{reason}: {event.get('message', '').strip()}")
        return [message for _, message in sorted(latest.values(), key=lambda v: v[1])]

    def undecided(self, lost: frozenset[str]) -> bool:
        """Whether some component has yet to act: a pod the scheduler has not judged, a pod on a
        working node that kwok has not started, an autoscaler never reconciled. A quiet spell
        then is a slow component, not the end."""
        for pod in self.items["Pod"]:
            if pod["metadata"].get("deletionTimestamp") or _ready(pod):
                continue
            status = pod.get("status", {})
            if status.get("phase") in ("Succeeded", "Failed"):
                continue
            node = pod["spec"].get("nodeName")
            if node is None and not any(c["type"] == "PodScheduled" for c in status.get("conditions", [])):
                return True
            if node is not None and node not in lost:
                return True
        return any(not h.get("status", {}).get("conditions") for h in self.items["HorizontalPodAutoscaler"])

    def signature(self) -> tuple[Any, ...]:
        """What changes while the cluster is still moving (pods and workloads, not heartbeats)."""
        return tuple(
            sorted(
                (p["metadata"]["namespace"], p["metadata"]["name"], p["spec"].get("nodeName"), _ready(p))
                for p in self.items["Pod"]
            )
        ) + tuple(
            sorted((c["metadata"]["name"], c["status"].get("phase")) for c in self.items["PersistentVolumeClaim"])
        )


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _pod_reasons(pods: list[dict[str, Any]], lost: frozenset[str]) -> list[str]:
    """Why the pods that are not ready are not, pods with the same reason counted together: in
    the scheduler's words when unscheduled."""
    reasons: dict[str, list[str]] = {}
    for pod in pods:
        if _ready(pod) or pod.get("status", {}).get("phase") == "Succeeded":
            continue
        name, node = pod["metadata"]["name"], pod["spec"].get("nodeName")
        scheduled = [c for c in pod.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"]
        if pod["metadata"].get("deletionTimestamp"):
            why = f"being deleted on {node}" + (", which is lost" if node in lost else "")
        elif scheduled and scheduled[0]["status"] == "False":
            why = f"unschedulable: {scheduled[0].get('message') or scheduled[0].get('reason', '')}"
        elif node in lost:
            why = f"on {node}, which is lost"
        elif node:
            why = f"not ready on {node}"
        else:
            why = "not scheduled yet"
        reasons.setdefault(why, []).append(name)
    return [
        f"pod {names[0]} {why}" if len(names) == 1 else f"{len(names)} pods ({', '.join(sorted(names))}) {why}"
        for why, names in reasons.items()
    ]


def _where(pods: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(sorted(p["spec"]["nodeName"] for p in pods if _ready(p)))


def _on(nodes: tuple[str, ...]) -> str:
    if not nodes:
        return ""
    counts = Counter(nodes)
    return " on " + ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(counts.items()))


def workload(snap: Snapshot, kind: str, namespace: str, name: str, lost: frozenset[str] = frozenset()) -> Observation:
    obj = snap.get(kind, namespace, name)
    if obj is None:
        return Observation(kind, namespace, name, False, "missing", ("it was not created",))
    spec, status = obj["spec"], obj.get("status", {})
    pods = snap.pods_of(obj)
    reasons = snap.warnings(kind, namespace, name)
    if kind == "Deployment":
        for rs in snap.items["ReplicaSet"]:
            if any(r["uid"] == obj["metadata"]["uid"] for r in rs["metadata"].get("ownerReferences", [])):
                reasons += snap.warnings("ReplicaSet", namespace, rs["metadata"]["name"])
    ready_pods = [p for p in pods if _ready(p)]
    nodes = _where(pods)
    if kind == "Job":
        done = any(c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions", []))
        failed = [c.get("message", "") for c in status.get("conditions", []) if c["type"] == "Failed"]
        reasons += failed + _pod_reasons(pods, lost)
        return Observation(kind, namespace, name, done, "complete" if done else "not complete", tuple(reasons))
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled", 0))
        if desired == 0:
            reasons.append("its node selector and tolerations match no node")
    else:
        desired = int(spec.get("replicas", 1))
    ready = len(ready_pods)
    ok = ready >= desired > 0 or (desired == 0 and kind != "DaemonSet")
    if not ok:
        reasons += _pod_reasons(pods, lost)
        if len(pods) < desired and not any("FailedCreate" in r for r in reasons):
            reasons.append(f"{desired - len(pods)} of {desired} pods not created")
    return Observation(kind, namespace, name, ok, f"{ready}/{desired} ready{_on(nodes)}", tuple(reasons), nodes)


def claim(snap: Snapshot, obj: dict[str, Any]) -> Observation:
    meta, spec = obj["metadata"], obj["spec"]
    phase = obj.get("status", {}).get("phase", "Pending")
    reasons = snap.warnings("PersistentVolumeClaim", meta["namespace"], meta["name"])
    node = ""
    volume = snap.get("PersistentVolume", "", spec.get("volumeName", "")) if spec.get("volumeName") else None
    if volume is not None:
        terms = volume["spec"].get("nodeAffinity", {}).get("required", {}).get("nodeSelectorTerms", [])
        hosts = [
            v
            for term in terms
            for e in term.get("matchExpressions", [])
            if e["key"] == "kubernetes.io/hostname"
            for v in e.get("values", [])
        ]
        node = ",".join(hosts)
    cls = spec.get("storageClassName") or "(no class)"
    summary = f"{phase}" + (f" to {spec['volumeName']}" if spec.get("volumeName") else "") + f" ({cls})"
    summary += f" on {node}" if node else ""
    if phase != "Bound" and not reasons:
        reasons = ["no volume bound yet (its pod is not scheduled)"]
    return Observation(
        "PersistentVolumeClaim",
        meta["namespace"],
        meta["name"],
        phase == "Bound",
        summary,
        tuple(reasons) if phase != "Bound" else (),
        tuple(node.split(",")) if node else (),
    )


def service(snap: Snapshot, obj: dict[str, Any]) -> Observation:
    meta, spec = obj["metadata"], obj["spec"]
    ns, name = meta["namespace"], meta["name"]
    slices = [
        s
        for s in snap.items["EndpointSlice"]
        if s["metadata"].get("namespace") == ns
        and s["metadata"].get("labels", {}).get("kubernetes.io/service-name") == name
    ]
    endpoints = [e for s in slices for e in s.get("endpoints") or []]
    ready = [e for e in endpoints if e.get("conditions", {}).get("ready") is not False]
    selector = spec.get("selector")
    if selector:
        text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        reasons = () if ready else (f"its selector {text} matches no ready pod",)
    else:
        reasons = () if endpoints else ("no selector and no EndpointSlice",)
    kind = "headless" if spec.get("clusterIP") == "None" else spec.get("type", "ClusterIP")
    return Observation("Service", ns, name, not reasons, f"{len(ready)} ready endpoint(s) ({kind})", reasons)


def budget(snap: Snapshot, obj: dict[str, Any]) -> Observation:
    meta, status = obj["metadata"], obj.get("status", {})
    expected = int(status.get("expectedPods", 0))
    healthy, desired = int(status.get("currentHealthy", 0)), int(status.get("desiredHealthy", 0))
    allowed = int(status.get("disruptionsAllowed", 0))
    reasons: list[str] = []
    if expected == 0:
        reasons.append("its selector matches no pod")
    elif healthy < desired:
        reasons.append(f"{healthy} healthy of the {desired} it requires")
    summary = f"{healthy}/{expected} healthy, {allowed} disruption(s) allowed"
    return Observation("PodDisruptionBudget", meta["namespace"], meta["name"], not reasons, summary, tuple(reasons))


def autoscaler(snap: Snapshot, obj: dict[str, Any]) -> Observation:
    meta, spec, status = obj["metadata"], obj["spec"], obj.get("status", {})
    current, minimum = int(status.get("currentReplicas", 0)), int(spec.get("minReplicas", 1))
    ok = current >= minimum
    reasons = () if ok else (f"{current} replicas, below its minimum of {minimum}",)
    summary = f"{current} replicas (min {minimum}, max {spec['maxReplicas']})"
    return Observation("HorizontalPodAutoscaler", meta["namespace"], meta["name"], ok, summary, reasons)


def observe(
    snap: Snapshot, applied: list[tuple[str, str, str]], lost: frozenset[str] = frozenset()
) -> list[Observation]:
    """Every applied workload, Service, PDB and HPA, and every claim in their namespaces."""
    result = []
    namespaces = {ns for _, ns, _ in applied if ns}
    for kind, ns, name in applied:
        if kind in WORKLOADS:
            result.append(workload(snap, kind, ns, name, lost))
        elif kind in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
            obj = snap.get(kind, ns, name)
            if obj is None:
                result.append(Observation(kind, ns, name, False, "missing", ("it was not created",)))
            else:
                judge = {"Service": service, "PodDisruptionBudget": budget, "HorizontalPodAutoscaler": autoscaler}
                result.append(judge[kind](snap, obj))
    result += [claim(snap, c) for c in snap.items["PersistentVolumeClaim"] if c["metadata"]["namespace"] in namespaces]
    order = defaultdict(lambda: 9, {k: i for i, k in enumerate((*WORKLOADS, "PersistentVolumeClaim", "Service"))})
    return sorted(result, key=lambda o: (order[o.kind], o.kind, o.namespace, o.name))
