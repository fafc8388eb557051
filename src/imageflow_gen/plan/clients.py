"""What a workload's uses of the stores give it in the cluster: the variables that say where MinIO
and Kafka are and how it authenticates (files, never values), and the Secrets mounted for them.

Derived from the workload's placed `uses` (model/checks.py `minio_clients`): a workload that
names no bucket gets no MinIO user, keys or variables; one that names no topic, no Kafka's.
And what each workload depends on, for the generated README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import Path
from ..model import Topology
from ..model.checks import CONNECT_USER, endpoint_key, kafka_users, placed_env, role_secret, slot_envs, uses_store
from ..model.messaging import KafkaConnect
from ..model.workloads import Workload
from .endpoints import postgres_address
from .messaging import bootstrap_servers, cluster_client
from .storage import client_env, client_of, client_volumes, cluster_endpoint

Wiring = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def store_wiring(topo: Topology, workload: Workload) -> Wiring:
    """(env, volumes, mounts) of a cluster workload's MinIO, PostgreSQL and Kafka uses: MINIO_*
    (its own user's key files), libpq's PG* (the role's password from its Secret), KAFKA_*."""
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if uses_store(workload.uses, "minio"):
        minio = topo.storage.minio
        env += [
            {"name": "MINIO_ENDPOINT", "value": cluster_endpoint(minio)},
            {"name": "MINIO_REGION", "value": minio.region},
            *client_env(minio),
        ]
        minio_volumes, minio_mounts = client_volumes(minio, client_of(topo, workload.name))
        volumes += minio_volumes
        mounts += minio_mounts
    pg_use = next((u.postgresql for u in workload.uses if u.postgresql is not None), None)
    pg = topo.storage.postgresql
    if pg_use is not None and pg is not None:
        password = {"name": role_secret(pg, pg_use.role), "key": "password"}
        host, port = postgres_address(topo, workload)  # its Service, or the VM that runs it
        env += [
            {"name": "PGHOST", "value": host},
            {"name": "PGPORT", "value": str(port)},
            {"name": "PGDATABASE", "value": pg_use.database},
            {"name": "PGUSER", "value": pg_use.role},
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": password}},
        ]
    if uses_store(workload.uses, "kafka"):
        user = next(u for u in kafka_users(topo) if u.name == workload.name and u.namespace is not None)
        kafka_env, kafka_volumes, kafka_mounts = cluster_client(topo, user)
        env += [{"name": "KAFKA_BOOTSTRAP_SERVERS", "value": bootstrap_servers(topo)}, *kafka_env]
        volumes += kafka_volumes
        mounts += kafka_mounts
    return env, volumes, mounts


@dataclass(frozen=True)
class Dependency:
    """One thing a workload talks to where it runs, and the variables that carry it."""

    target: str  # a workload's name, "MinIO" or "Kafka"
    detail: tuple[str, ...]  # the port; the buckets with access; the topics with direction
    variables: tuple[str, ...]  # the names set for it (a store's: its prefix with *)
    source: Path  # where the profile says so


@dataclass(frozen=True)
class Dependent:
    """A workload where it runs, and what it depends on there."""

    name: str
    namespace: str | None
    vm: str | None
    dependencies: tuple[Dependency, ...]


def dependents(topo: Topology) -> list[Dependent]:
    """Each workload (the edge components and processing services once per place, the typed
    workloads) with what its calls, env endpoints and uses name, in the profile's order."""
    owners: list[tuple[Any, Path]] = [(s, s.base) for s in slot_envs(topo)]
    owners += [(w, ("workloads", i)) for i, w in enumerate(topo.workloads)]
    result = []
    for owner, base in owners:
        place = "cluster" if owner.namespace is not None else "vm"
        found: list[Dependency] = []
        if base[0] == "processing":  # a processing service's calls: by name, no variable
            calls = topo.processing.services[int(base[2])].calls
            found += [Dependency(callee, ("grpc",), (), base + ("calls", m)) for m, callee in enumerate(calls)]
        for key, var in placed_env(owner):
            if var.endpoint is not None:
                endpoint = var.endpoint
                found.append(Dependency(endpoint.workload, (endpoint.port,), (var.name,), base + endpoint_key(key)))
        for k, use in enumerate(owner.uses):
            if use.where not in (None, place):
                continue
            if use.minio is not None:
                detail = tuple(f"{bucket} ({use.minio.access})" for bucket in use.minio.buckets)
                found.append(Dependency("MinIO", detail, ("MINIO_*",), base + ("uses", k, "minio")))
            if use.postgresql is not None:
                detail = (f"database {use.postgresql.database} as {use.postgresql.role}",)
                found.append(Dependency("PostgreSQL", detail, ("PG*",), base + ("uses", k, "postgresql")))
            if use.kafka is not None:
                detail = tuple(f"produces {t}" for t in use.kafka.produce) + tuple(
                    f"consumes {t}" for t in use.kafka.consume
                )
                found.append(Dependency("Kafka", detail, ("KAFKA_*",), base + ("uses", k, "kafka")))
        result.append(Dependent(owner.name, owner.namespace, owner.vm, tuple(found)))
    kafka = topo.messaging.kafka
    if kafka.connect is not None and kafka.connect.connectors:
        result.append(Dependent(CONNECT_USER, None, kafka.vm, tuple(_connector_uses(kafka.connect))))
    return result


def _connector_uses(connect: KafkaConnect) -> Iterator[Dependency]:
    """Kafka Connect's uses are its connectors: each reads its topics (over the brokers' own
    listener) and writes its bucket (as MinIO user kafka-connect), set in its configuration file."""
    for i, connector in enumerate(connect.connectors):
        path = ("messaging", "kafka", "connect", "connectors", i)
        where = (f"connectors/{connector.name}.json",)
        yield Dependency("Kafka", tuple(f"consumes {t}" for t in connector.topics), where, path + ("topics",))
        yield Dependency("MinIO", (f"{connector.bucket} (w)",), where, path + ("bucket",))


@dataclass(frozen=True)
class TopicUse:
    """A declared topic, and who writes and reads it (workloads by their uses, Kafka Connect's
    sinks, the OTel agent's logs)."""

    name: str
    partitions: int
    replication_factor: int
    producers: tuple[str, ...]
    consumers: tuple[str, ...]


def topic_uses(topo: Topology) -> list[TopicUse]:
    kafka = topo.messaging.kafka
    producers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for user in kafka_users(topo):
        for topic in user.produce:
            producers.setdefault(topic, []).append(user.name)
        for topic in user.consume:
            consumers.setdefault(topic, []).append(user.name)
    agent = topo.observability.otel_agent
    if agent.logs_topic is not None:
        producers.setdefault(agent.logs_topic, []).append(agent.name)
    for connector in kafka.connect.connectors if kafka.connect else []:
        for topic in connector.topics:
            consumers.setdefault(topic, []).append(f"kafka-connect ({connector.name})")
    return [
        TopicUse(
            t.name,
            t.partitions,
            t.replication_factor,
            tuple(dict.fromkeys(producers.get(t.name, []))),
            tuple(dict.fromkeys(consumers.get(t.name, []))),
        )
        for t in kafka.topics
    ]
