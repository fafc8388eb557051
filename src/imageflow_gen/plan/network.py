"""Mesh routing and isolation (seed 8.3): the Istio Gateway and routes, the seed's policies, and
what makes a real cluster work with them: default deny, DNS, and an allow for every real flow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Path
from ..model import Topology
from ..model.checks import (
    backup_user,
    endpoint_key,
    kafka_users,
    minio_clients,
    placed_env,
    postgres_users,
    slot_envs,
)
from ..model.network import NetworkPolicy as PolicyModel
from ..model.network import Route
from .common import Spec, common_labels, meshed_namespaces, needs_gpu_runtime, spec
from .messaging import broker_ports, kafka_vm_address
from .grafana import SOURCE as GRAFANA_SOURCE
from .monitoring import KSM_SOURCE, edge_gateway_address, scraped_namespaces, targets
from .postgresql import bootstrap_job
from .storage import BUCKET_JOB, vm_clients
from .endpoints import endpoint_target
from .workloads import transport

ISTIO_NAMESPACE = "istio-system"
INGRESS_GATEWAY = {"istio": "ingressgateway"}
ISTIOD = {"app": "istiod"}
ISTIOD_XDS_PORT = 15012  # configuration and certificates for the sidecars
API_SERVER_PORT = 6443


@dataclass(frozen=True)
class Flow:
    """Traffic that must be allowed: from pods in a namespace to pods (or an address) elsewhere."""

    name: str
    source_ns: str | None
    source_pods: dict[str, str]
    dest_ns: str | None
    dest_pods: dict[str, str]
    ports: tuple[int, ...]
    dest_cidrs: tuple[str, ...] = ()
    source: Path = ("network", "policies")  # the profile key the flow comes from
    source_cidrs: tuple[str, ...] = ()  # a flow from outside the cluster: source_ns is None
    protocol: str = "TCP"


def cluster_prerequisites(topo: Topology) -> list[str]:
    """What the cluster must have before the output works, besides K3s and the Secrets."""
    meshed = meshed_namespaces(topo)
    result = ["Istio with its ingress gateway"]
    if meshed:
        result.append(f"Istio's CNI plugin: the sidecars of {', '.join(meshed)} need it under Pod Security restricted")
    provided = topo.storage.cluster_classes
    if topo.observability.tempo.storage_class in provided:
        result.append(
            f"the StorageClass {topo.observability.tempo.storage_class}, which the cluster provides "
            "(K3s: local-path), for Tempo's volume"
        )
    if needs_gpu_runtime(topo):
        result.append("on GPU nodes the NVIDIA container toolkit and device plugin")
    return result


def specs(topo: Topology) -> list[Spec]:
    result = [_gateway(topo)]
    result += [_route(topo, route, i) for i, route in enumerate(topo.network.routes)]
    result += _web_ui_route(topo)
    result += _workload_routes(topo)
    result += _grafana_route(topo)
    result += [_policy(policy, i) for i, policy in enumerate(topo.network.policies)]
    result += _generated_policies(topo)
    return result


def _gateway(topo: Topology) -> Spec:
    gw = topo.network.gateway
    servers = [
        {
            "port": {"number": gw.port, "name": "https", "protocol": "HTTPS"},
            "hosts": list(gw.hosts),
            "tls": {"mode": "SIMPLE", "credentialName": gw.tls.name},
        },
        {
            "port": {"number": 80, "name": "http", "protocol": "HTTP"},
            "hosts": list(gw.hosts),
            "tls": {"httpsRedirect": True},
        },
    ]
    return spec(
        "Gateway",
        "gateway",
        ("network", "gateway"),
        name=gw.name,
        namespace=gw.namespace,
        labels=common_labels(),
        selector=dict(gw.selector),
        servers=servers,
    )


def gateway_ref(topo: Topology, namespace: str) -> str:
    """How a VirtualService in `namespace` names the topology's Gateway."""
    gw = topo.network.gateway
    return gw.name if namespace == gw.namespace else f"{gw.namespace}/{gw.name}"


def _gateway_route(
    topo: Topology,
    source: Path,
    name: str,
    namespace: str,
    hosts: list[str],
    prefix: str,
    port: int,
    timeout: str | None = None,
) -> Spec:
    """A VirtualService on the Istio gateway: `hosts` + `prefix` to the Service `name`'s `port`."""
    http: dict[str, Any] = {
        "match": [{"uri": {"prefix": prefix}}],
        "route": [{"destination": {"host": name, "port": {"number": port}}}],
    }
    if timeout is not None:
        http["timeout"] = timeout
    return spec(
        "VirtualService",
        "virtualservice",
        source,
        name=name,
        namespace=namespace,
        labels=common_labels(),
        hosts=hosts,
        gateways=[gateway_ref(topo, namespace)],
        http=[http],
    )


def _web_ui_route(topo: Topology) -> list[Spec]:
    """The web UI in the cluster, on its own hosts through the gateway."""
    web = topo.edge.web_ui
    if "cluster" not in web.runs_on or not web.hosts:
        return []
    return [_gateway_route(topo, ("edge", "web_ui", "hosts"), web.name, web.namespace, list(web.hosts), "/", web.port)]


def _workload_routes(topo: Topology) -> list[Spec]:
    """A workload's route: its host on the gateway, the path prefix to its port."""
    result = []
    for i, w in enumerate(topo.workloads):
        route = w.route
        port = w.port(route.port) if route else None
        if route is None or port is None or w.namespace is None:
            continue
        source = ("workloads", i, "route")
        result.append(
            _gateway_route(topo, source, w.name, w.namespace, [route.host], route.path_prefix, port.port, route.timeout)
        )
    return result


def _grafana_route(topo: Topology) -> list[Spec]:
    """Grafana on its own gateway host, when the profile names one."""
    prom = topo.observability.prometheus
    g = prom.grafana if prom is not None else None
    if prom is None or g is None or g.host is None:
        return []
    return [_gateway_route(topo, GRAFANA_SOURCE + ("host",), g.name, prom.namespace, [g.host], "/", g.port)]


def _route(topo: Topology, route: Route, index: int) -> Spec:
    http: dict[str, Any] = {
        "match": [{"uri": {"prefix": route.prefix}}],
        "route": [{"destination": {"host": route.destination.service, "port": {"number": route.destination.port}}}],
    }
    if route.fault:
        http["fault"] = {
            "delay": {
                "percentage": {"value": route.fault.delay.percentage},
                "fixedDelay": route.fault.delay.fixed_delay,
            }
        }
    if route.retries:
        http["retries"] = {"attempts": route.retries.attempts, "perTryTimeout": route.retries.per_try_timeout}
    return spec(
        "VirtualService",
        "virtualservice",
        ("network", "routes", index),
        name=route.name,
        namespace=route.namespace,
        labels=common_labels(),
        hosts=list(route.hosts),
        gateways=[gateway_ref(topo, route.namespace)],
        http=[http],
    )


def _ports(ports: Any) -> list[dict[str, Any]]:
    return [{"protocol": p.protocol, "port": p.port} for p in ports]


def _policy(policy: PolicyModel, index: int) -> Spec:
    """A policy written in the topology, as the seed writes processing-isolation."""
    types, values = [], {}
    if policy.ingress is not None:
        types.append("Ingress")
        values["ingress"] = [
            {
                "from": [{"namespaceSelector": {"matchLabels": {"name": ns}}} for ns in rule.from_namespaces],
                "ports": _ports(rule.ports),
            }
            for rule in policy.ingress
        ]
    if policy.egress is not None:
        types.append("Egress")
        values["egress"] = [
            {
                "to": [{"namespaceSelector": {"matchLabels": {"name": ns}}} for ns in rule.to_namespaces],
                "ports": _ports(rule.ports),
            }
            for rule in policy.egress
        ]
    return spec(
        "NetworkPolicy",
        "networkpolicy",
        ("network", "policies", index),
        name=policy.name,
        namespace=policy.namespace,
        labels=common_labels(),
        pod_selector=dict(policy.pod_selector),
        policy_types=types,
        **values,
    )


# ---- generated policies -----------------------------------------------------------------


def flows(topo: Topology) -> list[Flow]:
    obs, minio = topo.observability, topo.storage.minio
    edge = topo.edge
    processing_ns = topo.processing.namespace
    app_namespaces = [ns.name for ns in topo.namespaces if ns.name != obs.otel_agent.namespace]
    flows: list[Flow] = []
    for component in edge.components:
        if "cluster" in component.runs_on and component is not edge.api_gateway:
            flows.append(
                Flow(
                    f"gateway-to-{component.name}",
                    ISTIO_NAMESPACE,
                    INGRESS_GATEWAY,
                    component.namespace,
                    {"app": component.name},
                    (component.port,),
                )
            )
    services = {s.name: s for s in topo.processing.services}
    for i, caller in enumerate(topo.processing.services):
        flows += [
            Flow(
                f"{caller.name}-to-{callee}",
                processing_ns,
                {"app": caller.name},
                processing_ns,
                {"app": callee},
                (services[callee].port,),
                source=("processing", "services", i, "calls", m),
            )
            for m, callee in enumerate(caller.calls)
            if callee in services
        ]
    # Each workload that uses MinIO (in the cluster), from its use.
    flows += [
        Flow(
            f"{c.name}-to-minio",
            c.namespace,
            {"app": c.name},
            minio.namespace,
            {"app": "minio"},
            (minio.port,),
            source=c.path,
        )
        for c in minio_clients(topo)
        if c.namespace is not None
    ]
    flows += _postgresql_flows(topo)
    # MinIO's servers among themselves, and the bucket job; not every pod of the namespace (a
    # database beside MinIO reaches it only if it says so).
    flows += [
        Flow(f"{app}-to-minio", minio.namespace, {"app": app}, minio.namespace, {"app": "minio"}, (minio.port,))
        for app in ("minio", BUCKET_JOB)
    ]
    vms = {vm.name: vm.address for vm in topo.vms}
    outside = sorted({f"{vms[c.vm]}/32" for c in vm_clients(topo) if c.vm in vms})
    if outside:
        flows.append(
            Flow(
                "vms-to-minio",
                None,
                {},
                minio.namespace,
                {"app": "minio"},
                (minio.port,),
                source=("storage", "minio", "vm_access"),
                source_cidrs=tuple(outside),
            )
        )
    kafka_ports = tuple(sorted(port for _, port in broker_ports(topo)))
    kafka_cidr = (f"{kafka_vm_address(topo)}/32",)
    if kafka_ports:
        flows += [
            Flow(
                f"{c.name}-to-kafka",
                c.namespace,
                {"app": c.name},
                None,
                {},
                kafka_ports,
                kafka_cidr,
                source=c.path,
            )
            for c in kafka_users(topo)
            if c.namespace is not None
        ]
    agent_ports = (obs.otel_agent.ports.otlp_grpc, obs.otel_agent.ports.otlp_http)
    flows += [
        Flow(f"{ns}-to-otel-agent", ns, {}, obs.otel_agent.namespace, {"app": obs.otel_agent.name}, agent_ports)
        for ns in app_namespaces
    ]
    # A workload beside the agent (a node exporter, say) sends its telemetry as every workload does.
    flows += [
        Flow(
            f"{w.name}-to-otel-agent",
            w.namespace,
            {"app": w.name},
            obs.otel_agent.namespace,
            {"app": obs.otel_agent.name},
            agent_ports,
            source=("workloads", i),
        )
        for i, w in enumerate(topo.workloads)
        if w.namespace == obs.otel_agent.namespace
    ]
    flows.append(
        Flow(
            "otel-agent-to-tempo",
            obs.otel_agent.namespace,
            {"app": obs.otel_agent.name},
            obs.tempo.namespace,
            {"app": obs.tempo.name},
            (obs.tempo.ports.otlp_grpc,),
        )
    )
    agent, tempo = obs.otel_agent, obs.tempo
    if kafka_ports and agent.logs_topic:
        flows.append(
            Flow(
                "otel-agent-to-kafka",
                agent.namespace,
                {"app": agent.name},
                None,
                {},
                kafka_ports,
                kafka_cidr,
                source=("observability", "otel_agent", "logs_topic"),
            )
        )
    flows += [
        Flow(
            f"metrics-reader-{i}-to-otel-agent",
            reader.namespace,
            dict(reader.pods),
            agent.namespace,
            {"app": agent.name},
            (agent.ports.metrics, agent.ports.prometheus),
            source=("observability", "otel_agent", "metrics_readers", i),
        )
        for i, reader in enumerate(agent.metrics_readers)
    ]
    flows += [
        Flow(
            f"tempo-client-{i}-to-tempo",
            client.namespace,
            dict(client.pods),
            tempo.namespace,
            {"app": tempo.name},
            (tempo.ports.http,),
            source=("observability", "tempo", "query_clients", i),
        )
        for i, client in enumerate(tempo.query_clients)
    ]
    flows += [
        Flow(
            f"{ns.name}-to-istiod",
            ns.name,
            {},
            ISTIO_NAMESPACE,
            dict(ISTIOD),
            (ISTIOD_XDS_PORT,),
            source=("namespaces", i, "mesh"),
        )
        for i, ns in enumerate(topo.namespaces)
        if ns.mesh
    ]
    flows += workload_flows(topo)
    masters = tuple(sorted(f"{n.ip}/32" for n in topo.cluster.master_nodes))
    flows += _prometheus_flows(topo, masters)
    flows.append(
        Flow(
            "otel-agent-to-api-server",
            obs.otel_agent.namespace,
            {"app": obs.otel_agent.name},
            None,
            {},
            (API_SERVER_PORT,),
            masters,
        )
    )
    return flows


def _prometheus_flows(topo: Topology, masters: tuple[str, ...]) -> list[Flow]:
    """Prometheus's scrapes of the workloads' declared metrics (the OTel agent's are its
    metrics readers' flows), and its service discovery's calls to the API server."""
    prom = topo.observability.prometheus
    if prom is None:
        return []
    me = {"app": prom.name}
    result = []
    seen = set()
    for t in targets(topo):
        if t.source[:2] == ("observability", "otel_agent"):  # the agent's metrics readers' flows
            continue
        if (t.namespace, t.app, t.address, t.port) in seen:  # another path on the same port
            continue
        seen.add((t.namespace, t.app, t.address, t.port))
        if t.namespace is not None:
            pods = {"app": t.app} if t.app else {}
            flow = Flow(
                f"{prom.name}-to-{t.app or t.job}", prom.namespace, me, t.namespace, pods, (t.port,), source=t.source
            )
        else:  # on a VM's address; the kubelets on every node's
            cidrs = tuple(f"{ip}/32" for ip in (t.nodes or (str(t.address),)))
            flow = Flow(f"{prom.name}-to-{t.job}", prom.namespace, me, None, {}, (t.port,), cidrs, source=t.source)
        result.append(flow)
    if scraped_namespaces(topo) or prom.kubelets:  # pod and node discovery
        source = ("observability", "prometheus")
        result.append(
            Flow(f"{prom.name}-to-api-server", prom.namespace, me, None, {}, (API_SERVER_PORT,), masters, source)
        )
    bb = prom.blackbox_exporter
    if bb is not None and (edge := edge_gateway_address(topo)) is not None:  # the gateway's TLS, probed
        address, port = edge.rsplit(":", 1)
        result.append(
            Flow(
                f"{bb.name}-to-edge-gateway",
                prom.namespace,
                {"app": bb.name},
                None,
                {},
                (int(port),),
                (f"{address}/32",),
                source=("observability", "prometheus", "blackbox_exporter"),
            )
        )
    g = prom.grafana
    if g is not None:  # its datasource; the gateway's route to it (Tempo's clients are Tempo's flows)
        result.append(
            Flow(
                f"{g.name}-to-{prom.name}",
                prom.namespace,
                {"app": g.name},
                prom.namespace,
                me,
                (prom.port,),
                source=GRAFANA_SOURCE,
            )
        )
        if g.host is not None:
            result.append(
                Flow(
                    f"gateway-to-{g.name}",
                    ISTIO_NAMESPACE,
                    INGRESS_GATEWAY,
                    prom.namespace,
                    {"app": g.name},
                    (g.port,),
                    source=GRAFANA_SOURCE + ("host",),
                )
            )
    ksm = prom.kube_state_metrics
    if ksm is not None:
        result.append(
            Flow(
                f"{ksm.name}-to-api-server",
                prom.namespace,
                {"app": ksm.name},
                None,
                {},
                (API_SERVER_PORT,),
                masters,
                KSM_SOURCE,
            )
        )
    return result


def _postgresql_flows(topo: Topology) -> list[Flow]:
    """Each use of PostgreSQL (from the cluster; from the VMs by its node port, keeping their
    addresses), and its own bootstrap and backup jobs."""
    pg = topo.storage.postgresql
    if pg is None:
        return []
    dest, ports = {"app": pg.name}, (pg.port,)
    users = postgres_users(topo)
    if pg.namespace is None:  # on a VM: the cluster's users leave for its address
        address = next(f"{vm.address}/32" for vm in topo.vms if vm.name == pg.vm)
        return [
            Flow(f"{u.name}-to-{pg.name}", u.namespace, {"app": u.name}, None, {}, ports, (address,), source=u.path)
            for u in users
            if u.namespace is not None
        ]
    result = [
        Flow(f"{u.name}-to-{pg.name}", u.namespace, {"app": u.name}, pg.namespace, dest, ports, source=u.path)
        for u in users
        if u.namespace is not None
    ]
    addresses = {vm.name: f"{vm.address}/32" for vm in topo.vms}
    outside = [u for u in users if u.vm is not None and u.vm in addresses]
    if outside:
        cidrs = tuple(sorted({addresses[str(u.vm)] for u in outside}))
        result.append(
            Flow(f"vms-to-{pg.name}", None, {}, pg.namespace, dest, ports, source=outside[0].path, source_cidrs=cidrs)
        )
    jobs = [(bootstrap_job(pg), ("storage", "postgresql", "databases"))]
    if pg.backup is not None:
        jobs.append((backup_user(pg), ("storage", "postgresql", "backup")))
    result += [
        Flow(f"{job}-to-{pg.name}", pg.namespace, {"app": job}, pg.namespace, dest, ports, source=path)
        for job, path in jobs
    ]
    return result


ANYWHERE = "0.0.0.0/0"


def workload_flows(topo: Topology) -> list[Flow]:
    """What the typed workloads need in the cluster: each env endpoint's call (to a workload in
    the cluster, or to a port a VM publishes; the seed services' own env too), each route from
    the ingress gateway, each node port from wherever reaches the nodes, and a VM workload's
    calls to cluster node ports."""
    result: list[Flow] = []
    addresses = {vm.name: str(vm.address) for vm in topo.vms}
    callers: list[tuple[Any, Path]] = [(w, ("workloads", i)) for i, w in enumerate(topo.workloads)]
    callers += [(slot, slot.base) for slot in slot_envs(topo) if slot.namespace is not None]
    for w, base in callers:
        for key, var in placed_env(w):
            found = endpoint_target(topo, var.endpoint) if var.endpoint else None
            if found is None:
                continue
            target, port = found
            name, source = f"{w.name}-to-{target.name}-{port.name}", base + endpoint_key(key)
            proto = transport(port)
            if w.namespace is not None and target.namespace is not None:
                result.append(
                    Flow(
                        name,
                        w.namespace,
                        {"app": w.name},
                        target.namespace,
                        {"app": target.name},
                        (port.port,),
                        source=source,
                        protocol=proto,
                    )
                )
            elif w.namespace is not None and target.vm is not None and port.publish is not None:
                result.append(
                    Flow(
                        name,
                        w.namespace,
                        {"app": w.name},
                        None,
                        {},
                        (port.publish.port,),
                        (f"{addresses[target.vm]}/32",),
                        source=source,
                        protocol=proto,
                    )
                )
    for i, w in enumerate(topo.workloads):
        for j, port in enumerate(w.ports):
            if w.namespace is not None and port.node_port is not None:
                result.append(
                    Flow(
                        f"node-port-to-{w.name}-{port.name}",
                        None,
                        {},
                        w.namespace,
                        {"app": w.name},
                        (port.port,),
                        source=("workloads", i, "ports", j, "node_port"),
                        source_cidrs=tuple(f"{addresses[vm]}/32" for vm in port.node_port_from or []) or (ANYWHERE,),
                        protocol=transport(port),
                    )
                )
        route = w.route
        routed = w.port(route.port) if route else None
        if w.namespace is not None and route is not None and routed is not None:
            result.append(
                Flow(
                    f"gateway-to-{w.name}",
                    ISTIO_NAMESPACE,
                    INGRESS_GATEWAY,
                    w.namespace,
                    {"app": w.name},
                    (routed.port,),
                    source=("workloads", i, "route"),
                )
            )
    return result


def _peer(namespace: str | None, pods: dict[str, str]) -> dict[str, Any]:
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    if pods:
        peer["podSelector"] = {"matchLabels": dict(pods)}
    return peer


def _sources(flow: Flow) -> list[dict[str, Any]]:
    if flow.source_cidrs:
        return [{"ipBlock": {"cidr": c}} for c in flow.source_cidrs]
    return [_peer(flow.source_ns, flow.source_pods)]


def _generated_policies(topo: Topology) -> list[Spec]:
    """Default deny and DNS in every namespace; both ends of every flow, in the namespaces we own."""
    owned = {n.name for n in topo.namespaces}
    result = []
    for ns in sorted(n.name for n in topo.namespaces):
        result.append(
            spec(
                "NetworkPolicy",
                "networkpolicy",
                ("namespaces",),
                name="default-deny",
                namespace=ns,
                labels=common_labels(),
                pod_selector={},
                policy_types=["Ingress", "Egress"],
            )
        )
        result.append(
            spec(
                "NetworkPolicy",
                "networkpolicy",
                ("namespaces",),
                name="allow-dns",
                namespace=ns,
                labels=common_labels(),
                pod_selector={},
                policy_types=["Egress"],
                egress=[
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            )
        )
    for flow in flows(topo):
        ports = [{"protocol": flow.protocol, "port": p} for p in flow.ports]
        if flow.source_ns in owned:
            to = [{"ipBlock": {"cidr": c}} for c in flow.dest_cidrs] or [_peer(flow.dest_ns, flow.dest_pods)]
            result.append(
                spec(
                    "NetworkPolicy",
                    "networkpolicy",
                    flow.source,
                    name=f"allow-{flow.name}-egress",
                    namespace=flow.source_ns,
                    labels=common_labels(),
                    pod_selector=dict(flow.source_pods),
                    policy_types=["Egress"],
                    egress=[{"to": to, "ports": ports}],
                )
            )
        if flow.dest_ns in owned:
            result.append(
                spec(
                    "NetworkPolicy",
                    "networkpolicy",
                    flow.source,
                    name=f"allow-{flow.name}-ingress",
                    namespace=flow.dest_ns,
                    labels=common_labels(),
                    pod_selector=dict(flow.dest_pods),
                    policy_types=["Ingress"],
                    ingress=[{"from": _sources(flow), "ports": ports}],
                )
            )
    return result
