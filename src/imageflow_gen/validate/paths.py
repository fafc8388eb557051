"""Every path the workloads are configured to use is open, on the rendered objects alone.

A path starts where a workload is told to call something: an address in its environment
(MinIO, Kafka, the OTel agent) or a route of the ingress gateway (a VirtualService bound to the
Gateway). Each is followed layer by layer, as the cluster would:

- DNS: the name is a Service of the cluster (`<service>.<namespace>.svc.cluster.local`, or a
  route's short name in its own namespace);
- Service: the Service has the port, and selects pods that serve its target port (or, without
  a selector, has EndpointSlices with addresses on that port);
- NetworkPolicy: the caller's egress and the destination's ingress both admit the traffic (a
  pod selected by a policy of a direction accepts only what some rule of it allows).

A leg that fails is a problem naming the path and the layer, located at the caller's profile
key (the objects' source annotation). The plan derives the policies from its flows; this reads
only what was rendered, so a flow the plan forgot, a renamed Service or a port that moved is
found before anything is written.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from ipaddress import ip_address, ip_network
from typing import Any

from ..shared import SOURCE_ANNOTATION, LabelIndex, has_labels

# The variables through which workloads are told where to call.
CALL_VARIABLES = ("MINIO_ENDPOINT", "KAFKA_BOOTSTRAP_SERVERS", "OTEL_EXPORTER_OTLP_ENDPOINT")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
_CLUSTER_NAME = re.compile(r"^(?P<service>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc\.cluster\.local$")


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: dict[str, str]
    ports: dict[str | int, int]  # container port by name and by number
    source: str  # "file#key": the profile key the workload comes from
    calls: tuple[tuple[str, str], ...] = ()  # (variable, value) of its CALL_VARIABLES


@dataclass(frozen=True)
class PathProblem:
    source: str  # "file#key" of the caller
    message: str
    caller: tuple[str, str] = ("", "")  # namespace and name of the calling workload (or the gateway)
    target: str = ""  # what it calls: host:port
    layer: str = ""  # DNS, Service or NetworkPolicy


def _wanted(selector: dict[str, Any] | None) -> dict[str, str]:
    return (selector or {}).get("matchLabels") or {}


class _SelectorIndex:
    """Entries found by the labels their selector (matchLabels) needs, without scanning them
    all: each is filed under its selector's rarest label among the pods (or with the entries
    that select everything), so a pod is compared only with entries that can select it."""

    def __init__(self, entries: list[tuple[dict[str, str], Any]], counts: Counter[tuple[str, str]]) -> None:
        self.everything: list[tuple[dict[str, str], Any]] = []
        self.by_label: dict[tuple[str, str], list[tuple[dict[str, str], Any]]] = {}
        for wanted, entry in entries:
            if wanted:
                rarest = min(wanted.items(), key=lambda label: (counts[label], label))
                self.by_label.setdefault(rarest, []).append((wanted, entry))
            else:
                self.everything.append((wanted, entry))

    def select(self, labels: dict[str, str]) -> list[Any]:
        found = self.everything + [e for label in labels.items() for e in self.by_label.get(label, ())]
        return [entry for wanted, entry in found if has_labels(labels, wanted)]


# The ports a rule admits (None: every port).
Ports = frozenset[Any] | None


@dataclass(frozen=True)
class _Admission:
    """What the policies of one direction that select a pod admit, every rule of them together,
    indexed: with a policy per client (MinIO's ingress), checking each caller against every
    rule grew with the square of the workloads."""

    closed: bool  # some policy selects the pod: only what a rule admits passes
    namespace: str  # the pod's (and its policies'): a podSelector alone picks pods of it
    everyone: tuple[Ports, ...]  # rules that list no peers
    blocks: tuple[tuple[Any, Ports], ...]  # ipBlock networks (for addresses)
    # Peers with a namespaceSelector: by its labels, an index of their podSelectors (MinIO's
    # clients in another namespace are a peer each).
    by_namespace: tuple[tuple[dict[str, str], _SelectorIndex], ...]
    same_ns: _SelectorIndex  # peers with a podSelector alone (or empty): their rules' ports


def _port_in(port: int, ports: Ports) -> bool:
    return ports is None or port in ports


class Cluster:
    """The rendered objects, indexed as the paths need them."""

    def __init__(self, objs: list[dict[str, Any]]) -> None:
        self.namespaces: dict[str, dict[str, str]] = {}
        self.pods: list[Pod] = []
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.slices: list[dict[str, Any]] = []
        self.policies: list[dict[str, Any]] = []
        self.routes: list[dict[str, Any]] = []
        self.gateways: dict[tuple[str, str], dict[str, Any]] = {}
        # (direction, id of the pod) -> (the pod, kept so that its id stays its own; its admission)
        self._admissions: dict[tuple[str, int], tuple[Pod, _Admission]] = {}
        for obj in objs:
            meta, kind = obj["metadata"], obj["kind"]
            if kind == "Namespace":
                self.namespaces[meta["name"]] = {
                    **(meta.get("labels") or {}),
                    "kubernetes.io/metadata.name": meta["name"],
                }
            elif kind in WORKLOADS:
                template = obj["spec"]["template"]
                ports: dict[str | int, int] = {}
                calls = []
                for container in template["spec"]["containers"]:
                    for port in container.get("ports", []):
                        ports[port["containerPort"]] = port["containerPort"]
                        if "name" in port:
                            ports[port["name"]] = port["containerPort"]
                    calls += [
                        (env["name"], env["value"])
                        for env in container.get("env", [])
                        if env.get("name") in CALL_VARIABLES and "value" in env
                    ]
                source = (meta.get("annotations") or {}).get(SOURCE_ANNOTATION, "")
                labels = template["metadata"]["labels"]
                self.pods.append(Pod(meta["namespace"], meta["name"], labels, ports, source, tuple(calls)))
            elif kind == "Service":
                self.services[(meta["namespace"], meta["name"])] = obj
            elif kind == "EndpointSlice":
                self.slices.append(obj)
            elif kind == "NetworkPolicy":
                self.policies.append(obj)
            elif kind == "VirtualService":
                self.routes.append(obj)
            elif kind == "Gateway":
                self.gateways[(meta["namespace"], meta["name"])] = obj

    @cached_property
    def _pod_index(self) -> LabelIndex[Pod]:
        index: LabelIndex[Pod] = LabelIndex()
        for pod in self.pods:
            index.add(pod.namespace, pod.labels, pod)
        return index

    def selected(self, namespace: str, selector: dict[str, str]) -> list[Pod]:
        """The pods of `namespace` a Service's selector (not empty) selects, in the objects' order."""
        return self._pod_index.select(namespace, selector)

    def ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespaces.get(namespace, {"kubernetes.io/metadata.name": namespace})

    @cached_property
    def _label_counts(self) -> Counter[tuple[str, str]]:
        """How many pods carry each label: a selector is indexed under its rarest label."""
        return Counter(label for pod in self.pods for label in pod.labels.items())

    def _index(self, entries: list[tuple[dict[str, str], Any]]) -> _SelectorIndex:
        return _SelectorIndex(entries, self._label_counts)

    def _policies(self, pod: Pod, direction: str) -> list[dict[str, Any]]:
        """The policies of `direction` that select `pod`."""
        index = self._policy_index.get((pod.namespace, direction))
        return index.select(pod.labels) if index else []

    @cached_property
    def _policy_index(self) -> dict[tuple[str, str], _SelectorIndex]:
        """(namespace, direction) -> its policies by pod selector: a pod is matched only against
        policies that can select it (a policy per workload made this check grow with the square
        of the workloads)."""
        grouped: dict[tuple[str, str], list[tuple[dict[str, str], Any]]] = {}
        for policy in self.policies:
            wanted = _wanted(policy["spec"]["podSelector"])
            for direction in policy["spec"]["policyTypes"]:
                grouped.setdefault((policy["metadata"]["namespace"], direction), []).append((wanted, policy))
        return {key: self._index(entries) for key, entries in grouped.items()}

    def _admission(self, pod: Pod, direction: str) -> _Admission:
        found = self._admissions.get((direction, id(pod)))
        if found is None:
            key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
            everyone, blocks, same_ns = [], [], []
            by_namespace: dict[frozenset[tuple[str, str]], list[tuple[dict[str, str], Ports]]] = {}
            policies = self._policies(pod, direction)
            for policy in policies:
                for rule in policy["spec"].get(key, []):
                    ports = frozenset(p.get("port") for p in rule["ports"]) if rule.get("ports") else None
                    listed = rule.get(peers) or []
                    if not listed:
                        everyone.append(ports)
                    for peer in listed:
                        if "ipBlock" in peer:
                            blocks.append((ip_network(peer["ipBlock"]["cidr"]), ports))
                        elif "namespaceSelector" in peer:
                            namespaces = frozenset(_wanted(peer["namespaceSelector"]).items())
                            by_namespace.setdefault(namespaces, []).append((_wanted(peer.get("podSelector")), ports))
                        else:
                            same_ns.append((_wanted(peer.get("podSelector")), ports))
            admission = _Admission(
                bool(policies),
                pod.namespace,
                tuple(everyone),
                tuple(blocks),
                tuple((dict(namespaces), self._index(entries)) for namespaces, entries in by_namespace.items()),
                self._index(same_ns),
            )
            found = self._admissions[direction, id(pod)] = (pod, admission)
        return found[1]

    def _admits(self, pod: Pod, direction: str, port: int, other: Pod | str) -> bool:
        admission = self._admission(pod, direction)
        if not admission.closed or any(_port_in(port, ports) for ports in admission.everyone):
            return True
        if isinstance(other, str):
            address = ip_address(other)
            return any(address in network and _port_in(port, ports) for network, ports in admission.blocks)
        if other.namespace == admission.namespace and any(
            _port_in(port, ports) for ports in admission.same_ns.select(other.labels)
        ):
            return True
        # A namespaceSelector picks namespaces; a podSelector beside it, pods in them.
        labels = self.ns_labels(other.namespace)
        return any(
            has_labels(labels, namespaces) and any(_port_in(port, ports) for ports in index.select(other.labels))
            for namespaces, index in admission.by_namespace
        )

    def egress_admits(self, pod: Pod, port: int, dest: Pod | str) -> bool:
        return self._admits(pod, "Egress", port, dest)

    def ingress_admits(self, pod: Pod, port: int, source: Pod) -> bool:
        return self._admits(pod, "Ingress", port, source)


def _addresses(value: str) -> Iterator[tuple[str, int]]:
    """host:port pairs of an endpoint variable: a URL, host:port, or a comma-separated list."""
    for item in value.split(","):
        rest = item.strip().split("://", 1)[-1].split("/", 1)[0]
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            yield host, int(port)


def path_problems(objs: list[dict[str, Any]]) -> list[PathProblem]:
    """Every configured path that some layer does not open."""
    cluster = Cluster(objs)
    problems = []
    for caller in cluster.pods:
        for variable, value in caller.calls:
            for host, port in _addresses(value):
                what = f"{caller.namespace}/{caller.name} -> {host}:{port} ({variable})"
                problems += [
                    _problem(caller, caller.source, what, f"{host}:{port}", m)
                    for m in _follow(cluster, caller, host, port)
                ]
    problems += _gateway_routes(cluster)
    return problems


def _problem(caller: Pod, source: str, what: str, target: str, message: str) -> PathProblem:
    layer = message.split(":", 1)[0].split(" ", 1)[0]
    return PathProblem(source, f"{what}: {message}", (caller.namespace, caller.name), target, layer)


def _follow(cluster: Cluster, caller: Pod, host: str, port: int) -> list[str]:
    match = _CLUSTER_NAME.match(host)
    if not match:
        return [f"DNS: {host!r} is not a Service of the cluster (<service>.<namespace>.svc.cluster.local)"]
    return _to_service(cluster, caller, match["namespace"], match["service"], port)


def _to_service(cluster: Cluster, caller: Pod, namespace: str, name: str, port: int) -> list[str]:
    service = cluster.services.get((namespace, name))
    if service is None:
        return [f"DNS: no Service {name!r} in namespace {namespace!r}"]
    spec = service["spec"]
    ports = [p for p in spec["ports"] if p["port"] == port]
    if not ports:
        return [f"Service {namespace}/{name}: no port {port}"]
    target = ports[0].get("targetPort", port)
    selector = spec.get("selector")
    if not selector:
        return _to_addresses(cluster, caller, namespace, name, ports[0])
    pods = cluster.selected(namespace, selector)
    if not pods:
        return [f"Service {namespace}/{name}: its selector {selector} selects no pods"]
    problems = []
    for pod in pods:
        if target not in pod.ports:
            problems.append(f"Service {namespace}/{name}: pod {pod.name} has no container port {target}")
            continue
        number = pod.ports[target]
        if not cluster.egress_admits(caller, number, pod):
            problems.append(
                f"NetworkPolicy: {caller.namespace}/{caller.name}'s egress denies {namespace}/{pod.name}:{number}"
            )
        if not cluster.ingress_admits(pod, number, caller):
            problems.append(
                f"NetworkPolicy: {namespace}/{pod.name}'s ingress denies {caller.namespace}/{caller.name} on {number}"
            )
    return problems


def _to_addresses(cluster: Cluster, caller: Pod, namespace: str, name: str, port: dict[str, Any]) -> list[str]:
    """A selector-less Service: its EndpointSlices' addresses, outside the pods' policies but the caller's."""
    slices = [
        s
        for s in cluster.slices
        if s["metadata"]["namespace"] == namespace
        and (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name
    ]
    wanted = port.get("name")
    targets = [
        (address, p["port"])
        for s in slices
        for p in s.get("ports") or []
        if p.get("name") == wanted
        for endpoint in s.get("endpoints") or []
        for address in endpoint.get("addresses") or []
    ]
    if not targets:
        return [f"Service {namespace}/{name}: no EndpointSlice address for port {port['port']}"]
    return [
        f"NetworkPolicy: {caller.namespace}/{caller.name}'s egress denies {address}:{number}"
        for address, number in targets
        if not cluster.egress_admits(caller, number, address)
    ]


def _gateway_routes(cluster: Cluster) -> list[PathProblem]:
    """The ingress gateway's routes: to each destination, through its Service, past its policies."""
    problems = []
    for route in cluster.routes:
        meta = route["metadata"]
        for ref in route["spec"].get("gateways") or []:
            gw_ns, _, gw_name = ref.rpartition("/")
            gateway = cluster.gateways.get((gw_ns or meta["namespace"], gw_name))
            if gateway is None:
                continue  # the mesh, or a gateway not in the output
            selector = gateway["spec"].get("selector") or {}
            # The gateway's pods live in Istio's namespace, which the output does not own.
            caller = Pod("istio-system", "istio-ingressgateway", dict(selector), {}, "")
            source = (meta.get("annotations") or {}).get(SOURCE_ANNOTATION, "")
            for http in route["spec"].get("http", []):
                for dest in http.get("route", []):
                    host, number = dest["destination"]["host"], dest["destination"].get("port", {}).get("number")
                    if number is None:
                        continue
                    name, _, namespace = host.partition(".")
                    what = f"gateway {gw_name} -> {host}:{number} (VirtualService {meta['namespace']}/{meta['name']})"
                    for message in _to_service(
                        cluster, caller, namespace.split(".")[0] or meta["namespace"], name, number
                    ):
                        problems.append(_problem(caller, source, what, f"{host}:{number}", message))
    return problems
