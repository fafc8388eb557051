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
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from ipaddress import ip_address, ip_network
from typing import Any

from ..shared import SOURCE_ANNOTATION

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


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    wanted = (selector or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


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

    def ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespaces.get(namespace, {"kubernetes.io/metadata.name": namespace})

    def _policies(self, pod: Pod, direction: str) -> list[dict[str, Any]]:
        """The policies of `direction` that select `pod`, in the order they were given."""
        general, by_label = self._policy_index.get((pod.namespace, direction), ([], {}))
        candidates = general + [entry for label in pod.labels.items() for entry in by_label.get(label, [])]
        return [p for _, p in sorted(candidates, key=lambda e: e[0]) if _matches(p["spec"]["podSelector"], pod.labels)]

    @cached_property
    def _policy_index(
        self,
    ) -> dict[tuple[str, str], tuple[list[tuple[int, dict[str, Any]]], dict[tuple[str, str], list[Any]]]]:
        """(namespace, direction) -> (policies selecting by no label, policies by one label of
        their selector): a pod is matched only against policies that can select it (a policy
        per workload made this check grow with the square of the workloads)."""
        index: dict[tuple[str, str], tuple[list[tuple[int, dict[str, Any]]], dict[tuple[str, str], list[Any]]]] = {}
        for number, policy in enumerate(self.policies):
            wanted = (policy["spec"]["podSelector"] or {}).get("matchLabels") or {}
            for direction in policy["spec"]["policyTypes"]:
                general, by_label = index.setdefault((policy["metadata"]["namespace"], direction), ([], {}))
                if wanted:
                    by_label.setdefault(min(wanted.items()), []).append((number, policy))
                else:
                    general.append((number, policy))
        return index

    def _peer(self, peer: dict[str, Any], other: Pod | str) -> bool:
        if "ipBlock" in peer:
            return isinstance(other, str) and ip_address(other) in ip_network(peer["ipBlock"]["cidr"])
        if isinstance(other, str):
            return False
        if "namespaceSelector" in peer and not _matches(peer["namespaceSelector"], self.ns_labels(other.namespace)):
            return False
        return _matches(peer.get("podSelector"), other.labels)

    def _admits(self, policies: list[dict[str, Any]], key: str, peers: str, port: int, other: Pod | str) -> bool:
        if not policies:
            return True
        for policy in policies:
            for rule in policy["spec"].get(key, []):
                port_ok = not rule.get("ports") or any(p.get("port") == port for p in rule["ports"])
                listed = rule.get(peers)
                # A peer with a podSelector alone means pods of the policy's own namespace.
                if port_ok and (
                    not listed
                    or any(
                        self._peer(peer, other)
                        and ("namespaceSelector" in peer or "ipBlock" in peer or _same_ns(policy, other))
                        for peer in listed
                    )
                ):
                    return True
        return False

    def egress_admits(self, pod: Pod, port: int, dest: Pod | str) -> bool:
        return self._admits(self._policies(pod, "Egress"), "egress", "to", port, dest)

    def ingress_admits(self, pod: Pod, port: int, source: Pod) -> bool:
        return self._admits(self._policies(pod, "Ingress"), "ingress", "from", port, source)


def _same_ns(policy: dict[str, Any], other: Pod | str) -> bool:
    return isinstance(other, Pod) and other.namespace == policy["metadata"]["namespace"]


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
    pods = [p for p in cluster.pods if p.namespace == namespace and _matches({"matchLabels": selector}, p.labels)]
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
