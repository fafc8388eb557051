"""The topology as a diagram: VMs, namespaces, workloads, Kafka, buckets, and the allowed flows.

Built from the plan, so the diagram shows what is deployed: the workloads are the planned
Deployments, StatefulSets and DaemonSets, and each in-cluster edge is a flow the generated
NetworkPolicies allow at both ends (`plan.network.flows`); a flow the policies deny has no
edge. Edges from outside the cluster (Internet to the edge VM, the edge VM's proxying, the VPN
to Kafka, the VMs to MinIO's node port) are drawn dashed: no NetworkPolicy governs their
source (MinIO's admits the VMs' addresses). `tests/test_graph.py` checks the in-cluster edges,
and the VMs' leg to MinIO, against an evaluation of the rendered NetworkPolicy objects.

A configured path that the render gate (`validate/paths.py`) finds closed is drawn as a
crossed edge to what it cannot reach, labelled with the layer that closes it: render refuses
such an output, and `imageflow-gen graph` (which runs the gate) shows where. The output
README's diagram needs no such edge: its render passed the gate.

Two writers share one graph: Mermaid (what Git hosts render, used in the output README) and
Graphviz DOT.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .model import Topology
from .plan import Plan
from .plan.messaging import VPN_NETWORK, kafka_vm_address
from .model.checks import CONNECT_USER, endpoint_targets, kafka_network, kafka_users, postgres_users
from .plan.endpoints import published_address
from .plan.exporters import vm_exporters
from .plan.monitoring import KUBELET_PORT
from .plan.network import INGRESS_GATEWAY, ISTIO_NAMESPACE, Flow, flows
from .plan.storage import vm_clients
from .shared import LabelIndex

if TYPE_CHECKING:  # the diagram takes the gate's findings; it never runs the gate itself
    from .validate.paths import PathProblem

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
FORMATS = ("mermaid", "dot")


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    group: str
    shape: str = "box"  # box | cylinder | round | anchor
    namespace: str | None = None
    pod_labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Group:
    id: str
    label: str
    parent: str | None = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    kind: str  # flow: allowed by the NetworkPolicies; outside: not governed by them; holds: a bucket;
    # broken: a configured path some layer closes


@dataclass
class Graph:
    title: str
    groups: list[Group] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def _id(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", p) for p in parts)


def _ports(ports: tuple[int, ...] | list[int]) -> str:
    return "TCP " + ", ".join(str(p) for p in sorted(ports))


def build_graph(plan: Plan, closed: Sequence[PathProblem] = ()) -> Graph:
    """The diagram of a planned topology; `closed`, the paths the render gate found closed
    (`validate.paths.path_problems`), drawn as such."""
    topo = plan.topology
    graph = Graph(title=f"imageflow-gen {plan.profile}: {topo.cluster.name}")
    vms = {vm.name: vm for vm in topo.vms}
    edge_vm, kafka_vm = topo.edge.vm, topo.messaging.kafka.vm
    cluster_vm = next((vm.name for vm in topo.vms if vm.role == "compute"), None)
    cluster_group = _id("vm", cluster_vm) if cluster_vm else "cluster"
    graph.nodes.append(Node("internet", "Internet", "", shape="round"))
    for vm in topo.vms:
        what = f"K3s {topo.cluster.name}" if vm.name == cluster_vm else vm.purpose
        graph.groups.append(Group(_id("vm", vm.name), f"{vm.name} · {vm.role} · {vm.address} · {what}"))
    if cluster_vm is None:
        graph.groups.append(Group(cluster_group, f"K3s {topo.cluster.name}"))

    # The edge VM's containers and the Kafka brokers (docker compose, outside the cluster).
    on_vm = [c for c in topo.edge.components if "vm" in c.runs_on]
    for component in on_vm:
        graph.nodes.append(
            Node(
                _id("vm", edge_vm, component.name),
                f"{component.name}<br/>container :{component.port}",
                _id("vm", edge_vm),
            )
        )
    if topo.messaging.kafka.connect:
        graph.nodes.append(
            Node(
                _id("vm", kafka_vm, CONNECT_USER),
                f"{CONNECT_USER}<br/>container :{topo.messaging.kafka.connect.rest_port}",
                _id("vm", kafka_vm),
            )
        )
    brokers = ", ".join(b.name for b in topo.messaging.kafka.brokers)
    graph.nodes.append(
        Node(_id("vm", kafka_vm, "kafka"), f"Kafka (KRaft)<br/>{brokers}", _id("vm", kafka_vm), shape="cylinder")
    )
    # The typed workloads on the VMs (the node exporter's among them), and PostgreSQL when a VM runs it.
    for w in [*topo.workloads, *vm_exporters(topo)]:
        if w.vm is not None:
            ports = ", ".join(f":{p.port}" for p in w.ports)
            graph.nodes.append(
                Node(_id("vm", w.vm, w.name), f"{w.name}<br/>container {ports}".rstrip(), _id("vm", w.vm))
            )
    pg = topo.storage.postgresql
    if pg is not None and pg.vm is not None:
        graph.nodes.append(
            Node(_id("vm", pg.vm, pg.name), f"PostgreSQL<br/>{pg.name} :{pg.port}", _id("vm", pg.vm), shape="cylinder")
        )

    # Namespaces and workloads in the cluster.
    namespaces = sorted({n.name for n in topo.namespaces} | {ISTIO_NAMESPACE})
    for ns in namespaces:
        graph.groups.append(Group(_id("ns", ns), f"namespace {ns}", cluster_group))
    graph.nodes.append(
        Node(
            _id("ns", ISTIO_NAMESPACE, "ingressgateway"),
            "istio-ingressgateway",
            _id("ns", ISTIO_NAMESPACE),
            namespace=ISTIO_NAMESPACE,
            pod_labels=tuple(sorted(INGRESS_GATEWAY.items())),
        )
    )
    for spec in plan.specs:
        if spec.kind in WORKLOAD_KINDS:
            ns = spec.values["namespace"]
            graph.nodes.append(
                Node(
                    _id("ns", ns, spec.name),
                    f"{spec.name}<br/>{spec.kind}",
                    _id("ns", ns),
                    namespace=ns,
                    pod_labels=tuple(sorted(spec.values["pod_labels"].items())),
                )
            )
    minio = topo.storage.minio
    minio_id = _id("ns", minio.namespace, "minio")
    for bucket in minio.buckets:
        bucket_id = _id("bucket", bucket.name)
        graph.nodes.append(
            Node(bucket_id, f"bucket {bucket.name}<br/>{bucket.access}", _id("ns", minio.namespace), shape="cylinder")
        )
        graph.edges.append(Edge(minio_id, bucket_id, "holds", "holds"))
    masters = {n.ip: n.name for n in topo.cluster.master_nodes}
    api_server = _id("k3s", "api-server")
    graph.nodes.append(Node(api_server, f"K3s API server<br/>{', '.join(sorted(masters.values()))}", cluster_group))
    graph.nodes.append(Node(_id("k3s", "kubelets"), f"kubelets<br/>every node :{KUBELET_PORT}", cluster_group))

    ends = _Ends(graph.nodes)
    for flow in flows(topo):
        _add_flow(graph, ends, topo, flow, kafka_vm, masters, api_server)
    _outside_edges(graph, topo, on_vm, edge_vm, kafka_vm, vms)
    _broken_paths(graph, closed)
    used = {e.source for e in graph.edges} | {e.target for e in graph.edges}
    optional = {_id("k3s", "kubelets")}  # drawn when scraped
    graph.nodes = [n for n in graph.nodes if (n.shape != "anchor" and n.id not in optional) or n.id in used]
    return graph


def _broken_paths(graph: Graph, closed: Sequence[PathProblem]) -> None:
    """Each closed path as an edge to what it cannot reach, labelled with the layer that closes
    it (render refuses such an output; the diagram shows why)."""
    for problem in closed:
        namespace, name = problem.caller
        source = (
            _id("ns", ISTIO_NAMESPACE, "ingressgateway") if namespace == ISTIO_NAMESPACE else _id("ns", namespace, name)
        )
        target = _id("unreached", problem.target)
        if not any(n.id == target for n in graph.nodes):
            graph.nodes.append(Node(target, problem.target, "", shape="round"))
        edge = Edge(source, target, f"closed: {problem.layer}", "broken")
        if edge not in graph.edges:
            graph.edges.append(edge)


class _Ends:
    """What a flow's end can name: the workload nodes (by namespace and pod label), and the
    'any pod' anchors drawn so far."""

    def __init__(self, nodes: list[Node]) -> None:
        self.workloads: LabelIndex[str] = LabelIndex()
        for n in nodes:
            if n.namespace is not None and n.shape != "anchor":
                self.workloads.add(n.namespace, dict(n.pod_labels), n.id)
        self.anchors: set[str] = set()


def _endpoints(graph: Graph, ends: _Ends, namespace: str | None, pods: dict[str, str]) -> list[str]:
    """The nodes a flow's end selects: matching workloads, or the namespace's 'any pod' anchor."""
    if namespace is None:
        return []
    if not pods:
        anchor = _id("ns", namespace, "any")
        if anchor not in ends.anchors:
            ends.anchors.add(anchor)
            graph.nodes.append(Node(anchor, "any pod", _id("ns", namespace), shape="anchor", namespace=namespace))
        return [anchor]
    return ends.workloads.select(namespace, pods)


def _add_flow(
    graph: Graph,
    ends: _Ends,
    topo: Topology,
    flow: Flow,
    kafka_vm: str,
    masters: dict[str, str],
    api_server: str,
) -> None:
    sources = _endpoints(graph, ends, flow.source_ns, flow.source_pods)
    if flow.dest_cidrs:
        kafka_address = f"{kafka_vm_address(topo)}/32"
        published = _published(topo)
        targets: list[tuple[str, tuple[int, ...]]] = []
        for cidr in flow.dest_cidrs:
            address = cidr.removesuffix("/32")
            by_node: dict[str, list[int]] = {}
            for port in flow.ports:  # a VM's published port is its service's; Kafka's the rest
                if (address, port) in published:
                    by_node.setdefault(published[address, port], []).append(port)
                elif cidr == kafka_address:
                    by_node.setdefault(_id("vm", kafka_vm, "kafka"), []).append(port)
            targets += [(node, tuple(ports)) for node, ports in by_node.items()]
            nodes = {str(n.ip) for n in topo.cluster.nodes}
            if address in nodes and KUBELET_PORT in flow.ports:  # a kubelet: each node's
                targets.append((_id("k3s", "kubelets"), (KUBELET_PORT,)))
            elif address in masters:
                targets.append((api_server, flow.ports))
    else:
        targets = [(t, flow.ports) for t in _endpoints(graph, ends, flow.dest_ns, flow.dest_pods)]
    for source in sources:
        for target, ports in targets:
            graph.edges.append(Edge(source, target, _ports(ports), "flow"))


def _published(topo: Topology) -> dict[tuple[str, int], str]:
    """The node of each (VM address, port) a VM service publishes: the typed workloads', and
    PostgreSQL's when a VM runs it."""
    result = {}
    for target in endpoint_targets(topo).values():
        vm = target.vm
        if vm is None:
            continue
        for port in target.ports:
            published = published_address(topo, vm, port)
            if published is not None:
                result[published] = _id("vm", vm, target.name)
    gw = topo.edge.api_gateway
    if "vm" in gw.runs_on:  # the edge gateway's HTTPS, on every address of its VM
        address = next(str(v.address) for v in topo.vms if v.name == topo.edge.vm)
        result[(address, gw.https_port)] = _id("vm", topo.edge.vm, gw.name)
    for w in vm_exporters(topo):
        for port in w.ports:
            if (published := published_address(topo, str(w.vm), port)) is not None:
                result[published] = _id("vm", str(w.vm), w.name)
    return result


def _outside_edges(
    graph: Graph, topo: Topology, on_vm: list[Any], edge_vm: str, kafka_vm: str, vms: dict[str, Any]
) -> None:
    """Traffic outside the cluster's policies: into the edge VM, its proxying, the VPN to Kafka."""
    edge = topo.edge
    gateway = _id("vm", edge_vm, edge.api_gateway.name)
    istio = _id("ns", ISTIO_NAMESPACE, "ingressgateway")
    if edge.api_gateway in on_vm:
        graph.edges.append(Edge("internet", gateway, f"HTTPS {edge.api_gateway.https_port}", "outside"))
        for component in on_vm:
            if component is not edge.api_gateway:
                graph.edges.append(
                    Edge(gateway, _id("vm", edge_vm, component.name), f"HTTP {component.port}", "outside")
                )
    if topo.network.routes:
        graph.edges.append(Edge("internet", istio, f"HTTPS {topo.network.gateway.port}", "outside"))
    minio = topo.storage.minio
    for client in vm_clients(topo):
        graph.edges.append(
            Edge(
                _id("vm", client.vm or "", client.name),
                _id("ns", minio.namespace, "minio"),
                f"NodePort {minio.vm_access.node_port} to TCP {minio.port}",
                "outside",
            )
        )
    # Each VM workload whose uses name a database: by the node port, or to the VM that runs it.
    pg = topo.storage.postgresql
    for pg_user in dict.fromkeys((str(u.vm), u.name) for u in postgres_users(topo) if u.vm is not None):
        vm, name = pg_user
        if pg is None:
            break
        if pg.vm is None:
            target, label = _id("ns", str(pg.namespace), pg.name), f"NodePort {pg.vm_node_port} to TCP {pg.port}"
        else:
            where = "compose network" if pg.vm == vm else str(vms[pg.vm].address)
            target, label = _id("vm", pg.vm, pg.name), f"{where} TCP {pg.port}"
        graph.edges.append(Edge(_id("vm", vm, name), target, label, "outside"))
    # Each VM workload whose uses name topics: over the VPN, or on Kafka's own VM its private address.
    kafka = topo.messaging.kafka
    for user in dict.fromkeys((u.vm, u.name, kafka_network(topo, u)) for u in kafka_users(topo) if u.vm is not None):
        vm, name, network = user
        listener = kafka.listener_on(network)
        address = vms[kafka_vm].vpn_address if network == VPN_NETWORK else vms[kafka_vm].address
        if listener is None or address is None:
            continue
        ports = ", ".join(str(p) for p in sorted(b.ports[listener.name] for b in kafka.brokers))
        label = f"VPN {address} TCP {ports}" if network == VPN_NETWORK else f"{address} TCP {ports}"
        graph.edges.append(Edge(_id("vm", vm, name), _id("vm", kafka_vm, "kafka"), label, "outside"))


# ---- writers ------------------------------------------------------------------------------


_MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _mermaid_label(text: str) -> str:
    """A label's text with Mermaid's entity codes for what could end it or become markup; the
    generator's own line breaks (<br/>) stay."""
    return "<br/>".join("".join(_MERMAID_ENTITIES.get(c, c) for c in part) for part in text.split("<br/>"))


def _nested(
    graph: Graph, node_line: Callable[[Node], str], open_lines: Callable[[Group], list[str]], close_line: str
) -> list[str]:
    """The nodes and groups as nested lines, each group's members indented inside it."""
    lines: list[str] = []

    def emit(group: str | None, indent: str) -> None:
        lines.extend(indent + node_line(n) for n in graph.nodes if (n.group or None) == group)
        for sub in (g for g in graph.groups if g.parent == group):
            lines.extend(indent + line for line in open_lines(sub))
            emit(sub.id, indent + "  ")
            lines.append(indent + close_line)

    emit(None, "  ")
    return lines


def mermaid(graph: Graph) -> str:
    """Mermaid flowchart: subgraphs for VMs and namespaces, solid edges for allowed flows."""
    shapes = {"box": ('["', '"]'), "cylinder": ('[("', '")]'), "round": ('(["', '"])'), "anchor": ('(("', '"))')}
    arrows = {"flow": "-->", "outside": "-.->", "holds": "---", "broken": "--x"}
    lines = [f"%% {graph.title}", "flowchart LR"]
    lines += _nested(
        graph,
        lambda n: f"{n.id}{shapes[n.shape][0]}{_mermaid_label(n.label)}{shapes[n.shape][1]}",
        lambda g: [f'subgraph {g.id}["{_mermaid_label(g.label)}"]'],
        "end",
    )
    lines += [f'  {e.source} {arrows[e.kind]}|"{_mermaid_label(e.label)}"| {e.target}' for e in graph.edges]
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("<br/>", "\\n") + '"'


def dot(graph: Graph) -> str:
    """Graphviz DOT: clusters for VMs and namespaces, solid edges for allowed flows."""
    shapes = {"box": "box", "cylinder": "cylinder", "round": "ellipse", "anchor": "circle"}
    styles = {"flow": "solid", "outside": "dashed", "holds": "dotted", "broken": "bold"}
    lines = [
        "digraph imageflow {",
        f"  label={_dot_text(graph.title)};",
        "  rankdir=LR;",
        "  compound=true;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    lines += _nested(
        graph,
        lambda n: f"{n.id} [label={_dot_text(n.label)}, shape={shapes[n.shape]}];",
        lambda g: [f"subgraph cluster_{g.id} {{", f"  label={_dot_text(g.label)};"],
        "}",
    )
    colour = {"broken": ", color=red"}
    lines += [
        f"  {e.source} -> {e.target} [label={_dot_text(e.label)}, style={styles[e.kind]}{colour.get(e.kind, '')}];"
        for e in graph.edges
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(graph: Graph, fmt: str) -> str:
    return mermaid(graph) if fmt == "mermaid" else dot(graph)
