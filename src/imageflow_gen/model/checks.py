"""Cross-field checks: what no single field can know. Every check runs; all findings return.

Each finding is (path into the merged profile, message); the caller turns paths into
file:line:column. Nothing here raises for a finding.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import Path, dotted
from ..shared import once_per_object
from . import Topology
from .cluster import NODE_TYPE_LABEL
from .edge import API_PREFIX
from .common import Resources, SecretRef
from .messaging import CLIENT_SECRET_KEYS, client_keys
from .workloads import FILES_VOLUME, TMP_PATH, TMP_VOLUME, Published, WorkloadPort, env_entries
from .quantity import parse

Finding = tuple[Path, str]


class Reference(tuple[Path, str]):
    """A finding about a name that refers to a missing item: (path, message), plus the named
    lists the item could have been in, so that a child profile's `$remove` can be blamed."""

    lists: tuple[Path, ...]
    name: str

    def __new__(cls, path: Path, message: str, lists: tuple[Path, ...], name: str) -> Reference:
        self = super().__new__(cls, (path, message))
        self.lists, self.name = lists, name
        return self


@dataclass(frozen=True)
class ClusterService:
    """A Service the cluster will have, as routes and policies see it."""

    namespace: str
    name: str
    ports: frozenset[int]
    path: Path


def cluster_services(topo: Topology) -> list[ClusterService]:
    """Every in-cluster Service the topology defines, with its ports."""
    obs, minio = topo.observability, topo.storage.minio
    services = [
        ClusterService(topo.processing.namespace, s.name, frozenset({s.port}), ("processing", "services", i))
        for i, s in enumerate(topo.processing.services)
    ]
    services.append(
        ClusterService(minio.namespace, "minio", frozenset({minio.port, minio.console_port}), ("storage", "minio"))
    )
    services.append(
        ClusterService(
            obs.tempo.namespace,
            obs.tempo.name,
            frozenset(obs.tempo.ports.model_dump().values()),
            ("observability", "tempo"),
        )
    )
    services.append(
        ClusterService(
            obs.otel_agent.namespace,
            obs.otel_agent.name,
            frozenset(obs.otel_agent.ports.model_dump().values()),
            ("observability", "otel_agent"),
        )
    )
    for key in ("api_gateway", "backend_api", "web_ui"):
        component = getattr(topo.edge, key)
        if "cluster" in component.runs_on:
            ports = frozenset({component.port, *(p.port for p in component.ports)})
            services.append(ClusterService(component.namespace, component.name, ports, ("edge", key)))
    services += [
        ClusterService(w.namespace, w.name, frozenset(p.port for p in w.ports), ("workloads", i))
        for i, w in enumerate(topo.workloads)
        if w.namespace is not None and w.ports
    ]
    return services


def check(topo: Topology) -> list[Finding]:
    """All cross-field findings for `topo`."""
    findings: list[Finding] = []
    for rule in (
        _unique_names,
        _namespace_refs,
        _placement,
        _storage,
        _kafka,
        _routes,
        _policies,
        _ports,
        _resources,
        _vms,
        _agent_logs,
        _workloads,
        _slot_env,
        _edge_ports,
        _store_uses,
        _startup_cycles,
    ):
        findings.extend(rule(topo))
    return findings


# ---- uniqueness ------------------------------------------------------------------------


def _duplicates(items: Iterable[tuple[Any, Path]], what: str) -> Iterator[Finding]:
    seen: dict[Any, Path] = {}
    for value, path in items:
        if value in seen:
            yield path, f"duplicate {what} {value!r} (also at {dotted(seen[value])})"
        else:
            seen[value] = path


def _indexed(items: list[Any], base: Path, attr: str = "name") -> list[tuple[Any, Path]]:
    return [(getattr(item, attr), base + (i, attr)) for i, item in enumerate(items)]


def _unique_names(topo: Topology) -> Iterator[Finding]:
    cluster, kafka = topo.cluster, topo.messaging.kafka
    nodes = _indexed(cluster.master_nodes, ("cluster", "master_nodes")) + _indexed(
        cluster.worker_nodes, ("cluster", "worker_nodes")
    )
    yield from _duplicates(nodes, "node name")
    ips = _indexed(cluster.master_nodes, ("cluster", "master_nodes"), "ip") + _indexed(
        cluster.worker_nodes, ("cluster", "worker_nodes"), "ip"
    )
    yield from _duplicates(ips, "node address")
    yield from _duplicates(_indexed(topo.vms, ("vms",)), "VM name")
    yield from _duplicates(_indexed(topo.namespaces, ("namespaces",)), "namespace")
    yield from _duplicates(_indexed(topo.storage.storage_classes, ("storage", "storage_classes")), "storage class")
    yield from _duplicates(_indexed(topo.storage.minio.buckets, ("storage", "minio", "buckets")), "bucket")
    yield from _duplicates(_indexed(kafka.brokers, ("messaging", "kafka", "brokers")), "broker name")
    yield from _duplicates(_indexed(kafka.brokers, ("messaging", "kafka", "brokers"), "node_id"), "broker node_id")
    yield from _duplicates(_indexed(kafka.listeners, ("messaging", "kafka", "listeners")), "listener")
    yield from _duplicates(_indexed(kafka.topics, ("messaging", "kafka", "topics")), "topic")
    yield from _duplicates(
        [((r.namespace, r.name), ("network", "routes", i, "name")) for i, r in enumerate(topo.network.routes)], "route"
    )
    yield from _duplicates(
        [((p.namespace, p.name), ("network", "policies", i, "name")) for i, p in enumerate(topo.network.policies)],
        "network policy",
    )
    yield from _duplicates(
        [((s.namespace, s.name), s.path + ("name",)) for s in cluster_services(topo)], "service (namespace, name)"
    )
    if kafka.connect:
        yield from _duplicates(
            _indexed(kafka.connect.connectors, ("messaging", "kafka", "connect", "connectors")), "connector"
        )


# ---- references ------------------------------------------------------------------------


def _namespace_uses(topo: Topology) -> Iterator[tuple[str, Path]]:
    obs = topo.observability
    yield topo.processing.namespace, ("processing", "namespace")
    yield topo.storage.minio.namespace, ("storage", "minio", "namespace")
    if topo.storage.postgresql is not None and topo.storage.postgresql.namespace is not None:
        yield topo.storage.postgresql.namespace, ("storage", "postgresql", "namespace")
    yield obs.otel_agent.namespace, ("observability", "otel_agent", "namespace")
    yield obs.tempo.namespace, ("observability", "tempo", "namespace")
    if obs.prometheus is not None:
        yield obs.prometheus.namespace, ("observability", "prometheus", "namespace")
        if obs.prometheus.node_exporter is not None:
            ne = obs.prometheus.node_exporter
            yield ne.namespace, ("observability", "prometheus", "node_exporter", "namespace")
        if obs.prometheus.gpu_exporter is not None:
            ge = obs.prometheus.gpu_exporter
            yield ge.namespace, ("observability", "prometheus", "gpu_exporter", "namespace")
    for i, reader in enumerate(obs.otel_agent.metrics_readers):
        yield reader.namespace, ("observability", "otel_agent", "metrics_readers", i, "namespace")
    for i, client in enumerate(obs.tempo.query_clients):
        yield client.namespace, ("observability", "tempo", "query_clients", i, "namespace")
    yield topo.network.gateway.namespace, ("network", "gateway", "namespace")
    yield topo.messaging.kafka.cluster_namespace, ("messaging", "kafka", "cluster_namespace")
    for key in ("api_gateway", "backend_api", "web_ui"):
        component = getattr(topo.edge, key)
        if "cluster" in component.runs_on:
            yield component.namespace, ("edge", key, "namespace")
    for i, route in enumerate(topo.network.routes):
        yield route.namespace, ("network", "routes", i, "namespace")
    for i, workload in enumerate(topo.workloads):
        if workload.namespace is not None:
            yield workload.namespace, ("workloads", i, "namespace")
    for i, policy in enumerate(topo.network.policies):
        base = ("network", "policies", i)
        yield policy.namespace, base + ("namespace",)
        for j, ingress in enumerate(policy.ingress or []):
            for k, ns in enumerate(ingress.from_namespaces):
                yield ns, base + ("ingress", j, "from_namespaces", k)
        for j, egress in enumerate(policy.egress or []):
            for k, ns in enumerate(egress.to_namespaces):
                yield ns, base + ("egress", j, "to_namespaces", k)


def _namespace_refs(topo: Topology) -> Iterator[Finding]:
    for i, ns in enumerate(topo.namespaces):
        if ns.pod_security != "restricted" and not ns.pod_security_reason:
            yield (
                ("namespaces", i, "pod_security"),
                (f"{ns.pod_security!r} is weaker than 'restricted': give the reason in pod_security_reason"),
            )
    known = {ns.name for ns in topo.namespaces}
    for name, path in _namespace_uses(topo):
        if name not in known:
            yield Reference(
                path, f"namespace {name!r} is not defined in namespaces ({_choices(known)})", (("namespaces",),), name
            )


def _choices(values: Iterable[Any]) -> str:
    values = sorted(str(v) for v in values)
    return "defined: " + ", ".join(values) if values else "none defined"


def _node_types(topo: Topology) -> dict[str, list[Any]]:
    types: dict[str, list[Any]] = {}
    for node in topo.cluster.nodes:
        if node.node_type:
            types.setdefault(node.node_type, []).append(node)
    return types


def only_node(topo: Topology, workload: Any) -> Any | None:
    """The one node a workload can run on (its node_type names exactly one node, or the cluster
    has one node), or None."""
    nodes = _node_types(topo).get(workload.node_type, []) if workload.node_type else list(topo.cluster.nodes)
    return nodes[0] if len(nodes) == 1 else None


def _node_placement(workload: Any, path: Path, types: dict[str, list[Any]], what: str) -> Iterator[Finding]:
    """A processing service's or a workload's node_type names nodes, and a GPU one's nodes have
    the GPUs it asks for."""
    if workload.node_type is not None and workload.node_type not in types:
        yield (
            path + ("node_type",),
            (f"no node has the label {NODE_TYPE_LABEL}={workload.node_type} ({_choices(types)})"),
        )
    elif workload.gpu and workload.node_type is None:
        yield path + ("node_type",), f"a GPU {what} needs a node_type whose nodes have GPUs"
    elif (
        workload.gpu
        and workload.node_type is not None
        and not all(n.resources.gpu >= workload.gpu for n in types[workload.node_type])
    ):
        yield (
            path + ("gpu",),
            (
                f"asks for {workload.gpu} GPU(s) per pod but nodes labelled "
                f"{NODE_TYPE_LABEL}={workload.node_type} do not all have that many"
            ),
        )


def _placement(topo: Topology) -> Iterator[Finding]:
    types = _node_types(topo)
    names = [s.name for s in topo.processing.services]
    known = set(names)
    for i, service in enumerate(topo.processing.services):
        path = ("processing", "services", i)
        for j, callee in enumerate(service.calls):
            if callee == service.name or callee not in known:
                yield Reference(
                    path + ("calls", j),
                    f"{callee!r} is not another processing service ({_choices(n for n in names if n != service.name)})",
                    (("processing", "services"),),
                    callee,
                )
        if service.load_balancing == "client" and service.release.strategy == "canary":
            yield (
                path + ("load_balancing",),
                (
                    "a canary's weights are applied by the mesh: client-side balancing would bypass them; "
                    "use mesh (the default for a canary)"
                ),
            )
        yield from _node_placement(service, path, types, "service")
        if service.autoscaling and service.autoscaling.min_replicas > service.autoscaling.max_replicas:
            yield path + ("autoscaling", "min_replicas"), "must not exceed max_replicas"
    if len(topo.cluster.nodes) > 1:
        for group in ("master_nodes", "worker_nodes"):
            for i, node in enumerate(getattr(topo.cluster, group)):
                if node.resources.gpu and not any(t.effect == "NoSchedule" for t in node.taints):
                    yield (
                        ("cluster", group, i, "taints"),
                        (
                            "a GPU node in a multi-node cluster needs a NoSchedule taint (e.g. nvidia.com/gpu=true) "
                            "so that only GPU workloads land on it"
                        ),
                    )
    nodes = {node.name for node in topo.cluster.nodes}
    for i, host in enumerate(topo.storage.minio.volumes.hosts):
        if host not in nodes:
            yield Reference(
                ("storage", "minio", "volumes", "hosts", i),
                f"node {host!r} is not a cluster node ({_choices(nodes)})",
                (("cluster", "master_nodes"), ("cluster", "worker_nodes")),
                host,
            )


# The logical keys each kind of referenced Secret must map to a key of the Secret.
_SECRET_KEYS = {
    "opaque": ("access-key", "secret-key"),
    "tls": ("cert", "key"),
    "ca": ("ca",),
    "postgresql": ("password",),
    "token": ("token",),
    "grafana": ("user", "password"),
}


def _secret_keys(topo: Topology) -> Iterator[Finding]:
    for _, purpose, ref, path in secret_refs(topo):
        wanted = _SECRET_KEYS.get(purpose, ())  # a Kafka client's Secret is derived with its keys
        missing = [key for key in wanted if key not in ref.keys]
        if missing:
            yield path + ("keys",), f"needs the keys {', '.join(wanted)}; missing {', '.join(missing)}"


@dataclass(frozen=True)
class MinioClient:
    """A workload that uses MinIO as its own MinIO user, limited to its buckets.

    Its keys are in the Secret `minio-<name>` (keys access-key, secret-key), supplied by the
    secret provider in the namespace it runs in and in MinIO's, where the bucket job creates
    the user and attaches the policy `imageflow-<name>`."""

    name: str
    namespace: str | None  # the cluster namespace it runs in; None: only on a VM
    vm: str | None  # the VM it runs on, if any
    buckets: tuple[tuple[str, str], ...]  # (bucket, r | w | rw)
    path: Path

    @property
    def secret(self) -> str:
        return f"minio-{self.name}"

    @property
    def policy(self) -> str:
        return f"imageflow-{self.name}"

    @property
    def ref(self) -> SecretRef:
        return SecretRef(name=self.secret, keys={key: key for key in _SECRET_KEYS["opaque"]})


@dataclass(frozen=True)
class Caller:
    """A workload where one of its placements runs, with the uses it has there ((k, use): k its
    index in the profile's `uses`)."""

    name: str
    namespace: str | None  # in the cluster
    vm: str | None  # on a VM
    base: Path  # its key in the profile
    uses: tuple[tuple[int, Any], ...]


@once_per_object
def callers(topo: Topology) -> list[Caller]:
    """Every workload once per place it runs: the edge components, the processing services, the
    typed workloads."""
    slots = slot_envs(topo)
    ordered = [s for s in slots if s.base[0] == "edge"] + [s for s in slots if s.base[0] != "edge"]
    result = []
    for s in ordered:
        place = "cluster" if s.namespace is not None else "vm"
        uses = tuple((k, u) for k, u in enumerate(s.uses) if u.where in (None, place))
        result.append(Caller(s.name, s.namespace, s.vm, s.base, uses))
    result += [
        Caller(w.name, w.namespace, w.vm, ("workloads", i), tuple(enumerate(w.uses)))
        for i, w in enumerate(topo.workloads)
    ]
    return result


def _merged(grants: dict[str, set[str]]) -> tuple[tuple[str, str], ...]:
    """(bucket, r | w | rw) from each bucket's set of access letters."""
    return tuple((bucket, "".join(sorted(letters))) for bucket, letters in grants.items())


@once_per_object
def minio_clients(topo: Topology) -> list[MinioClient]:
    """The workloads whose `uses` name MinIO buckets (each with the union of its uses' access,
    wherever it runs), and Kafka Connect (its sinks' buckets, write)."""
    found: dict[str, tuple[list[str | None], dict[str, set[str]], Path]] = {}
    for caller in callers(topo):
        for k, use in caller.uses:
            if use.minio is None:
                continue
            places, grants, _ = found.setdefault(caller.name, ([None, None], {}, caller.base + ("uses", k, "minio")))
            places[0] = places[0] or caller.namespace
            places[1] = places[1] or caller.vm
            for bucket in use.minio.buckets:
                grants.setdefault(bucket, set()).update(use.minio.access)
    clients = [
        MinioClient(name, places[0], places[1], _merged(grants), path) for name, (places, grants, path) in found.items()
    ]
    pg = topo.storage.postgresql
    if pg is not None and pg.backup is not None:
        path = ("storage", "postgresql", "backup")
        clients.append(MinioClient(backup_user(pg), pg.namespace, pg.vm, ((pg.backup.bucket, "rw"),), path))
    kafka = topo.messaging.kafka
    if kafka.connect and kafka.connect.connectors:
        sinks = tuple(sorted({(c.bucket, "w") for c in kafka.connect.connectors}))
        clients.append(MinioClient(CONNECT_USER, None, kafka.vm, sinks, ("messaging", "kafka", "connect")))
    return clients


@dataclass(frozen=True)
class KafkaUser:
    """A workload whose `uses` name Kafka topics, where it runs (once per place).

    Where its listener authenticates it is Kafka's user `name` (SCRAM user, or the CN of its
    client certificate), limited by ACLs to its topics; in the cluster its client files are the
    Secret `kafka-<name>` in its namespace."""

    name: str
    namespace: str | None
    vm: str | None
    produce: tuple[str, ...]
    consume: tuple[str, ...]
    path: Path  # its first Kafka use
    base: Path = ()  # the workload in the profile

    @property
    def secret(self) -> str:
        return f"kafka-{self.name}"

    def ref(self, protocol: str) -> SecretRef:
        """Its Secret with the keys `protocol` needs (the cluster's listener's)."""
        return SecretRef(name=self.secret, keys={key: CLIENT_SECRET_KEYS[key] for key in client_keys(protocol)})


def kafka_users(topo: Topology) -> list[KafkaUser]:
    result = []
    for caller in callers(topo):
        kafka = [(k, u.kafka) for k, u in caller.uses if u.kafka is not None]
        if kafka:
            produce = tuple(dict.fromkeys(t for _, u in kafka for t in u.produce))
            consume = tuple(dict.fromkeys(t for _, u in kafka for t in u.consume))
            path = caller.base + ("uses", kafka[0][0], "kafka")
            result.append(KafkaUser(caller.name, caller.namespace, caller.vm, produce, consume, path, caller.base))
    return result


def kafka_network(topo: Topology, user: KafkaUser) -> str:
    """The network a client reaches the brokers over (`private` or `vpn`): the cluster's, or a
    VM's: the private one on Kafka's own VM, the VPN from the others (the edge VM)."""
    if user.namespace is not None or user.vm == topo.messaging.kafka.vm:
        return "private"
    return "vpn"


def kafka_clients(topo: Topology) -> list[KafkaUser]:
    """Every client of the brokers but Kafka Connect (on the brokers' own network): the
    workloads whose uses name topics, and the OTel agent when it ships logs to Kafka."""
    result = kafka_users(topo)
    agent = topo.observability.otel_agent
    if agent.logs_topic is not None:
        base = ("observability", "otel_agent")
        result.append(
            KafkaUser(agent.name, agent.namespace, None, (agent.logs_topic,), (), base + ("logs_topic",), base)
        )
    return result


@dataclass(frozen=True)
class PostgresUser:
    """A workload whose `uses` name a PostgreSQL database, where it runs (once per place)."""

    name: str
    namespace: str | None
    vm: str | None
    database: str
    role: str
    path: Path  # its use of PostgreSQL


@once_per_object
def postgres_users(topo: Topology) -> list[PostgresUser]:
    result = []
    for caller in callers(topo):
        for k, use in caller.uses:
            if use.postgresql is not None:
                pg = use.postgresql
                path = caller.base + ("uses", k, "postgresql")
                result.append(PostgresUser(caller.name, caller.namespace, caller.vm, pg.database, pg.role, path))
    return result


@once_per_object
def postgres_port(topo: Topology) -> WorkloadPort:
    """The PostgreSQL store's port `sql`: with `vm_node_port`, a node port admitting exactly the
    VMs whose uses name a database (when any does)."""
    pg = topo.storage.postgresql
    assert pg is not None
    host = _vm(topo, pg.vm) if pg.vm is not None else None
    if host is not None:  # on a VM: published on its address, for the cluster and the other VMs
        return WorkloadPort(name="sql", port=pg.port, publish=Published(port=pg.port, address=str(host.address)))
    vms = sorted({str(u.vm) for u in postgres_users(topo) if u.vm is not None})
    exposed = bool(vms) and pg.vm_node_port is not None
    return WorkloadPort(
        name="sql",
        port=pg.port,
        node_port=pg.vm_node_port if exposed else None,
        node_port_from=vms if exposed else None,
    )


# The role the backup CronJob dumps the databases as (pg_read_all_data); a profile's role may not
# take its name.
BACKUP_ROLE = "imageflow-backup"


def backup_user(pg: Any) -> str:
    """The backup CronJob's name, its pods' app label and its MinIO user (it writes and prunes
    its bucket)."""
    return f"{pg.name}-backup"


def role_secret(pg: Any, role: str) -> str:
    """The Secret holding a PostgreSQL role's password (key `password`)."""
    return f"{pg.name}-{role}"


def client_of_backup(topo: Topology) -> MinioClient:
    assert topo.storage.postgresql is not None
    return next(c for c in minio_clients(topo) if c.name == backup_user(topo.storage.postgresql))


def uses_store(uses: Sequence[Any], store: str) -> bool:
    """Whether `uses` (a workload's, where it runs) name `store` (minio, kafka)."""
    return any(getattr(u, store) is not None for u in uses)


# The variables a store's use sets, by store.
STORE_ENV = {"minio": "MINIO_", "kafka": "KAFKA_", "postgresql": "PG"}


def _postgres_use(topo: Topology, use: Any, where: Path) -> Iterator[Finding]:
    """A use of PostgreSQL names a declared database and a role it grants."""
    pg = topo.storage.postgresql
    if pg is None:
        yield where, "the profile declares no PostgreSQL (storage.postgresql)"
        return
    db = next((d for d in pg.databases if d.name == use.database), None)
    if db is None:
        yield Reference(
            where + ("database",),
            f"database {use.database!r} is not declared in storage.postgresql.databases "
            f"({_choices(d.name for d in pg.databases)})",
            (("storage", "postgresql", "databases"),),
            use.database,
        )
        return
    roles = [db.owner, *(g.role for g in db.grants)]
    if use.role not in roles:
        yield (
            where + ("role",),
            f"database {db.name!r} grants no role {use.role!r} ({_choices(roles)}): add it to the database's grants",
        )


def _store_uses(topo: Topology) -> Iterator[Finding]:
    """Each use of MinIO names declared buckets, at most with the access they grant; each use of
    Kafka declared topics; each use of PostgreSQL a declared database as a role it grants, once
    per workload; a VM reaches Kafka over a listener of its network; a workload leaves the
    store's variables to it."""
    buckets = {b.name: b for b in topo.storage.minio.buckets}
    topics = {t.name for t in topo.messaging.kafka.topics}
    seen: set[Path] = set()
    for caller in callers(topo):
        for k, use in caller.uses:
            where = caller.base + ("uses", k)
            if use.workload is not None:
                continue
            if where in seen:
                continue
            seen.add(where)
            if use.minio is not None:
                for m, name in enumerate(use.minio.buckets):
                    bucket = buckets.get(name)
                    if bucket is None:
                        yield Reference(
                            where + ("minio", "buckets", m),
                            f"bucket {name!r} is not declared in storage.minio.buckets ({_choices(buckets)})",
                            (("storage", "minio", "buckets"),),
                            name,
                        )
                    elif not set(use.minio.access) <= set(bucket.access):
                        yield (
                            where + ("minio", "access"),
                            f"{use.minio.access} is wider than bucket {name!r} grants the platform ({bucket.access})",
                        )
            if use.postgresql is not None:
                yield from _postgres_use(topo, use.postgresql, where + ("postgresql",))
            if use.kafka is not None:
                for direction in ("produce", "consume"):
                    for m, name in enumerate(getattr(use.kafka, direction)):
                        if name not in topics:
                            yield Reference(
                                where + ("kafka", direction, m),
                                f"topic {name!r} is not declared in messaging.kafka.topics ({_choices(topics)})",
                                (("messaging", "kafka", "topics"),),
                                name,
                            )
    kafka = topo.messaging.kafka
    for user in kafka_users(topo):
        network = kafka_network(topo, user)
        if kafka.listener_on(network) is None:
            place = f"on VM {user.vm}" if user.vm is not None else "in the cluster"
            yield (
                user.path,
                f"{user.name} {place} reaches Kafka over the {network} network: declare a listener with "
                f"network {network} in messaging.kafka.listeners",
            )
    second: set[Path] = set()
    for caller in callers(topo):
        pg_uses = [k for k, u in caller.uses if u.postgresql is not None]
        if len(pg_uses) > 1 and caller.base + ("uses", pg_uses[1]) not in second:
            second.add(caller.base + ("uses", pg_uses[1]))
            yield (
                caller.base + ("uses", pg_uses[1]),
                "a second use of PostgreSQL: its PG* variables name one database and role (use another "
                "workload, or one role that the databases grant)",
            )
    owners: dict[Path, tuple[Sequence[Any], Sequence[Any]]] = {s.base: (s.env, s.uses) for s in slot_envs(topo)}
    owners.update({("workloads", i): (w.env, w.uses) for i, w in enumerate(topo.workloads)})
    for base, (env, uses) in owners.items():
        for key, var in env_entries(env, []):
            for store, prefix in STORE_ENV.items():
                if var.name.startswith(prefix) and uses_store(uses, store):
                    yield (
                        base + name_key(key),
                        f"{var.name}: {prefix}* is set by the generator for the workload's use of {store}",
                    )


CONNECT_USER = "kafka-connect"


def _minio_clients(topo: Topology) -> Iterator[Finding]:
    """Each MinIO user's Secret is its own: no two workloads share a name, none is the root's."""
    clients = minio_clients(topo)
    yield from _duplicates(((c.name, c.path) for c in clients), "MinIO user (workload name)")
    root = topo.storage.minio.credentials.name
    for client in clients:
        if client.secret == root:
            yield (
                client.path,
                f"the MinIO user's Secret {client.secret!r} would be storage.minio.credentials' (the root user's); "
                "rename one",
            )


def secret_refs(topo: Topology) -> list[tuple[str, str, Any, Path]]:
    """(namespace, purpose, SecretRef, path) of every Secret the output references."""
    minio, kafka = topo.storage.minio, topo.messaging.kafka
    refs: list[tuple[str, str, Any, Path]] = [
        (minio.namespace, "opaque", minio.credentials, ("storage", "minio", "credentials")),
        ("istio-system", "tls", topo.network.gateway.tls, ("network", "gateway", "tls")),
    ]
    clients = minio_clients(topo)
    for client in clients:  # where it runs, and MinIO's namespace for the bucket job
        namespaces = dict.fromkeys(n for n in (client.namespace, minio.namespace) if n)
        refs += [(namespace, "opaque", client.ref, client.path) for namespace in namespaces]
    trusting: dict[str, None] = {}
    if minio.tls is not None:
        tls = ("storage", "minio", "tls")
        refs.append((minio.namespace, "tls", minio.tls.certificate, tls + ("certificate",)))
        trusting = dict.fromkeys([minio.namespace] + [c.namespace for c in clients if c.namespace])
        refs += [(namespace, "ca", minio.tls.ca, tls + ("ca",)) for namespace in trusting]
    prom = topo.observability.prometheus
    if prom is not None and prom.grafana is not None:  # its admin signs in with it
        refs.append(
            (prom.namespace, "grafana", prom.grafana.admin, ("observability", "prometheus", "grafana", "admin"))
        )
    if prom is not None and minio.metrics_token is not None:  # Prometheus scrapes MinIO with it
        refs.append((prom.namespace, "token", minio.metrics_token, ("storage", "minio", "metrics_token")))
        if minio.tls is not None and prom.namespace not in trusting:
            refs.append((prom.namespace, "ca", minio.tls.ca, ("storage", "minio", "tls", "ca")))
    protocol = kafka.protocol_on("private")
    if client_keys(protocol):
        refs += [(u.namespace, "kafka", u.ref(protocol), u.path) for u in kafka_clients(topo) if u.namespace]
    pg = topo.storage.postgresql
    if pg is not None:
        base = ("storage", "postgresql")
        # The server and its jobs read the superuser's and every role's Secret where they run (on
        # a VM: compose secrets); the clients their role's, in their namespaces.
        own = [pg.namespace] if pg.namespace is not None else []
        refs += [(namespace, "postgresql", pg.superuser, base + ("superuser",)) for namespace in own]
        places = {role: list(own) for role in [*pg.roles, *([BACKUP_ROLE] if pg.backup else [])]}
        for user in postgres_users(topo):
            if user.namespace is not None and user.role in places:
                places[user.role].append(user.namespace)
        for role, spots in places.items():
            ref = SecretRef(name=role_secret(pg, role), keys={"password": "password"})
            path = base + (("backup",) if role == BACKUP_ROLE else ("databases",))
            refs += [(namespace, "postgresql", ref, path) for namespace in dict.fromkeys(spots)]
    declared = {s.name: (i, s) for i, s in enumerate(topo.secrets.workload_secrets)}
    callers: list[Any] = [*topo.workloads, *slot_envs(topo)]
    used = sorted({(w.namespace, v.secret.name) for w in callers if w.namespace for _, v in placed_env(w) if v.secret})
    for namespace, name in used:
        if name in declared:
            i, secret = declared[name]
            ref = SecretRef(name=name, keys={key: key for key in secret.keys})
            refs.append((namespace, "workload", ref, ("secrets", "workload_secrets", i)))
    return refs


def _secret_provider(topo: Topology) -> Iterator[Finding]:
    secrets = topo.secrets
    if secrets.provider == "external-secrets" and secrets.external_secrets is None:
        yield ("secrets", "external_secrets"), "provider external-secrets needs external_secrets settings"
    if secrets.provider != "sealed-secrets":
        if secrets.sealed:
            yield ("secrets", "sealed"), "sealed values are only used with provider sealed-secrets"
        return
    for _, _, ref, _path in secret_refs(topo):
        sealed = secrets.sealed.get(ref.name)
        missing = sorted(set(ref.keys.values()) - set(sealed or {}))
        if missing:
            yield ("secrets", "sealed"), f"Secret {ref.name!r} needs sealed values for {', '.join(missing)}"


def _storage(topo: Topology) -> Iterator[Finding]:
    yield from _minio_clients(topo)
    yield from _secret_keys(topo)
    yield from _secret_provider(topo)
    minio = topo.storage.minio
    base = ("storage", "minio")
    classes = {sc.name for sc in topo.storage.storage_classes}
    if minio.storage_class not in classes:
        yield base + ("storage_class",), f"storage class {minio.storage_class!r} is not defined ({_choices(classes)})"
    yield from _tempo_class(topo)
    yield from _metrics(topo)
    yield from _postgresql(topo)
    if minio.mode == "distributed" and minio.drives < 4:
        yield (
            base + ("nodes",),
            (f"distributed mode (erasure coding) needs at least 4 drives; nodes x drives_per_node is {minio.drives}"),
        )
    if minio.mode == "standalone" and minio.nodes != 1:
        yield base + ("nodes",), "standalone mode runs exactly 1 node"


# Role names PostgreSQL (or the backup job) has already.
_RESERVED_ROLES = ("postgres", "public", BACKUP_ROLE)


def _postgresql(topo: Topology) -> Iterator[Finding]:
    pg = topo.storage.postgresql
    if pg is None:
        return
    base = ("storage", "postgresql")
    yield from _duplicates(_indexed(pg.databases, base + ("databases",)), "database")
    for i, db in enumerate(pg.databases):
        where = base + ("databases", i)
        named: list[tuple[str, Path]] = [(db.owner, where + ("owner",))]
        named += [(g.role, where + ("grants", j, "role")) for j, g in enumerate(db.grants)]
        yield from _duplicates(named, f"role of database {db.name!r}")
        for role, path in named:
            if role in _RESERVED_ROLES:
                yield path, f"{role!r} is PostgreSQL's own (or the backup job's) role: name the application's role"
        if db.name in ("postgres", "template0", "template1"):
            yield where + ("name",), f"{db.name!r} is PostgreSQL's own database"
    if pg.node_type is not None and pg.node_type not in _node_types(topo):
        yield (
            base + ("node_type",),
            f"no node has the label node-type={pg.node_type} ({_choices(_node_types(topo))})",
        )
    if pg.backup is not None:
        bucket = next((b for b in topo.storage.minio.buckets if b.name == pg.backup.bucket), None)
        if bucket is None:
            yield Reference(
                base + ("backup", "bucket"),
                f"bucket {pg.backup.bucket!r} is not declared in storage.minio.buckets "
                f"({_choices(b.name for b in topo.storage.minio.buckets)})",
                (("storage", "minio", "buckets"),),
                pg.backup.bucket,
            )
        elif bucket.access != "rw":
            yield (
                base + ("backup", "bucket"),
                f"the backups write and delete dumps: bucket {bucket.name!r} must grant rw (it grants {bucket.access})",
            )
    if pg.vm is not None:
        yield from _postgresql_vm(topo, pg)
        return
    vms = [u for u in postgres_users(topo) if u.vm is not None]
    if vms and pg.vm_node_port is None:
        yield (
            vms[0].path,
            f"{vms[0].name} runs on VM {vms[0].vm} and PostgreSQL in the cluster: give storage.postgresql a "
            "vm_node_port",
        )
    elif vms and only_node(topo, pg) is None:
        yield (
            base + ("node_type",),
            "the VMs' node port keeps the caller's address, so only the node running PostgreSQL answers: place "
            "it on one node (a node_type that one node has)",
        )


def _postgresql_vm(topo: Topology, pg: Any) -> Iterator[Finding]:
    """On a VM: one with a compose stack, and none of the cluster's placement settings."""
    base = ("storage", "postgresql")
    stacks = (topo.edge.vm, topo.messaging.kafka.vm)
    if pg.vm not in stacks:
        known = _vm(topo, pg.vm) is not None
        yield (
            base + ("vm",),
            (f"VM {pg.vm!r} has no compose stack" if known else f"no VM {pg.vm!r} is declared")
            + f" (the stacks: {', '.join(stacks)})",
        )
    for key in ("vm_node_port", "node_type"):
        if getattr(pg, key) is not None:
            yield base + (key,), f"only for PostgreSQL in the cluster: on VM {pg.vm} remove it"
    if pg.volume.storage_class is not None:
        yield base + ("volume", "storage_class"), f"only for PostgreSQL in the cluster: on VM {pg.vm} remove it"


def _kafka(topo: Topology) -> Iterator[Finding]:
    kafka = topo.messaging.kafka
    base = ("messaging", "kafka")
    brokers = len(kafka.brokers)
    if kafka.default_replication_factor > brokers:
        yield (
            base + ("default_replication_factor",),
            (f"{kafka.default_replication_factor} is more than the {brokers} broker(s)"),
        )
    if kafka.min_insync_replicas > min(kafka.default_replication_factor, brokers):
        yield (
            base + ("min_insync_replicas",),
            (
                f"{kafka.min_insync_replicas} is more than the replication factor "
                f"{kafka.default_replication_factor} or the {brokers} broker(s); writes with acks=all would fail"
            ),
        )
    for i, topic in enumerate(kafka.topics):
        if topic.replication_factor > brokers:
            yield (
                base + ("topics", i, "replication_factor"),
                (f"{topic.replication_factor} is more than the {brokers} broker(s)"),
            )
    yield from _listener_security(topo)
    yield from _kafka_vm(topo)
    yield from _broker_ports(topo)
    yield from _connectors(topo)


def _listener_security(topo: Topology) -> Iterator[Finding]:
    kafka = topo.messaging.kafka
    base = ("messaging", "kafka")
    for i, listener in enumerate(kafka.listeners):
        name = listener.name
        if name.endswith("SSL") or "SASL_" in name:
            # The apache/kafka image's start script reads "SSL://" and "SASL_..://" in the advertised
            # listeners as its own TLS and SASL set-up, and stops when that set-up is missing.
            yield (
                base + ("listeners", i, "name"),
                (
                    f"{name!r} ends in SSL or contains SASL_, which the Kafka image's start script takes for a "
                    "protocol; name the listener for its network (e.g. VPN, K3S)"
                ),
            )
        elif listener.protocol == "SSL" and not re.fullmatch(r"[A-Z][A-Z0-9]+", name):
            yield (
                base + ("listeners", i, "name"),
                (
                    f"{name!r}: an SSL listener's name must be 2 or more letters and digits without '_', so that "
                    "its client-authentication setting reaches the broker through the image's environment"
                ),
            )
    # One workload is one Kafka user wherever it runs; two workloads may not share one.
    first: dict[tuple[str, Path], Path] = {}
    for user in kafka_clients(topo):
        first.setdefault((user.name, user.base), user.path)
    yield from _duplicates(((name, path) for (name, _), path in first.items()), "Kafka user (workload name)")


def _vm(topo: Topology, name: str) -> Any:
    return next((vm for vm in topo.vms if vm.name == name), None)


def _kafka_vm(topo: Topology) -> Iterator[Finding]:
    kafka = topo.messaging.kafka
    vm = _vm(topo, kafka.vm)
    if vm is None:
        yield (
            ("messaging", "kafka", "vm"),
            (f"VM {kafka.vm!r} is not defined in vms ({_choices(v.name for v in topo.vms)})"),
        )
        return
    for i, listener in enumerate(kafka.listeners):
        if listener.network == "vpn" and vm.vpn_address is None:
            yield (
                ("messaging", "kafka", "listeners", i, "network"),
                (f"VM {vm.name!r} has no vpn_address to advertise on listener {listener.name}"),
            )


def _broker_ports(topo: Topology) -> Iterator[Finding]:
    kafka = topo.messaging.kafka
    wanted = {listener.name for listener in kafka.listeners} | {"CONTROLLER"}
    used: list[tuple[int, Path]] = []
    for i, broker in enumerate(kafka.brokers):
        path = ("messaging", "kafka", "brokers", i, "ports")
        if set(broker.ports) != wanted:
            yield (
                path,
                (
                    f"needs a port for each of {', '.join(sorted(wanted))}; "
                    f"has {', '.join(sorted(broker.ports)) or 'none'}"
                ),
            )
        for name, port in sorted(broker.ports.items()):
            if port == kafka.internal_port:
                yield path + (name,), f"port {port} is the brokers' internal listener port (internal_port)"
        used.extend((port, path + (name,)) for name, port in sorted(broker.ports.items()))
    if kafka.connect and kafka.connect.rest_access == "private":
        used.append((kafka.connect.rest_port, ("messaging", "kafka", "connect", "rest_port")))
    yield from _duplicates(used, "port on the Kafka VM")


def _connectors(topo: Topology) -> Iterator[Finding]:
    kafka = topo.messaging.kafka
    if not kafka.connect:
        return
    buckets = {b.name for b in topo.storage.minio.buckets}
    topics = {t.name for t in kafka.topics}
    for i, connector in enumerate(kafka.connect.connectors):
        path = ("messaging", "kafka", "connect", "connectors", i)
        if connector.bucket not in buckets:
            yield Reference(
                path + ("bucket",),
                f"bucket {connector.bucket!r} is not a MinIO bucket ({_choices(buckets)})",
                (("storage", "minio", "buckets"),),
                connector.bucket,
            )
        for j, topic in enumerate(connector.topics):
            if topic not in topics:
                yield Reference(
                    path + ("topics", j),
                    f"topic {topic!r} is not defined in messaging.kafka.topics ({_choices(topics)})",
                    (("messaging", "kafka", "topics"),),
                    topic,
                )


def _routes(topo: Topology) -> Iterator[Finding]:
    services = {(s.namespace, s.name): s for s in cluster_services(topo)}
    gateway = topo.network.gateway
    for i, route in enumerate(topo.network.routes):
        path = ("network", "routes", i)
        if route.gateway != gateway.name:
            yield path + ("gateway",), f"gateway {route.gateway!r} is not the topology's gateway {gateway.name!r}"
        target = services.get((route.namespace, route.destination.service))
        if target is None:
            names = [name for ns, name in services if ns == route.namespace]
            yield (
                path + ("destination", "service"),
                (f"no service {route.destination.service!r} in namespace {route.namespace} ({_choices(names)})"),
            )
        elif route.destination.port not in target.ports:
            yield (
                path + ("destination", "port"),
                (f"service {target.name!r} has no port {route.destination.port} ({_choices(target.ports)})"),
            )
    yield from _web_ui_hosts(topo)
    yield from _gateway_hosts(topo)


def _web_ui_hosts(topo: Topology) -> Iterator[Finding]:
    web = topo.edge.web_ui
    path = ("edge", "web_ui", "hosts")
    if "cluster" in web.runs_on and not web.hosts:
        yield path, "the web UI runs in the cluster: name the hosts the gateway sends to it"
    elif web.hosts and "cluster" not in web.runs_on:
        yield path, "only used when the web UI runs in the cluster (runs_on includes cluster)"


def _gateway_hosts(topo: Topology) -> Iterator[Finding]:
    """The hosts the web UI and the cluster workloads' routes claim on the Istio gateway: each
    one of the gateway's hosts, and routed by nothing else (two routes on one host and gateway
    are merged in no defined order)."""
    gateway = topo.network.gateway
    routes = [(h, f"network.routes[{i}]") for i, r in enumerate(topo.network.routes) for h in r.hosts]
    claims: list[tuple[str, Path, str]] = [
        (h, ("edge", "web_ui", "hosts", j), "the web UI") for j, h in enumerate(topo.edge.web_ui.hosts)
    ]
    claims += [
        (w.route.host, ("workloads", i, "route", "host"), f"workload {w.name}")
        for i, w in enumerate(topo.workloads)
        if w.namespace is not None and w.route is not None
    ]
    prom = topo.observability.prometheus
    if prom is not None and prom.grafana is not None and prom.grafana.host is not None:
        claims.append((prom.grafana.host, ("observability", "prometheus", "grafana", "host"), "Grafana"))
    for host, path, owner in claims:
        if host not in gateway.hosts:
            yield path, f"{host!r} is not one of the gateway's hosts ({_choices(gateway.hosts)})"
            continue
        others = [who for h, who in routes if h == host] + [who for h, p, who in claims if h == host and p != path]
        if others:
            yield (
                path,
                f"{host!r} is {others[0]}'s host too; two routes on one host and gateway are merged in no "
                f"defined order: give {owner} its own host",
            )


def _policies(topo: Topology) -> Iterator[Finding]:
    ports_by_ns: dict[str, set[int]] = {}
    for service in cluster_services(topo):
        ports_by_ns.setdefault(service.namespace, set()).update(service.ports)
    for i, policy in enumerate(topo.network.policies):
        base = ("network", "policies", i)
        for j, ingress in enumerate(policy.ingress or []):
            own = ports_by_ns.get(policy.namespace, set())
            for k, port in enumerate(ingress.ports):
                if port.port not in own:
                    yield (
                        base + ("ingress", j, "ports", k, "port"),
                        (f"no workload in namespace {policy.namespace} listens on port {port.port} ({_choices(own)})"),
                    )
        for j, egress in enumerate(policy.egress or []):
            theirs = set().union(*(ports_by_ns.get(ns, set()) for ns in egress.to_namespaces))
            for k, port in enumerate(egress.ports):
                if port.port not in theirs:
                    yield (
                        base + ("egress", j, "ports", k, "port"),
                        (
                            f"no workload in {', '.join(egress.to_namespaces)} listens on port {port.port} "
                            f"({_choices(theirs)})"
                        ),
                    )


def _ports(topo: Topology) -> Iterator[Finding]:
    obs, minio = topo.observability, topo.storage.minio
    yield from _duplicates(
        [(port, path) for (port, _), path in _gateway_ports(topo)], f"port published on {topo.edge.vm}"
    )
    yield from _duplicates(
        [(minio.port, ("storage", "minio", "port")), (minio.console_port, ("storage", "minio", "console_port"))],
        "port of minio",
    )
    for key in ("otel_agent", "tempo"):
        ports = getattr(obs, key).ports.model_dump()
        yield from _duplicates(
            [(port, ("observability", key, "ports", name)) for name, port in ports.items()], f"port of {key}"
        )


def _resources(topo: Topology) -> Iterator[Finding]:
    for path, resources in _all_resources(topo):
        for kind in ("cpu", "memory"):
            request, limit = getattr(resources.requests, kind), getattr(resources.limits, kind)
            if parse(request) > parse(limit):
                yield path + ("resources", "requests", kind), f"request {request} is above the limit {limit}"


def _all_resources(topo: Topology) -> Iterator[tuple[Path, Resources]]:
    for i, service in enumerate(topo.processing.services):
        yield ("processing", "services", i), service.resources
    yield ("storage", "minio"), topo.storage.minio.resources
    yield ("observability", "otel_agent"), topo.observability.otel_agent.resources
    yield ("observability", "tempo"), topo.observability.tempo.resources
    for key in ("api_gateway", "backend_api", "web_ui"):
        yield ("edge", key), getattr(topo.edge, key).resources
    for i, workload in enumerate(topo.workloads):
        yield ("workloads", i), workload.resources


def _vms(topo: Topology) -> Iterator[Finding]:
    roles = Counter(vm.role for vm in topo.vms)
    for i, vm in enumerate(topo.vms):
        if roles[vm.role] > 1:
            yield ("vms", i, "role"), f"more than one VM has the role {vm.role!r}"
    edge_vm = _vm(topo, topo.edge.vm)
    if edge_vm is None:
        yield ("edge", "vm"), f"VM {topo.edge.vm!r} is not defined in vms ({_choices(v.name for v in topo.vms)})"
    elif edge_vm.role != "edge":
        yield ("edge", "vm"), f"VM {edge_vm.name!r} has the role {edge_vm.role!r}, not 'edge'"
    yield from _gateway_settings(topo)
    kafka_vm = _vm(topo, topo.messaging.kafka.vm)
    if kafka_vm is not None and kafka_vm.role != "messaging":
        yield ("messaging", "kafka", "vm"), f"VM {kafka_vm.name!r} has the role {kafka_vm.role!r}, not 'messaging'"


GATEWAY_OWN_HEADERS = frozenset(
    h.lower()
    for h in (
        "Host",
        "Connection",
        "Upgrade",
        "Content-Length",
        "Transfer-Encoding",
        "Authorization",
        "Cookie",
        "X-Real-IP",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Original-URI",
        "X-Original-Method",
    )
)


def _gateway_settings(topo: Topology) -> Iterator[Finding]:
    """The edge gateway's verifier is a port of a service on the edge VM; its identity headers
    are its own; its routes are the API's, each once, each rule excluded once."""
    gw, base = topo.edge.api_gateway, ("edge", "api_gateway")
    if "vm" not in gw.runs_on:
        return
    verifier = gw.auth.verifier
    where = base + ("auth", "verifier")
    candidates = verifiers(topo)
    target = candidates.get(verifier.service)
    if target is None:
        yield (
            where + ("service",),
            f"{verifier.service!r} can be no verifier: the backend or a workload on {topo.edge.vm} "
            f"({_choices(candidates)})",
        )
    elif target.port(verifier.port) is None:
        names = [p.name for p in target.ports]
        yield where + ("port",), f"{verifier.service} has no port named {verifier.port!r} ({_choices(names)})"
    seen: set[str] = set()
    for i, header in enumerate(gw.auth.identity_headers):
        at = base + ("auth", "identity_headers", i)
        if header.lower() in GATEWAY_OWN_HEADERS:
            yield at, f"{header} is a header the gateway sets or passes itself; name the identity otherwise"
        elif header.lower() in seen:
            yield at, f"{header} is listed twice"
        seen.add(header.lower())
    paths: set[tuple[str, bool]] = set()
    for i, route in enumerate(gw.routes):
        key = base + ("routes", i)
        if not route.path.startswith(API_PREFIX):
            yield key + ("path",), f"{route.path} is not under the API's {API_PREFIX}, which these routes divide"
        if (route.path, route.exact) in paths:
            yield key + ("path",), f"{route.path} is routed twice"
        paths.add((route.path, route.exact))
        rules = [e.rule for e in route.waf.exclusions]
        for j, rule in enumerate(rules):
            if rule in rules[:j]:
                yield key + ("waf", "exclusions", j, "rule"), f"rule {rule} is excluded twice"


LOG_DIR = "/var/log"  # the kubelet keeps every container's log under /var/log/pods


def _agent_logs(topo: Topology) -> Iterator[Finding]:
    """The host paths are mounted for the logs pipeline and only for it."""
    agent = topo.observability.otel_agent
    base = ("observability", "otel_agent")
    if agent.logs_topic is None:
        if agent.host_paths:
            yield base + ("host_paths",), "mounted for the logs pipeline, which is off: set logs_topic, or remove them"
        return
    topics = [t.name for t in topo.messaging.kafka.topics]
    if agent.logs_topic not in topics:
        yield Reference(
            base + ("logs_topic",),
            f"{agent.logs_topic!r} is not a Kafka topic ({_choices(topics)})",
            (("messaging", "kafka", "topics"),),
            agent.logs_topic,
        )
    if not any(LOG_DIR == p.rstrip("/") or LOG_DIR.startswith(p.rstrip("/") + "/") for p in agent.host_paths):
        yield base + ("host_paths",), f"the logs pipeline reads {LOG_DIR}/pods: mount {LOG_DIR}"


NO_PROVISIONER = "kubernetes.io/no-provisioner"


def _tempo_class(topo: Topology) -> Iterator[Finding]:
    yield from _provisioning(topo, topo.observability.tempo.storage_class, ("observability", "tempo"), "Tempo")


def _provisioning(topo: Topology, name: str, owner: Path, what: str) -> Iterator[Finding]:
    """A claim names a class that provisions volumes: one the cluster provides, or one defined
    here with a provisioner (a no-provisioner class has only MinIO's volumes)."""
    path = owner + ("storage_class",)
    defined = {sc.name: sc for sc in topo.storage.storage_classes}
    if name in defined and defined[name].provisioner == NO_PROVISIONER:
        yield path, f"storage class {name!r} has no provisioner: nothing would create {what}'s volume"
    elif name not in defined and name not in topo.storage.cluster_classes:
        known = set(defined) | set(topo.storage.cluster_classes)
        yield path, f"storage class {name!r} is neither defined nor provided by the cluster ({_choices(known)})"


def stack_vms(topo: Topology) -> list[str]:
    """The VMs with a compose stack: the edge VM and the Kafka VM."""
    return list(dict.fromkeys([topo.edge.vm, topo.messaging.kafka.vm]))


def node_exporter_vms(topo: Topology) -> list[str]:
    """The VMs Prometheus's node exporter runs on (none without it)."""
    prom = topo.observability.prometheus
    if prom is None or prom.node_exporter is None:
        return []
    ne = prom.node_exporter
    return list(dict.fromkeys(ne.vms)) if ne.vms is not None else stack_vms(topo)


def node_exporter_service(topo: Topology, vm: str) -> str:
    prom = topo.observability.prometheus
    assert prom is not None and prom.node_exporter is not None
    return f"{vm}-{prom.node_exporter.name}"


def _privileged(topo: Topology, namespace: str, base: Path, what: str) -> Iterator[Finding]:
    """A generator's pod that needs the privileged Pod Security level (`what` it does) in a
    namespace of another level (an undefined namespace is refused elsewhere)."""
    levels = {n.name: n.pod_security for n in topo.namespaces}
    if levels.get(namespace, "privileged") != "privileged":
        yield (
            base + ("namespace",),
            f"namespace {namespace} is {levels[namespace]}: {what}, which only the privileged level admits",
        )


def _node_exporter(topo: Topology) -> Iterator[Finding]:
    """Its namespace admits host paths; it runs on VMs with a stack; no workload there has its name."""
    prom = topo.observability.prometheus
    if prom is None or prom.node_exporter is None:
        return
    ne, base = prom.node_exporter, ("observability", "prometheus", "node_exporter")
    yield from _privileged(topo, ne.namespace, base, "the node exporter mounts the node's /proc, /sys and /")
    for j, vm in enumerate(ne.vms or []):
        if vm not in stack_vms(topo):
            yield base + ("vms", j), f"VM {vm!r} has no compose stack ({_choices(stack_vms(topo))})"
    for vm in node_exporter_vms(topo):
        yield from _exporter_on_vm(topo, vm, node_exporter_service(topo, vm), ne.port, base, "the node exporter")


def gpu_node_type(topo: Topology) -> str | None:
    """The node type of the nodes with GPUs, where the GPU exporter runs (None: none, or not
    one type; refused below)."""
    types = {n.node_type for n in topo.cluster.nodes if n.resources.gpu}
    return types.pop() if len(types) == 1 else None


def _gpu_exporter(topo: Topology) -> Iterator[Finding]:
    """Its namespace admits root and host paths; the cluster's GPU nodes are of one node type."""
    prom = topo.observability.prometheus
    if prom is None or prom.gpu_exporter is None:
        return
    ge, base = prom.gpu_exporter, ("observability", "prometheus", "gpu_exporter")
    what = "the GPU exporter runs as root and mounts the kubelet's pod-resources folder"
    yield from _privileged(topo, ge.namespace, base, what)
    gpus = [n for n in topo.cluster.nodes if n.resources.gpu]
    if not gpus:
        yield base, "no cluster node has GPUs: the GPU exporter would have nothing to read (set it to null)"
    elif gpu_node_type(topo) is None:
        found = ", ".join(f"{n.name} ({n.node_type or 'no node-type label'})" for n in gpus)
        yield (
            base,
            f"the GPU nodes are not of one node type ({found}): the GPU exporter runs on the nodes of one "
            f"{NODE_TYPE_LABEL}",
        )


def _exporter_on_vm(topo: Topology, vm: str, service: str, port: int, base: Path, what: str) -> Iterator[Finding]:
    """An exporter's compose service on `vm`: its port published by no seed service there (a
    workload's is its own check), its name no workload's there."""
    for (other, udp), path in _vm_ports(topo, vm):
        if other == port and not udp and path[: len(base)] != base:
            yield base + ("port",), f"port {port} is published on {vm} by {dotted(path)} too"
    names = {(w.vm, w.name): i for i, w in enumerate(topo.workloads) if w.vm is not None}
    if (vm, service) in names:
        yield ("workloads", names[vm, service], "name"), f"{service} is {what}'s service on {vm}"


def _kafka_exporter(topo: Topology) -> Iterator[Finding]:
    prom = topo.observability.prometheus
    if prom is None or prom.kafka_exporter is None:
        return
    ke = prom.kafka_exporter
    base = ("observability", "prometheus", "kafka_exporter")
    yield from _exporter_on_vm(topo, topo.messaging.kafka.vm, ke.name, ke.port, base, "the Kafka exporter")


def _metrics(topo: Topology) -> Iterator[Finding]:
    """A workload's metrics name one of its ports; on a VM one published where Prometheus
    reaches it (not 127.0.0.1). Prometheus's claim names a class that provisions volumes."""
    prom = topo.observability.prometheus
    for i, w in enumerate(topo.workloads):
        if w.metrics is None:
            continue
        where = ("workloads", i, "metrics", "port")
        port = w.port(w.metrics.port)
        if port is None:
            yield where, f"no port named {w.metrics.port!r} ({_choices(p.name for p in w.ports)})"
        elif prom is not None and w.vm is not None and not port.published_beyond_vm:
            yield (
                where,
                f"{w.name} runs on VM {w.vm}: publish port {port.name!r} on the VM's address (publish.address) "
                "for Prometheus to scrape it",
            )
    yield from _node_exporter(topo)
    yield from _gpu_exporter(topo)
    yield from _kafka_exporter(topo)
    if prom is not None:
        if prom.node_type is not None and prom.node_type not in _node_types(topo):
            yield (
                ("observability", "prometheus", "node_type"),
                f"no node has the label node-type={prom.node_type} ({_choices(_node_types(topo))})",
            )
        yield from _provisioning(topo, prom.storage_class, ("observability", "prometheus"), "Prometheus")


# ---- workloads -------------------------------------------------------------------------

# Env names that hold credentials: a plain value under one is refused (use `secret:`).
_CREDENTIAL_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY)")


EDGE_KEYS = ("api_gateway", "backend_api", "web_ui")  # the edge components' keys under `edge`

# Env names a wired slot is given (plan/slots.py, plan/stacks.py): its own env may not set them.
_WIRED_ENV = ("OTEL_",)  # MINIO_* and KAFKA_* where it uses the store (_store_uses)


@dataclass(frozen=True)
class SlotEnv:
    """A seed slot's own env where one of its placements runs, as the env checks, the network
    flows and the Secret references see a caller."""

    name: str
    namespace: str | None  # in the cluster
    vm: str | None  # on a VM
    env: list[Any]
    base: Path  # the slot's key in the profile
    reserved: tuple[str, ...]  # names it is given ("X_": every name starting so)
    runs_on: tuple[str, ...] = ()  # an edge component's places (`where` may name them)
    uses: tuple[Any, ...] = ()
    files: tuple[Any, ...] = ()


@once_per_object
def slot_envs(topo: Topology) -> list[SlotEnv]:
    """Each processing service's and edge component's own env, once per place it runs."""
    namespace = topo.processing.namespace
    result = [
        SlotEnv(
            s.name,
            namespace,
            None,
            s.env,
            ("processing", "services", i),
            ("GRPC_PORT", *_WIRED_ENV),
            uses=tuple(s.uses),
        )
        for i, s in enumerate(topo.processing.services)
    ]
    for key in EDGE_KEYS:
        c = getattr(topo.edge, key)
        reserved = ("PORT", *_WIRED_ENV) if c is topo.edge.backend_api else ()
        for place in c.runs_on:
            cluster = place == "cluster"
            vm = None if cluster else topo.edge.vm
            result.append(
                SlotEnv(
                    c.name,
                    c.namespace if cluster else None,
                    vm,
                    c.env,
                    ("edge", key),
                    reserved,
                    tuple(c.runs_on),
                    tuple(c.uses),
                )
            )
    return result


@dataclass(frozen=True)
class Target:
    """What an env endpoint may name: a typed workload, a processing service (its port `grpc`)
    or the backend or web UI (its port `http` and its further ports), and where it runs (the backend may run in the
    cluster and on the edge VM at once)."""

    name: str
    namespace: str | None  # in the cluster
    vm: str | None  # on a VM
    ports: tuple[Any, ...]
    healthcheck: bool  # on its VM, compose checks its health (a caller there waits for healthy)
    node_type: str | None = None  # in the cluster: the nodes it is placed on

    def port(self, name: str) -> Any | None:
        return next((p for p in self.ports if p.name == name), None)


@once_per_object
def endpoint_targets(topo: Topology) -> dict[str, Target]:
    """Everything an endpoint may name, by name."""
    namespace = topo.processing.namespace
    result = {
        s.name: Target(
            s.name, namespace, None, (WorkloadPort(name="grpc", port=s.port, protocol="grpc"),), False, s.node_type
        )
        for s in topo.processing.services
    }
    # Not the API gateway: callers reach it by its public host name, and it serves TLS on the VM.
    for c in (topo.edge.backend_api, topo.edge.web_ui):
        in_cluster, on_vm = "cluster" in c.runs_on, "vm" in c.runs_on
        http = WorkloadPort(name="http", port=c.port, protocol="http")
        result[c.name] = Target(
            c.name, c.namespace if in_cluster else None, topo.edge.vm if on_vm else None, (http, *c.ports), on_vm
        )
    pg = topo.storage.postgresql
    if pg is not None:
        result[pg.name] = Target(pg.name, pg.namespace, pg.vm, (postgres_port(topo),), pg.vm is not None, pg.node_type)
    for w in topo.workloads:
        exec_ready = w.probes.readiness is not None and w.probes.readiness.exec is not None
        result.setdefault(w.name, Target(w.name, w.namespace, w.vm, tuple(w.ports), exec_ready, w.node_type))
    return result


def verifiers(topo: Topology) -> dict[str, Target]:
    """What may verify the edge gateway's requests, by name: the backend where it runs on the
    edge VM, and the workloads there (the web UI serves files, PostgreSQL no HTTP)."""
    targets = endpoint_targets(topo)
    backend = topo.edge.backend_api
    names = [backend.name] if "vm" in backend.runs_on else []
    names += [w.name for w in topo.workloads if w.vm == topo.edge.vm]
    return {name: targets[name] for name in names}


def placed_env(w: Any) -> list[tuple[Path, Any]]:
    """(key, variable) of every variable `w` (a typed workload or a SlotEnv) sets where it runs,
    its env's and its uses' (workloads.env_entries), but those whose `where` names the other
    place."""
    place = "cluster" if w.namespace is not None else "vm"
    return [(key, v) for key, v in env_entries(w.env, w.uses) if v.where in (None, place)]


def name_key(key: Path) -> Path:
    """Where the name of the variable at `key` is written: an env's `name`, a use's `env`."""
    return key + (("name",) if key[0] == "env" else ("env",))


def endpoint_key(key: Path) -> Path:
    """Where the endpoint of the variable at `key` is written: an env's `endpoint`, a use itself."""
    return key + ("endpoint",) if key[0] == "env" else key


def _slot_env(topo: Topology) -> Iterator[Finding]:
    names = endpoint_targets(topo)
    secrets = {s.name: s for s in topo.secrets.workload_secrets}
    seen: set[Any] = set()
    for slot in slot_envs(topo):
        findings = list(_workload_env(topo, slot, slot.base, names, secrets))
        findings += _duplicates([(v.name, slot.base + name_key(k)) for k, v in placed_env(slot)], "env name")
        if slot.base not in seen:
            findings += _where(slot.env, slot.uses, slot.base, slot.runs_on)
            for key, var in env_entries(slot.env, slot.uses):
                if any(var.name == r or (r.endswith("_") and var.name.startswith(r)) for r in slot.reserved):
                    given = ", ".join(r + "*" if r.endswith("_") else r for r in slot.reserved)
                    yield (
                        slot.base + name_key(key),
                        f"{var.name} is set by the generator for {slot.name} ({given})",
                    )
        seen.add(slot.base)
        for finding in findings:
            said = (tuple(finding[0]), finding[1])
            if said not in seen:
                seen.add(said)
                yield finding


def _workloads(topo: Topology) -> Iterator[Finding]:
    workloads = topo.workloads
    yield from _duplicates(_indexed(workloads, ("workloads",)), "workload name")
    names = endpoint_targets(topo)
    seed: dict[str, Path] = {s.name: ("processing", "services", i) for i, s in enumerate(topo.processing.services)}
    seed.update({getattr(topo.edge, key).name: ("edge", key) for key in EDGE_KEYS})
    if topo.storage.postgresql is not None:
        seed[topo.storage.postgresql.name] = ("storage", "postgresql", "name")
    for i, w in enumerate(workloads):
        if w.name in seed:
            yield (
                ("workloads", i, "name"),
                f"{w.name!r} is the name of {dotted(seed[w.name])}; an endpoint naming it would be ambiguous: rename "
                "the workload",
            )
    secrets = {s.name: s for s in topo.secrets.workload_secrets}
    yield from _duplicates(_indexed(topo.secrets.workload_secrets, ("secrets", "workload_secrets")), "secret")
    stacks = {topo.edge.vm, topo.messaging.kafka.vm}
    namespaces = {ns.name: ns for ns in topo.namespaces}
    node_ports: list[tuple[Any, Path]] = []
    if topo.storage.minio.vm_access is not None:
        node_ports.append((topo.storage.minio.vm_access.node_port, ("storage", "minio", "vm_access", "node_port")))
    pg = topo.storage.postgresql
    if pg is not None and pg.vm_node_port is not None:
        node_ports.append((pg.vm_node_port, ("storage", "postgresql", "vm_node_port")))
    published: dict[str, list[tuple[Any, Path]]] = {}
    for i, w in enumerate(workloads):
        base = ("workloads", i)
        in_cluster = w.namespace is not None
        if w.vm is not None:
            vm = _vm(topo, w.vm)
            if vm is None:
                yield Reference(base + ("vm",), f"VM {w.vm!r} is not defined in vms", (("vms",),), w.vm)
            elif w.vm not in stacks:
                yield (
                    base + ("vm",),
                    f"VM {w.vm!r} has no compose stack ({_choices(stacks)}); the compute VM runs the cluster: "
                    "give a namespace instead",
                )
            elif w.gpu > vm.gpu:
                yield base + ("gpu",), f"asks for {w.gpu} GPU(s); VM {w.vm!r} has {vm.gpu}"
        yield from _duplicates(_indexed(w.ports, base + ("ports",)), "port name")
        yield from _duplicates(
            [(_socket(p.port, p.protocol), base + ("ports", j, "port")) for j, p in enumerate(w.ports)],
            "container port",
        )
        yield from _duplicates([(v.name, base + name_key(k)) for k, v in env_entries(w.env, w.uses)], "env name")
        yield from _duplicates(_indexed(w.files, base + ("files",)), "file name")
        yield from _duplicates(_indexed(w.volumes, base + ("volumes",)), "volume name")
        yield from _duplicates(
            [(f.path, base + ("files", j, "path")) for j, f in enumerate(w.files)]
            + [(v.path, base + ("volumes", j, "path")) for j, v in enumerate(w.volumes)],
            "mount path",
        )
        for j, port in enumerate(w.ports):
            where = base + ("ports", j)
            if port.node_port is not None:
                if not in_cluster:
                    yield where + ("node_port",), "only for a workload in the cluster (on a VM: publish)"
                else:
                    node_ports.append((port.node_port, where + ("node_port",)))
            yield from _node_port_from(topo, w, port, where)
            if port.publish is not None:
                if in_cluster:
                    yield where + ("publish",), "only for a workload on a VM (in the cluster: node_port)"
                elif w.replicas > 1:
                    yield (
                        where + ("publish",),
                        f"{w.replicas} replicas cannot all publish port {port.publish.port} on the VM: one replica, "
                        "or no publish",
                    )
                else:
                    published.setdefault(str(w.vm), []).append(
                        ((port.publish.port, port.protocol == "udp"), where + ("publish", "port"))
                    )
                    vm = next((v for v in topo.vms if v.name == w.vm), None)
                    bindable = ["127.0.0.1", "0.0.0.0", *([str(vm.address)] if vm else [])]
                    if vm is not None and port.publish.address not in bindable:
                        yield (
                            where + ("publish", "address"),
                            f"{port.publish.address} is not an address of {vm.name}: 127.0.0.1, its address "
                            f"{vm.address}, or 0.0.0.0",
                        )
        yield from _workload_env(topo, w, base, names, secrets)
        yield from _where(w.env, w.uses, base, ())
        yield from _workload_probes(w, base)
        yield from _workload_volumes(topo, w, base, namespaces)
        yield from _workload_placement(topo, w, base, namespaces)
    yield from _duplicates(node_ports, "node port")
    for vm, ports in published.items():
        yield from _duplicates(ports + list(_vm_ports(topo, vm)), f"port published on {vm}")


def _node_port_from(topo: Topology, w: Any, port: Any, where: Path) -> Iterator[Finding]:
    if port.node_port_from is None:
        return
    if port.node_port is None:
        yield where + ("node_port_from",), "only with a node_port"
        return
    for k, vm in enumerate(port.node_port_from):
        if _vm(topo, vm) is None:
            yield Reference(where + ("node_port_from", k), f"VM {vm!r} is not defined in vms", (("vms",),), vm)
    if w.namespace is not None and w.kind != "per-node" and only_node(topo, w) is None:
        yield (
            where + ("node_port_from",),
            f"keeps the caller's address, so only the node running {w.name} answers: place it on one node "
            "(a node_type that one node has)",
        )


def _gateway_ports(topo: Topology) -> list[tuple[Any, Path]]:
    """((port, udp), path) of the edge gateway's two ports, published on every address of the
    edge VM when it runs there."""
    gateway = topo.edge.api_gateway
    if "vm" not in gateway.runs_on:
        return []
    return [
        ((gateway.https_port, False), ("edge", "api_gateway", "https_port")),
        ((gateway.http_port, False), ("edge", "api_gateway", "http_port")),
    ]


def _vm_ports(topo: Topology, vm: str) -> Iterator[tuple[Any, Path]]:
    """The ports the seed's services publish on `vm`."""
    if vm == topo.edge.vm:
        yield from _gateway_ports(topo)
    if vm == topo.messaging.kafka.vm:
        for i, broker in enumerate(topo.messaging.kafka.brokers):
            for name, port in sorted(broker.ports.items()):
                yield (port, False), ("messaging", "kafka", "brokers", i, "ports", name)
    prom = topo.observability.prometheus
    if vm in node_exporter_vms(topo) and prom is not None and prom.node_exporter is not None:
        yield (prom.node_exporter.port, False), ("observability", "prometheus", "node_exporter", "port")
    if prom is not None and prom.kafka_exporter is not None and vm == topo.messaging.kafka.vm:
        yield (prom.kafka_exporter.port, False), ("observability", "prometheus", "kafka_exporter", "port")


def _workload_env(
    topo: Topology, w: Any, base: Path, names: dict[str, Any], secrets: dict[str, Any]
) -> Iterator[Finding]:
    files = {f.name for f in w.files}
    for key, var in placed_env(w):
        where = base + key
        if var.value is not None and _CREDENTIAL_ENV.search(var.name):
            yield (
                where + ("value",),
                f"{var.name} looks like a credential: take it from a Secret (secret: {{name, key}})",
            )
        if var.file is not None and var.file not in files:
            yield where + ("file",), f"{var.file!r} is not one of this workload's files ({_choices(files)})"
        if var.secret is not None:
            secret = secrets.get(var.secret.name)
            if secret is None:
                yield Reference(
                    where + ("secret", "name"),
                    f"Secret {var.secret.name!r} is not declared in secrets.workload_secrets ({_choices(secrets)})",
                    (("secrets", "workload_secrets"),),
                    var.secret.name,
                )
            elif var.secret.key not in secret.keys:
                yield (
                    where + ("secret", "key"),
                    f"Secret {secret.name!r} has no key {var.secret.key!r} ({_choices(secret.keys)})",
                )
        if var.endpoint is not None:
            yield from _endpoint(topo, w, var.endpoint, base + endpoint_key(key), names)


def _endpoint(topo: Topology, w: Any, endpoint: Any, where: Path, names: dict[str, Any]) -> Iterator[Finding]:
    target = names.get(endpoint.workload)
    if target is None or target.name == w.name:
        yield Reference(
            where + ("workload",),
            f"{endpoint.workload!r} is not another workload or seed service "
            f"({_choices(n for n in names if n != w.name)})",
            (("workloads",), ("processing", "services")),
            endpoint.workload,
        )
        return
    port = target.port(endpoint.port)
    if port is None:
        yield (
            where + ("port",),
            f"workload {target.name!r} has no port {endpoint.port!r} ({_choices(p.name for p in target.ports)})",
        )
        return
    if endpoint.path is not None and endpoint.scheme in ("none", "tcp", "grpc"):
        yield where + ("path",), f"a path needs an http or https scheme (scheme is {endpoint.scheme})"
    if (w.namespace is not None and target.namespace is not None) or (w.vm is not None and target.vm == w.vm):
        return  # by its cluster DNS name, or by its compose service name on the same VM
    if w.vm is not None and target.namespace is not None:
        node_port = getattr(port, "node_port", None)
        if node_port is None:
            yield (
                where + ("port",),
                f"{w.name} runs on VM {w.vm} and {target.name} in the cluster: give port {port.name!r} a node_port",
            )
        elif port.node_port_from is not None and w.vm not in port.node_port_from:
            yield (
                where + ("port",),
                f"{w.name} runs on VM {w.vm}, which {target.name}'s port {port.name!r} does not admit "
                f"(node_port_from: {', '.join(port.node_port_from)})",
            )
    elif target.vm is not None and not port.published_beyond_vm:
        yield (
            where + ("port",),
            f"{target.name}'s port {port.name!r} is not published beyond VM {target.vm}: "
            "publish it on the VM's address",
        )


def _where(env: Sequence[Any], uses: Sequence[Any], base: Path, runs_on: tuple[str, ...]) -> Iterator[Finding]:
    """`where` only on an edge component (`runs_on`: its places), naming a place it runs."""
    items = [(("env", j), v) for j, v in enumerate(env)] + [(("uses", k), u) for k, u in enumerate(uses)]
    for key, var in items:
        if var.where is None:
            continue
        if not runs_on:
            yield (
                base + key + ("where",),
                "only for an edge component, which may run in the cluster and on the edge VM; this runs in one place",
            )
        elif var.where not in runs_on:
            yield (
                base + key + ("where",),
                f"never set: {dotted(base)} does not run on the {var.where} (runs_on: {', '.join(runs_on)})",
            )


def _startup_cycles(topo: Topology) -> Iterator[Finding]:
    """On a VM, compose starts a service after the services on the same VM it calls (its
    `depends_on`, derived from its endpoints): calls that go round in a circle would never start,
    and compose refuses the file. Located at the call that closes the circle."""
    names = endpoint_targets(topo)
    owners: list[tuple[Any, Path]] = [(s, s.base) for s in slot_envs(topo) if s.vm is not None]
    owners += [(w, ("workloads", i)) for i, w in enumerate(topo.workloads) if w.vm is not None]
    calls: dict[tuple[str, str], list[tuple[str, Path]]] = {}
    for owner, base in owners:
        for key, var in placed_env(owner):
            target = names.get(var.endpoint.workload) if var.endpoint is not None else None
            if target is not None and target.vm == owner.vm and target.name != owner.name:
                calls.setdefault((str(owner.vm), owner.name), []).append((target.name, base + endpoint_key(key)))
    reported: set[frozenset[str]] = set()
    for vm, start in sorted(calls):
        yield from _circles(calls, vm, start, [(start, ())], reported)


def _circles(
    calls: dict[tuple[str, str], list[tuple[str, Path]]],
    vm: str,
    start: str,
    trail: list[tuple[str, Path]],
    reported: set[frozenset[str]],
) -> Iterator[Finding]:
    """Each circle of calls on `vm` from `start` back to it, along `trail` (service, the call's
    path), once per set of services."""
    for callee, path in calls.get((vm, trail[-1][0]), []):
        members = [name for name, _ in trail]
        if callee == start and frozenset(members) not in reported:
            reported.add(frozenset(members))
            route = " -> ".join([*members, callee])
            yield (
                path,
                f"a start-up cycle on {vm}: {route}; compose starts each service after those it calls on its "
                "VM, so none of these would start: drop one of the calls",
            )
        elif callee not in members:
            yield from _circles(calls, vm, start, [*trail, (callee, path)], reported)


def _socket(port: int, protocol: str) -> str:
    """A container port as its transport sees it: 8554/tcp, 8189/udp."""
    return f"{port}/{'udp' if protocol == 'udp' else 'tcp'}"


def _edge_ports(topo: Topology) -> Iterator[Finding]:
    """An edge component's further ports: names and numbers apart from its HTTP port, no exposure."""
    for key in EDGE_KEYS:
        c, base = getattr(topo.edge, key), ("edge", key)
        yield from _duplicates(_indexed(c.ports, base + ("ports",)), "port name")
        yield from _duplicates(
            [(_socket(c.port, "http"), base + ("port",))]
            + [(_socket(p.port, p.protocol), base + ("ports", j, "port")) for j, p in enumerate(c.ports)],
            "container port",
        )
        for j, p in enumerate(c.ports):
            if p.name == "http":
                yield base + ("ports", j, "name"), "'http' is the name of `port`, the HTTP port: choose another"
            for field in ("node_port", "node_port_from", "publish"):
                if getattr(p, field) is not None:
                    yield (
                        base + ("ports", j, field),
                        "an edge component's further ports are reached in the cluster and on the edge VM's compose "
                        "network only",
                    )


def _workload_probes(w: Any, base: Path) -> Iterator[Finding]:
    ports = {p.name: p for p in w.ports}
    if w.namespace is not None and all(p.protocol == "udp" for p in w.ports):
        missing = [k for k in ("readiness", "liveness") if getattr(w.probes, k) is None]
        if missing:
            yield (
                base + ("probes",),
                f"no TCP port to probe by default: give probes.{' and probes.'.join(missing)} (an exec command, say)",
            )
    for kind in ("readiness", "liveness", "startup"):
        probe = getattr(w.probes, kind)
        if probe is None:
            continue
        for check in ("http", "grpc", "tcp"):
            target = getattr(probe, check)
            if target is not None and target.port not in ports:
                yield (
                    base + ("probes", kind, check, "port"),
                    f"no port named {target.port!r} ({_choices(ports)})",
                )
            elif target is not None and ports[target.port].protocol == "udp":
                yield base + ("probes", kind, check, "port"), f"port {target.port!r} is UDP; a {check} probe needs TCP"


def _workload_volumes(topo: Topology, w: Any, base: Path, namespaces: dict[str, Any]) -> Iterator[Finding]:
    classes = {sc.name for sc in topo.storage.storage_classes} | set(topo.storage.cluster_classes)
    for j, f in enumerate(w.files):
        if f.path.rstrip("/") == TMP_PATH or f.path.startswith(TMP_PATH + "/"):
            yield base + ("files", j, "path"), f"{TMP_PATH} is the pod's own scratch space: mount the file elsewhere"
    for j, volume in enumerate(w.volumes):
        where = base + ("volumes", j)
        if volume.name in (TMP_VOLUME, FILES_VOLUME):
            yield where + ("name",), f"{volume.name!r} is the name of a volume every workload has: choose another"
        if volume.path.rstrip("/") == TMP_PATH:
            yield where + ("path",), f"{TMP_PATH} is already the pod's scratch space (256Mi): mount elsewhere"
        persistent = volume.persistent
        if persistent is not None:
            if persistent.storage_class is not None and persistent.storage_class not in classes:
                yield (
                    where + ("persistent", "storage_class"),
                    f"storage class {persistent.storage_class!r} is neither defined nor provided by the cluster "
                    f"({_choices(classes)})",
                )
            shared = w.namespace and w.kind == "stateless" and (w.replicas > 1 or w.autoscaling is not None)
            if shared and persistent.access_mode not in ("ReadWriteMany", "ReadOnlyMany"):
                yield (
                    where + ("persistent",),
                    f"a stateless workload's replicas share one claim, which {persistent.access_mode} cannot serve "
                    "to pods on several nodes: make the workload stateful (a claim per replica) or use ReadWriteMany",
                )
            if w.vm is not None and (persistent.storage_class is not None or persistent.access_mode != "ReadWriteOnce"):
                yield where + ("persistent",), "on a VM a persistent volume is a compose volume: give only its size"
        if volume.host_path is not None and volume.host_path.optional and w.vm is not None:
            yield where + ("host_path", "optional"), "only in the cluster (compose refuses a missing bind source)"
        if volume.host_path is not None and w.namespace is not None:
            ns = namespaces.get(w.namespace)
            if ns is not None and ns.pod_security != "privileged":
                yield (
                    where + ("host_path",),
                    f"Pod Security {ns.pod_security!r} in {w.namespace} refuses hostPath volumes: run the workload "
                    "in a namespace with pod_security privileged (and its reason)",
                )


def _vm_route(topo: Topology, w: Any, base: Path) -> Iterator[Finding]:
    """A VM workload's route is a location of the edge VM's nginx gateway."""
    gw, route = topo.edge.api_gateway, w.route
    if w.vm != topo.edge.vm or "vm" not in gw.runs_on:
        yield base + ("route",), f"on a VM only the edge VM's nginx gateway routes: run it on {topo.edge.vm}"
        return
    if route.host != gw.server_name:
        yield base + ("route", "host"), f"the edge VM's gateway serves {gw.server_name!r}, not {route.host!r}"
    port = w.port(route.port)
    if port is None:
        yield base + ("route", "port"), f"no port named {route.port!r} ({_choices(p.name for p in w.ports)})"
    elif port.protocol not in ("http", "grpc"):
        yield base + ("route", "port"), f"port {port.name!r} is {port.protocol}; a route needs http or grpc"
    taken = {"/v1/": "the backend API"}
    if "vm" in topo.edge.web_ui.runs_on:
        taken["/"] = "the web UI"
    for other in topo.workloads:
        if other is not w and other.vm == w.vm and other.route is not None:
            taken.setdefault(other.route.path_prefix, f"workload {other.name}")
    if route.path_prefix in taken:
        yield (
            base + ("route", "path_prefix"),
            f"{route.path_prefix!r} is {taken[route.path_prefix]}'s location on the gateway: choose another prefix",
        )


def _per_node(w: Any, base: Path) -> Iterator[Finding]:
    """A per-node workload: one pod on each of its nodes, so nothing that counts or moves pods."""
    if w.kind != "per-node":
        return
    if w.namespace is None:
        yield base + ("kind",), "per-node is a DaemonSet, in the cluster only"
        return
    why = "a per-node workload runs one pod on each of its nodes"
    if w.replicas != 1:
        yield base + ("replicas",), f"{why}: no replicas"
    for key in ("autoscaling", "availability"):
        if getattr(w, key) is not None:
            yield base + (key,), f"{why}: nothing to scale or spread"
    if w.release.strategy != "rolling":
        yield base + ("release",), f"{why}: only rolling"
    for j, volume in enumerate(w.volumes):
        if volume.persistent is not None:
            yield (
                base + ("volumes", j, "persistent"),
                f"{why}, and a claim cannot follow it to every node: use scratch or a host_path",
            )
    for j, port in enumerate(w.ports):
        if port.node_port_from is not None:
            yield base + ("ports", j, "node_port_from"), f"{why}, not on one node: drop node_port_from"


def _workload_placement(topo: Topology, w: Any, base: Path, namespaces: dict[str, Any]) -> Iterator[Finding]:
    types = _node_types(topo)
    yield from _per_node(w, base)
    if w.namespace is None:
        for key in ("autoscaling", "node_type", "availability"):
            if getattr(w, key) is not None:
                yield base + (key,), "only for a workload in the cluster"
        if w.release.strategy != "rolling":
            yield base + ("release",), "only rolling on a VM (compose replaces the container)"
        if w.route is not None:
            yield from _vm_route(topo, w, base)
        return
    yield from _node_placement(w, base, types, "workload")
    if w.release.strategy != "rolling" and w.kind != "per-node":
        if w.kind == "stateful":
            yield base + ("release",), "only rolling for a stateful workload"
        elif w.release.strategy == "canary" and not any(p.protocol in ("http", "grpc") for p in w.ports):
            yield (
                base + ("release",),
                "a canary splits the requests of http and grpc ports in the mesh: the workload has none",
            )
        elif w.release.strategy == "canary" and w.route is not None:
            yield (
                base + ("release",),
                "a canary's weight holds for the mesh's callers, while the gateway's route would send every "
                "request to the stable pods: release it blue-green, or drop the route",
            )
    if w.autoscaling is not None and w.kind != "per-node":
        if w.kind == "stateful":
            yield base + ("autoscaling",), "only for a stateless workload"
        elif w.autoscaling.min_replicas > w.autoscaling.max_replicas:
            yield base + ("autoscaling", "min_replicas"), "must not exceed max_replicas"
    ns = namespaces.get(w.namespace)
    root = w.security.run_as is not None and w.security.run_as.uid == 0
    exempt = root or any(v.host_path for v in w.volumes)
    if ns is not None and ns.pod_security != "restricted" and not exempt:
        yield (
            base + ("namespace",),
            f"{w.namespace} is Pod Security {ns.pod_security!r} for what runs there; a workload that needs no "
            "exception (no hostPath, not root) belongs in a restricted namespace",
        )
    if w.security.run_as is not None and w.security.run_as.uid == 0 and ns is not None:
        if ns.pod_security == "restricted":
            yield (
                base + ("security", "run_as", "uid"),
                f"Pod Security restricted in {w.namespace} refuses root: run in a baseline namespace, or another uid",
            )
    if w.route is not None:  # its host: _gateway_hosts
        port = w.port(w.route.port)
        if port is None:
            yield base + ("route", "port"), f"no port named {w.route.port!r} ({_choices(p.name for p in w.ports)})"
        elif port.protocol not in ("http", "grpc"):
            yield base + ("route", "port"), f"port {port.name!r} is {port.protocol}; a route needs http or grpc"
