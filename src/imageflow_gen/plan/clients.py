"""What a workload's uses of the stores give it in the cluster: the variables that say where MinIO
and Kafka are and how it authenticates (files, never values), and the Secrets mounted for them.

Derived from the workload's placed `uses` (model/checks.py `minio_clients`): a workload that
names no bucket gets no MinIO user, keys or variables; one that names no topic, no Kafka's.
"""

from __future__ import annotations

from typing import Any

from ..model import Topology
from ..model.checks import uses_store
from ..model.workloads import Workload
from .messaging import bootstrap_servers, cluster_client
from .storage import client_env, client_of, client_volumes, cluster_endpoint

Wiring = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def store_wiring(topo: Topology, workload: Workload) -> Wiring:
    """(env, volumes, mounts) of a cluster workload's MinIO and Kafka uses."""
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
    if uses_store(workload.uses, "kafka"):
        kafka_env, kafka_volumes, kafka_mounts = cluster_client(topo)
        env += [{"name": "KAFKA_BOOTSTRAP_SERVERS", "value": bootstrap_servers(topo)}, *kafka_env]
        volumes += kafka_volumes
        mounts += kafka_mounts
    return env, volumes, mounts
