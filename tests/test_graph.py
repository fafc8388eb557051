"""The diagram: its nodes are the topology, its solid edges exactly what the NetworkPolicies allow.

The allowed flows are computed here, independently of the code, by evaluating the rendered
NetworkPolicy objects the way Kubernetes does (a pod selected by a policy of a direction
accepts only what some rule of that direction allows), for every pair of pods and every
port any policy names.
"""

from __future__ import annotations

import json
import re
import subprocess
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from conftest import PROFILES, cli_without, run_cli
from imageflow_gen.graph import build_graph, dot, mermaid
from imageflow_gen.pipeline import validated
from imageflow_gen.plan.network import INGRESS_GATEWAY, ISTIO_NAMESPACE
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate import tools as gates

PROFILE_NAMES = ["base", "dev", "staging", "prod"]


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    wanted = (selector or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


class Cluster:
    """Pods, namespace labels and NetworkPolicies read from the rendered objects."""

    def __init__(self, objs: list[dict[str, Any]]) -> None:
        self.ns_labels: dict[str, dict[str, str]] = {ISTIO_NAMESPACE: {}}
        self.pods: list[tuple[str, str, dict[str, str]]] = [
            (ISTIO_NAMESPACE, "istio-ingressgateway", dict(INGRESS_GATEWAY))
        ]
        self.policies: list[dict[str, Any]] = []
        for obj in objs:
            meta = obj["metadata"]
            if obj["kind"] == "Namespace":
                self.ns_labels[meta["name"]] = dict(meta.get("labels") or {})
            elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
                self.pods.append((meta["namespace"], meta["name"], obj["spec"]["template"]["metadata"]["labels"]))
            elif obj["kind"] == "NetworkPolicy":
                self.policies.append(obj)
        for ns, labels in self.ns_labels.items():
            labels["kubernetes.io/metadata.name"] = ns
        self.ports = sorted(
            {
                p["port"]
                for pol in self.policies
                for rule in pol["spec"].get("ingress", []) + pol["spec"].get("egress", [])
                for p in rule.get("ports", [])
            }
        )
        self.cidrs = sorted(
            {
                peer["ipBlock"]["cidr"]
                for pol in self.policies
                for rule in pol["spec"].get("egress", [])
                for peer in rule.get("to", [])
                if "ipBlock" in peer
            }
        )

    def _selecting(self, ns: str, labels: dict[str, str], direction: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == ns
            and direction in p["spec"]["policyTypes"]
            and _matches(p["spec"]["podSelector"], labels)
        ]

    def _peer_matches(self, peer: dict[str, Any], ns: str | None, labels: dict[str, str], ip: str | None) -> bool:
        if "ipBlock" in peer:
            return ip is not None and ip_address(ip) in ip_network(peer["ipBlock"]["cidr"])
        if ns is None:
            return False
        if "namespaceSelector" in peer and not _matches(peer["namespaceSelector"], self.ns_labels.get(ns, {})):
            return False
        return _matches(peer.get("podSelector"), labels)

    def _rule_allows(
        self, rule: dict[str, Any], peers_key: str, port: int, ns: str | None, labels: dict[str, str], ip: str | None
    ) -> bool:
        port_ok = not rule.get("ports") or any(p["port"] == port for p in rule["ports"])
        peers = rule.get(peers_key)
        return port_ok and (not peers or any(self._peer_matches(p, ns, labels, ip) for p in peers))

    def admits_from_outside(self, ip: str, dst: str, port: int) -> bool:
        """Whether traffic from an address outside the cluster reaches pod `dst` (ns/name) on
        `port`: only the destination's ingress policies decide."""
        ns, name = dst.split("/")
        labels = next(lbl for pod_ns, pod, lbl in self.pods if (pod_ns, pod) == (ns, name))
        ingress = self._selecting(ns, labels, "Ingress")
        return not ingress or any(
            self._rule_allows(r, "from", port, None, {}, ip) for p in ingress for r in p["spec"].get("ingress", [])
        )

    def allowed(self) -> set[tuple[str, str, int]]:
        """(source pod, destination pod or ip:ADDRESS, port) for everything both ends allow."""
        result = set()
        pods = [(f"{ns}/{name}", ns, labels) for ns, name, labels in self.pods]
        ips = sorted({c.removesuffix("/32") for c in self.cidrs})
        for src, src_ns, src_labels in pods:
            egress = self._selecting(src_ns, src_labels, "Egress")
            for port in self.ports:
                for dst, dst_ns, dst_labels in pods:
                    out_ok = not egress or any(
                        self._rule_allows(r, "to", port, dst_ns, dst_labels, None)
                        for p in egress
                        for r in p["spec"].get("egress", [])
                    )
                    ingress = self._selecting(dst_ns, dst_labels, "Ingress")
                    in_ok = not ingress or any(
                        self._rule_allows(r, "from", port, src_ns, src_labels, None)
                        for p in ingress
                        for r in p["spec"].get("ingress", [])
                    )
                    if out_ok and in_ok and (egress or ingress):
                        result.add((src, dst, port))
                for ip in ips:  # outside the cluster only the source's own policies decide
                    if egress and any(
                        self._rule_allows(r, "to", port, None, {}, ip)
                        for p in egress
                        for r in p["spec"].get("egress", [])
                    ):
                        result.add((src, f"ip:{ip}", port))
        return result


def _graph_flows(profile: str) -> tuple[set[tuple[str, str, int]], Any]:
    """The diagram's solid edges, expanded to (source pod, destination pod or ip:ADDRESS, port)."""
    _, topo, plan = validated(PROFILES, profile)
    graph = build_graph(plan)
    workloads = {
        n.id: f"{n.namespace}/{n.label.split('<br/>')[0]}" for n in graph.nodes if n.namespace and n.shape != "anchor"
    }
    kafka_vm = next(vm for vm in topo.vms if vm.name == topo.messaging.kafka.vm)
    externals = {
        f"vm_{kafka_vm.name}_kafka": [f"ip:{kafka_vm.address}"],
        "k3s_api_server": [f"ip:{n.ip}" for n in topo.cluster.master_nodes],
        "k3s_kubelets": [f"ip:{n.ip}" for n in topo.cluster.nodes],
    }
    # A service on a VM (a node in the VM's group) is reached at its VM's address.
    addresses = {f"vm_{vm.name}": f"ip:{vm.address}" for vm in topo.vms}
    externals |= {n.id: [addresses[n.group]] for n in graph.nodes if n.id not in externals and n.group in addresses}
    result = set()

    def expanded(node_id: str) -> list[str]:
        """A workload's pods; a namespace's anchor: every pod in it."""
        node = graph.node(node_id)
        if node.shape == "anchor":
            return [pod for other, pod in workloads.items() if graph.node(other).namespace == node.namespace]
        return [workloads[node_id]]

    for edge in (e for e in graph.edges if e.kind == "flow"):
        sources = expanded(edge.source)
        targets = externals.get(edge.target) or expanded(edge.target)
        ports = [int(p) for p in re.findall(r"\d+", edge.label)]
        result |= {(s, t, p) for s in sources for t in targets for p in ports}
    return result, graph


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_solid_edges_are_exactly_the_flows_the_policies_allow(profile: str) -> None:
    _, _, plan = validated(PROFILES, profile)
    allowed = Cluster(objects(plan)).allowed()
    drawn, _ = _graph_flows(profile)
    assert drawn - allowed == set(), "drawn but denied"
    assert allowed - drawn == set(), "allowed but not drawn"
    assert ("imageflow-web/web-ui", "imageflow-storage/minio", 9000) not in drawn  # denied: no edge


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_nodes_are_the_topology(profile: str) -> None:
    _, topo, plan = validated(PROFILES, profile)
    graph = build_graph(plan)
    groups = {g.label.split(" · ")[0] for g in graph.groups if g.id.startswith("vm_")}
    assert groups == {vm.name for vm in topo.vms}
    namespaces = {g.label.removeprefix("namespace ") for g in graph.groups if g.id.startswith("ns_")}
    assert namespaces == {n.name for n in topo.namespaces} | {ISTIO_NAMESPACE}
    labels = [n.label for n in graph.nodes]
    for spec in plan.specs:
        if spec.kind in ("Deployment", "StatefulSet", "DaemonSet"):
            assert f"{spec.name}<br/>{spec.kind}" in labels
    assert sorted(
        lbl.split("<br/>")[0].removeprefix("bucket ") for lbl in labels if lbl.startswith("bucket ")
    ) == sorted(b.name for b in topo.storage.minio.buckets)
    kafka = next(lbl for lbl in labels if lbl.startswith("Kafka"))
    assert all(b.name in kafka for b in topo.messaging.kafka.brokers)
    ids = {n.id for n in graph.nodes}
    assert all(e.source in ids and e.target in ids for e in graph.edges)


def test_mermaid_and_dot_draw_the_same_edges() -> None:
    _, _, plan = validated(PROFILES, "prod")
    graph = build_graph(plan)
    text_m, text_d = mermaid(graph), dot(graph)
    edges_m = re.findall(r"^  (\w+) (?:-->|-\.->|---)\|\"[^\"]*\"\| (\w+)$", text_m, re.M)
    edges_d = re.findall(r"^  (\w+) -> (\w+) \[", text_d, re.M)
    assert edges_m == edges_d == [(e.source, e.target) for e in graph.edges]
    assert text_m.splitlines()[1] == "flowchart LR"
    assert text_m.count("subgraph ") == text_m.count("\n  end") + text_m.count("\n    end") + text_m.count(
        "\n      end"
    )


def test_dot_output_is_accepted_by_graphviz(tmp_path) -> None:
    tool = gates.find("dot")
    if tool is None:
        pytest.skip("graphviz's dot is not installed (make tools installs it)")
    result = run_cli("graph", "--profile", "prod", "--format", "dot")
    assert result.code == 0, result.stderr
    svg = subprocess.run([tool, "-Tsvg"], input=result.stdout, capture_output=True, text=True, check=True).stdout
    assert "<svg" in svg and "istio&#45;ingressgateway" in svg


def test_graph_command_prints_mermaid_by_default_and_refuses_unknown_formats() -> None:
    result = run_cli("graph", "--profile", "dev")
    assert result.code == 0 and result.stdout.startswith("%% imageflow-gen dev: ")
    bad = run_cli("graph", "--profile", "dev", "--format", "png")
    assert bad.code == 2 and "'png' is not one of mermaid, dot" in bad.stderr and bad.stdout == ""


def _required(topo: Any) -> set[tuple[str, str, int]]:
    """The flows the platform needs inside the cluster, written here from the topology alone
    (not from the generator's flow list): gateway -> edge services, a caller -> the processing
    services it calls or uses, a user of MinIO -> MinIO, the agent -> Tempo."""
    proc, edge, obs, minio = topo.processing, topo.edge, topo.observability, topo.storage.minio
    ns = proc.namespace
    required = set()
    gateway = f"{ISTIO_NAMESPACE}/istio-ingressgateway"
    for component in (edge.backend_api, edge.web_ui):
        if "cluster" in component.runs_on:
            required.add((gateway, f"{component.namespace}/{component.name}", component.port))
    pods = {s.name: [f"{ns}/{d}" for d, _, _ in _variants(s)] for s in proc.services}
    ports = {s.name: s.port for s in proc.services}
    store = f"{minio.namespace}/minio"
    backend = edge.backend_api
    if "cluster" in backend.runs_on:
        me = f"{backend.namespace}/{backend.name}"
        for use in backend.uses:
            if use.where in (None, "cluster"):
                required |= {(me, pod, ports[use.workload]) for pod in pods.get(use.workload or "", [])}
                required |= {(me, store, minio.port)} if use.minio else set()
    for service in proc.services:
        for pod in pods[service.name]:
            if any(u.minio for u in service.uses):
                required.add((pod, store, minio.port))
            required |= {(pod, callee_pod, ports[c]) for c in service.calls for callee_pod in pods[c]}
    agent = f"{obs.otel_agent.namespace}/{obs.otel_agent.name}"
    required.add((agent, f"{obs.tempo.namespace}/{obs.tempo.name}", obs.tempo.ports.otlp_grpc))
    return required


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_required_flow_is_open_and_processing_services_reach_only_what_they_call(profile: str) -> None:
    _, topo, plan = validated(PROFILES, profile)
    cluster = Cluster(objects(plan))
    allowed = cluster.allowed()
    assert _required(topo) - allowed == set(), "required but denied"
    agent = f"{topo.observability.otel_agent.namespace}/{topo.observability.otel_agent.name}"
    for pod_ns, name, _ in cluster.pods:
        if pod_ns not in (ISTIO_NAMESPACE, topo.observability.otel_agent.namespace):
            assert (f"{pod_ns}/{name}", agent, topo.observability.otel_agent.ports.otlp_grpc) in allowed
    # Between processing services, exactly the declared calls (canary and colour variants of
    # a service are its pods too).
    ns = topo.processing.namespace
    app = {f"{ns}/{d}": s.name for s in topo.processing.services for d, _, _ in _variants(s)}
    calls = {(s.name, c) for s in topo.processing.services for c in s.calls}
    between = {(app[src], app[dst]) for src, dst, _ in allowed if src in app and dst in app and app[src] != app[dst]}
    assert between == calls


def _required_all(topo: Any) -> set[tuple[str, str, int]]:
    """`_required`, plus what every workload needs besides the application's own calls: its
    telemetry to the agent (OTLP), Kafka on the cluster's listener for the backend, the
    processing services and the agent's logs, the agent's reads of the API server, and MinIO's
    servers among themselves; and what the profile's own workloads and env declare."""
    proc, edge, obs, kafka = topo.processing, topo.edge, topo.observability, topo.messaging.kafka
    agent = f"{obs.otel_agent.namespace}/{obs.otel_agent.name}"
    minio = f"{topo.storage.minio.namespace}/minio"
    in_cluster = [c for c in (edge.backend_api, edge.web_ui, edge.api_gateway) if "cluster" in c.runs_on]
    pods = [f"{c.namespace}/{c.name}" for c in in_cluster]
    pods += [f"{proc.namespace}/{d}" for s in proc.services for d, _, _ in _variants(s)]
    pods.append(minio)
    required = _required(topo)
    ports = obs.otel_agent.ports
    required |= {(pod, agent, port) for pod in pods for port in (ports.otlp_grpc, ports.otlp_http)}
    kafka_vm = next(v for v in topo.vms if v.name == kafka.vm)
    listener = kafka.listener_on("private").name
    clients = [
        f"{proc.namespace}/{d}" for s in proc.services if any(u.kafka for u in s.uses) for d, _, _ in _variants(s)
    ]
    backend = edge.backend_api
    if "cluster" in backend.runs_on and any(u.kafka and u.where in (None, "cluster") for u in backend.uses):
        clients.append(f"{backend.namespace}/{backend.name}")
    if obs.otel_agent.logs_topic:
        clients.append(agent)
    pg = topo.storage.postgresql
    if pg is not None:  # the store's server sends telemetry as every pod; its users reach it
        server = f"{pg.namespace}/{pg.name}"
        required |= {(server, agent, port) for port in (ports.otlp_grpc, ports.otlp_http)}
        owners = [*proc.services, *topo.workloads]
        owners += [edge.backend_api] if "cluster" in edge.backend_api.runs_on else []
        for owner in owners:
            if getattr(owner, "vm", None) is None and any(
                u.postgresql and u.where in (None, "cluster") for u in owner.uses
            ):
                namespace = getattr(owner, "namespace", None) or proc.namespace
                names = [d for d, _, _ in _variants(owner)] if hasattr(owner, "release") else [owner.name]
                required |= {(f"{namespace}/{d}", server, pg.port) for d in names}
    typed = [(w, [f"{w.namespace}/{d}" for d, _, _ in _variants(w)]) for w in topo.workloads if w.namespace]
    clients += [pod for w, wpods in typed if any(u.kafka for u in w.uses) for pod in wpods]
    required |= {
        (pod, minio, topo.storage.minio.port) for w, wpods in typed if any(u.minio for u in w.uses) for pod in wpods
    }
    required |= {(c, f"ip:{kafka_vm.address}", b.ports[listener]) for c in clients for b in kafka.brokers}
    required |= {(agent, f"ip:{n.ip}", 6443) for n in topo.cluster.master_nodes}
    required.add((minio, minio, topo.storage.minio.port))
    prom = obs.prometheus
    if prom is not None:  # its telemetry as every pod's, its scrapes of the agents, its discovery
        me = f"{prom.namespace}/{prom.name}"
        required |= {(me, agent, port) for port in (ports.otlp_grpc, ports.otlp_http)}
        reads_agent = any(
            r.namespace == prom.namespace and r.pods == {"app": prom.name} for r in obs.otel_agent.metrics_readers
        )
        if reads_agent:
            required |= {(me, agent, port) for port in (ports.metrics, ports.prometheus)}
        # Its discovery asks the API server when it scrapes any pod.
        ksm = prom.kube_state_metrics
        if prom.kubelets:  # each node's kubelet, found by node discovery
            required |= {(me, f"ip:{n.ip}", 10250) for n in topo.cluster.nodes}
        meshed = {n.name for n in topo.namespaces if n.mesh} if prom.sidecars else set()
        if meshed:  # every pod of a meshed namespace: its sidecar's statistics
            typed = [f"{w.namespace}/{d}" for w in topo.workloads if w.namespace for d, _, _ in _variants(w)]
            required |= {(me, pod, 15090) for pod in [*pods, *typed] if pod.split("/")[0] in meshed}
        if reads_agent or ksm or prom.kubelets or meshed or any(w.metrics and w.namespace for w in topo.workloads):
            required |= {(me, f"ip:{n.ip}", 6443) for n in topo.cluster.master_nodes}
        g = prom.grafana
        if g is not None:  # its datasources (Tempo when Tempo admits it), its telemetry, its route
            graf = f"{prom.namespace}/{g.name}"
            required.add((graf, me, prom.port))
            tempo = obs.tempo
            if any(c.namespace == prom.namespace and c.pods == {"app": g.name} for c in tempo.query_clients):
                required.add((graf, f"{tempo.namespace}/{tempo.name}", tempo.ports.http))
            required |= {(graf, agent, port) for port in (ports.otlp_grpc, ports.otlp_http)}
            if g.host is not None:
                required.add(("istio-system/istio-ingressgateway", graf, g.port))
        ne = prom.node_exporter
        if ne is not None:  # on every node (a DaemonSet beside the agent) and on the stack VMs
            required.add((me, f"{ne.namespace}/{ne.name}", ne.port))
            vms = ne.vms if ne.vms is not None else {topo.edge.vm, topo.messaging.kafka.vm}
            required |= {(me, f"ip:{vm.address}", ne.port) for vm in topo.vms if vm.name in vms}
        ge = prom.gpu_exporter
        if ge is not None:  # on the GPU nodes
            required.add((me, f"{ge.namespace}/{ge.name}", ge.port))
        bb = prom.blackbox_exporter
        if bb is not None and "vm" in topo.edge.api_gateway.runs_on:  # it probes the edge gateway's TLS
            prober = f"{prom.namespace}/{bb.name}"
            edge_vm = next(vm for vm in topo.vms if vm.name == topo.edge.vm)
            required.add((me, prober, bb.port))
            required.add((prober, f"ip:{edge_vm.address}", topo.edge.api_gateway.https_port))
            required |= {(prober, agent, port) for port in (ports.otlp_grpc, ports.otlp_http)}
        ke = prom.kafka_exporter
        if ke is not None:  # beside the brokers, published on the Kafka VM's address
            kafka_vm = next(vm for vm in topo.vms if vm.name == topo.messaging.kafka.vm)
            required.add((me, f"ip:{kafka_vm.address}", ke.port))
        if topo.storage.minio.metrics_token is not None:  # MinIO's metrics, on its API port
            required.add((me, minio, topo.storage.minio.port))
        if ksm is not None:  # scraped beside Prometheus; it reads the API server; telemetry as every pod
            state = f"{prom.namespace}/{ksm.name}"
            required.add((me, state, ksm.port))
            required |= {(state, f"ip:{n.ip}", 6443) for n in topo.cluster.master_nodes}
            required |= {(state, agent, port) for port in (ports.otlp_grpc, ports.otlp_http)}
    return required | _workload_needs(topo)


def _workload_needs(topo: Any) -> set[tuple[str, str, int]]:
    """What the profile's own env endpoints, typed workloads and routes declare, read from the
    profile: each endpoint's call between cluster pods (or to a VM's published port), each
    cluster workload's telemetry, each workload route from the ingress gateway."""
    proc, edge, agent = topo.processing, topo.edge, topo.observability.otel_agent
    pods: dict[str, list[str]] = {s.name: [f"{proc.namespace}/{d}" for d, _, _ in _variants(s)] for s in proc.services}
    ports: dict[str, dict[str, Any]] = {s.name: {"grpc": s.port} for s in proc.services}
    for c in edge.components:
        pods[c.name] = [f"{c.namespace}/{c.name}"] if "cluster" in c.runs_on else []
        ports[c.name] = {"http": c.port, **{p.name: p.port for p in c.ports}}
    published: dict[tuple[str, str], str] = {}
    vms = {vm.name: vm.address for vm in topo.vms}
    for w in topo.workloads:
        pods[w.name] = [f"{w.namespace}/{d}" for d, _, _ in _variants(w)] if w.namespace else []
        ports[w.name] = {p.name: p.port for p in w.ports}
        for p in w.ports:
            if w.vm and p.publish and p.publish.address != "127.0.0.1":
                ports[w.name][p.name] = p.publish.port
                published[(w.name, p.name)] = f"ip:{vms[w.vm]}"
    # Each caller's endpoints, as the profile writes them: env endpoints and uses.
    owners = [*topo.workloads, *proc.services, *edge.components]
    callers = [(o.name, [(v.endpoint, v.where) for v in o.env if v.endpoint]) for o in owners]
    callers += [(o.name, [(u, u.where) for u in o.uses if u.workload]) for o in owners]
    result: set[tuple[str, str, int]] = set()
    for name, endpoints in callers:
        for endpoint, where in endpoints:
            if where == "vm":  # set on the VM only: no cluster pod calls
                continue
            target, port = endpoint.workload, ports[endpoint.workload][endpoint.port]
            ends = pods[target] or [published.get((target, endpoint.port), "")]
            result |= {(src, dst, port) for src in pods[name] for dst in ends if dst}
    prom = topo.observability.prometheus
    for w in topo.workloads if prom is not None else []:  # Prometheus scrapes the declared metrics
        if w.metrics is not None:
            scraper, port = f"{prom.namespace}/{prom.name}", ports[w.name][w.metrics.port]
            result |= {
                (scraper, dst, port) for dst in pods[w.name] or [published.get((w.name, w.metrics.port), "")] if dst
            }
    telemetry = (agent.ports.otlp_grpc, agent.ports.otlp_http)
    for w in topo.workloads:
        for pod in pods[w.name]:
            result |= {(pod, f"{agent.namespace}/{agent.name}", port) for port in telemetry}
            if w.route is not None:
                result.add(("istio-system/istio-ingressgateway", pod, ports[w.name][w.route.port]))
    return result


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_policies_open_exactly_the_required_flows(profile: str) -> None:
    """Between the deployed workloads (and to the addresses outside), nothing is open that the
    platform does not need, and everything it needs is."""
    _, topo, plan = validated(PROFILES, profile)
    allowed = Cluster(objects(plan)).allowed()
    required = _required_all(topo)
    assert required - allowed == set(), "required but denied"
    assert allowed - required == set(), "open but not required"


def _variants(service: Any) -> list[tuple[str, None, None]]:
    strategy = service.release.strategy
    names = {
        "blue-green": [f"{service.name}-blue", f"{service.name}-green"],
        "canary": [service.name, f"{service.name}-canary"],
    }
    return [(n, None, None) for n in names.get(strategy, [service.name])]


@pytest.mark.parametrize(("calls", "expected"), [(["grpc-gateway"], "'grpc-gateway'"), (["resize", "blur"], "'blur'")])
def test_a_call_names_another_processing_service(tmp_path: Any, calls: list[str], expected: str) -> None:
    from test_hostile import profile_with

    from imageflow_gen.errors import ImageflowError
    from imageflow_gen.pipeline import build

    data = {"purpose": "x", "extends": "prod", "processing": {"services": [{"name": "grpc-gateway", "calls": calls}]}}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path, "calls", data), "calls")
    (problem,) = caught.value.problems
    assert problem.key.startswith("processing.services[0].calls[") and problem.location.file.endswith("calls.yaml")
    assert problem.message.startswith(f"{expected} is not another processing service (defined: ai-detection")


def _minio_users_on_vms(files: dict[str, str], profile: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(VM, compose service, service) for every service of a VM stack that talks to MinIO."""
    import yaml

    result = []
    for path, text in sorted(files.items()):
        match = re.fullmatch(rf"compose/{profile}/(\w+)/docker-compose\.yaml", path)
        if match:
            for name, service in yaml.safe_load(text)["services"].items():
                if "MINIO_ENDPOINT" in service.get("environment", {}) or name == "kafka-connect":
                    result.append((match.group(1), name, service))
    return result


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_vms_reach_minio_on_every_layer(profile: str) -> None:
    """From each VM service that uses MinIO, on the rendered files alone: its URL's name
    resolves (extra_hosts) to a node that runs a MinIO server (the local volumes' node
    affinity), a NodePort Service on that port keeps the VM's address and selects the MinIO
    pods, and MinIO's policies admit the VM's address on the target port."""
    from urllib.parse import urlsplit

    from test_compose import files_of

    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    files = files_of(profile)
    cluster = Cluster(objs)
    nodes = {n.ip: n.name for n in topo.cluster.nodes}
    minio_nodes = {
        term["values"][0]
        for o in objs
        if o["kind"] == "PersistentVolume" and o["spec"]["claimRef"]["namespace"] == topo.storage.minio.namespace
        for sel in o["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        for term in sel["matchExpressions"]
    }
    users = _minio_users_on_vms(files, profile)
    assert {(vm, name) for vm, name, _ in users} == {("vm0", "backend-api"), ("vm1", "kafka-connect")}
    for vm, name, service in users:
        if name == "kafka-connect":
            connector = json.loads(files[f"compose/{profile}/{vm}/connectors/system-logs-to-minio.json"])
            url = urlsplit(connector["store.url"])
        else:
            url = urlsplit(service["environment"]["MINIO_ENDPOINT"])
        hosts = dict(entry.split(":", 1) for entry in service["extra_hosts"])
        assert url.hostname in hosts, (vm, name, "the name does not resolve on the VM")
        assert nodes.get(hosts[url.hostname]) in minio_nodes, (vm, name, "no MinIO server on that address")
        (svc,) = [
            o
            for o in objs
            if o["kind"] == "Service"
            and o["spec"]["type"] == "NodePort"
            and any(p.get("nodePort") == url.port for p in o["spec"]["ports"])
        ]
        assert svc["spec"]["externalTrafficPolicy"] == "Local", "the VM's address would be translated"
        assert svc["spec"]["selector"] == {"app": "minio"}
        (port,) = [p for p in svc["spec"]["ports"] if p["nodePort"] == url.port]
        address = next(v.address for v in topo.vms if v.name == vm)
        target = topo.storage.minio.port if port["targetPort"] == "api" else port["targetPort"]
        assert cluster.admits_from_outside(address, f"{svc['metadata']['namespace']}/minio", target), (vm, name)
    # Nothing else outside the cluster gets in: not another VM, not another port.
    outsider = next(v.address for v in topo.vms if v.role == "compute")
    assert not cluster.admits_from_outside(outsider, f"{topo.storage.minio.namespace}/minio", topo.storage.minio.port)
    edge_vm = next(v.address for v in topo.vms if v.name == topo.edge.vm)
    assert not cluster.admits_from_outside(edge_vm, f"{topo.storage.minio.namespace}/minio", 9001)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_observability_paths_are_open_to_exactly_their_readers(profile: str) -> None:
    """The agents' metrics to the declared readers, Tempo's API to its query clients, the agents'
    logs to Kafka: each open, on a Service port where a Service is used, and to nobody else
    (stand-in pods for the readers, which later issues deploy, and for a neighbour of theirs)."""
    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    cluster = Cluster(objs)
    agent, tempo = topo.observability.otel_agent, topo.observability.tempo
    readers = [(r.namespace, f"reader-{i}", dict(r.pods)) for i, r in enumerate(agent.metrics_readers)]
    clients = [(c.namespace, f"client-{i}", dict(c.pods)) for i, c in enumerate(tempo.query_clients)]
    neighbours = [(ns, f"neighbour-of-{name}", {"app": "neighbour"}) for ns, name, _ in readers + clients]
    cluster.pods += readers + clients + neighbours
    allowed = cluster.allowed()
    agent_pod, tempo_pod = f"{agent.namespace}/{agent.name}", f"{tempo.namespace}/{tempo.name}"
    assert readers and clients, "the shipped profiles declare the readers"
    for ns, name, _ in readers:
        for port in (agent.ports.metrics, agent.ports.prometheus):
            assert (f"{ns}/{name}", agent_pod, port) in allowed
    for ns, name, _ in clients:
        assert (f"{ns}/{name}", tempo_pod, tempo.ports.http) in allowed
    metrics_ports = (agent.ports.metrics, agent.ports.prometheus)
    for ns, name, _ in neighbours:  # (every pod may send the agent its telemetry over OTLP)
        assert not any(
            src == f"{ns}/{name}" and (dst == tempo_pod or (dst == agent_pod and port in metrics_ports))
            for src, dst, port in allowed
        )
    # Nothing but the agents sends to Tempo; the agents' metrics ports are read by the readers only
    # (the stand-ins, and the deployed Prometheus, which is one of them).
    readers_of = {(src, port) for src, dst, port in allowed if dst == agent_pod and port in metrics_ports}
    prom = topo.observability.prometheus
    deployed = [f"{prom.namespace}/{prom.name}"] if prom is not None else []
    assert {src for src, _ in readers_of} == {f"{ns}/{name}" for ns, name, _ in readers} | set(deployed)
    grafana = [f"{prom.namespace}/{prom.grafana.name}"] if prom is not None and prom.grafana is not None else []
    tempo_clients = {f"{n}/{m}" for n, m, _ in clients} | set(grafana)  # the stand-ins, and the deployed Grafana
    assert {src for src, dst, _ in allowed if dst == tempo_pod} == {agent_pod} | tempo_clients
    services = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs if o["kind"] == "Service"}
    metrics = services[(agent.namespace, f"{agent.name}-metrics")]["spec"]
    assert metrics["clusterIP"] == "None" and {p["port"] for p in metrics["ports"]} == {8888, 8889}
    assert tempo.ports.http in {p["port"] for p in services[(tempo.namespace, tempo.name)]["spec"]["ports"]}
    # The logs go to Kafka on the cluster's listener.
    kafka_vm = next(v for v in topo.vms if v.name == topo.messaging.kafka.vm)
    listener = topo.messaging.kafka.listener_on("private")
    for broker in topo.messaging.kafka.brokers:
        assert (agent_pod, f"ip:{kafka_vm.address}", broker.ports[listener.name]) in allowed


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_meshed_namespaces_get_sidecars_that_reach_istiod_and_jobs_get_none(profile: str) -> None:
    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    meshed = {ns.name for ns in topo.namespaces if ns.mesh}
    if profile == "prod":  # the canary's callers (backend, grpc-gateway) follow its weight
        assert meshed == {topo.edge.backend_api.namespace, topo.processing.namespace}
    for obj in (o for o in objs if o["kind"] == "Namespace"):
        labels = obj["metadata"]["labels"]
        assert (labels.get("istio-injection") == "enabled") == (obj["metadata"]["name"] in meshed)
    cluster = Cluster(objs)
    cluster.pods.append((ISTIO_NAMESPACE, "istiod", {"app": "istiod"}))
    allowed = cluster.allowed()
    for ns, name, _ in cluster.pods:
        if ns != ISTIO_NAMESPACE:
            assert ((f"{ns}/{name}", f"{ISTIO_NAMESPACE}/istiod", 15012) in allowed) == (ns in meshed), name
    # A pod that runs to completion never gets a sidecar, which would keep it running.
    from imageflow_gen.targets.kubernetes import render_spec

    tests = [obj for spec in plan.test_specs for obj in render_spec(spec, spec.values)]
    assert any(obj["kind"] == "Pod" for obj in tests)
    for obj in objs + tests:
        template = obj["spec"]["template"] if obj["kind"] == "Job" else obj if obj["kind"] == "Pod" else None
        if template is not None:
            assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false", obj["metadata"]["name"]


def test_a_closed_path_is_drawn_as_closed_with_its_layer() -> None:
    from imageflow_gen.validate.paths import path_problems

    _, _, plan = validated(PROFILES, "dev")
    broken_objects = [o for o in objects(plan) if o["metadata"]["name"] != "allow-backend-api-to-minio-ingress"]
    graph = build_graph(plan, path_problems(broken_objects))
    broken = [(e.source, e.target, e.label) for e in graph.edges if e.kind == "broken"]
    assert broken == [
        (
            "ns_imageflow_backend_backend_api",
            "unreached_minio_imageflow_storage_svc_cluster_local_9000",
            "closed: NetworkPolicy",
        )
    ]
    text = mermaid(graph)
    assert '  ns_imageflow_backend_backend_api --x|"closed: NetworkPolicy"| unreached_minio' in text
    assert "style=bold, color=red" in dot(graph)
    assert not any(e.kind == "broken" for e in build_graph(plan, path_problems(objects(plan))).edges)


_BROKEN_GRAPH = cli_without("imageflow_gen.targets.kubernetes", "allow-backend-api-to-minio-ingress")


def test_the_graph_command_runs_the_path_gate() -> None:
    import sys

    from conftest import REPO

    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN_GRAPH, "graph", "--profile", "dev"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert '  ns_imageflow_backend_backend_api --x|"closed: NetworkPolicy"| unreached_minio' in proc.stdout
