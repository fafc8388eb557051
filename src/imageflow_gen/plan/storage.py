"""MinIO in the cluster (seed 8.2): config, storage class, one PV per drive, StatefulSet, buckets."""

from __future__ import annotations

import shlex
from typing import Any

from ..model import Topology
from ..model.storage import Minio
from .common import (
    NON_ROOT_UID,
    Spec,
    common_labels,
    container_security,
    disruption_budget,
    http_probe,
    labels,
    pod_security,
    resources,
    service_dns,
    spec,
    spread_over_nodes,
    tmp_volume,
    tunable,
)

_SOURCE = ("storage", "minio")
MINIO_UID = NON_ROOT_UID
HEADLESS = "minio-hl"
SECRET_DIR = "/run/secrets/minio"


def pv_name(number: int) -> str:
    """minio-data-01, minio-data-02, ... as the seed names the first."""
    return f"minio-data-{number:02d}"


def claim_templates(minio: Minio) -> list[str]:
    """One volume claim template per drive of a server: data (one drive) or data0, data1, ..."""
    return ["data"] if minio.drives_per_node == 1 else [f"data{d}" for d in range(minio.drives_per_node)]


def specs(topo: Topology) -> list[Spec]:
    minio = topo.storage.minio
    base = ("storage", "minio")
    result = [
        spec(
            "StorageClass",
            "storageclass",
            ("storage", "storage_classes", i),
            name=sc.name,
            provisioner=sc.provisioner,
            volume_binding_mode=sc.volume_binding_mode,
            reclaim_policy=sc.reclaim_policy,
            parameters=sc.parameters,
            labels=common_labels(),
        )
        for i, sc in enumerate(topo.storage.storage_classes)
    ]
    result.append(
        spec(
            "ConfigMap",
            "configmap",
            base,
            name="minio-config",
            namespace=minio.namespace,
            labels=labels("minio", "storage"),
            data=_config(minio),
        )
    )
    result.extend(_volumes(minio))
    result.extend(_services(minio))
    result.append(_statefulset(minio))
    result.append(disruption_budget("minio", minio.namespace, base, "storage"))
    result.append(_bucket_job(minio))
    return result


def _config(minio: Minio) -> dict[str, str]:
    """The seed's minio-config values: distributed mode, region, browser, domain, buckets."""
    return {
        "MINIO_DISTRIBUTED_MODE": "true" if minio.mode == "distributed" else "false",
        "MINIO_DISTRIBUTED_NODES": str(minio.nodes),
        "MINIO_REGION": minio.region,
        "MINIO_BROWSER": "on" if minio.browser else "off",
        "MINIO_DOMAIN": minio.domain,
        "MINIO_DEFAULT_BUCKETS": "".join(f"{b.name}:{b.access}\n" for b in minio.buckets),
    }


def _volumes(minio: Minio) -> list[Spec]:
    """One PersistentVolume per drive, pre-bound to its claim and pinned to its host node."""
    result = []
    templates = claim_templates(minio)
    hosts = minio.volumes.hosts
    for server in range(minio.nodes):
        for drive, template in enumerate(templates):
            number = server * len(templates) + drive + 1
            result.append(
                spec(
                    "PersistentVolume",
                    "persistentvolume",
                    ("storage", "minio", "volumes"),
                    name=pv_name(number),
                    labels=labels("minio", "storage"),
                    size=minio.volumes.size,
                    access_modes=minio.volumes.access_modes,
                    reclaim_policy=minio.volumes.reclaim_policy,
                    storage_class=minio.storage_class,
                    path=f"{minio.volumes.path_prefix.rstrip('/')}/{number:02d}",
                    host=hosts[(number - 1) % len(hosts)],
                    claim={"namespace": minio.namespace, "name": f"{template}-minio-{server}"},
                )
            )
    return result


def _services(minio: Minio) -> list[Spec]:
    ports = [
        {"name": "api", "port": minio.port, "targetPort": "api", "protocol": "TCP"},
        {"name": "console", "port": minio.console_port, "targetPort": "console", "protocol": "TCP"},
    ]
    source = ("storage", "minio")
    return [
        spec(
            "Service",
            "service",
            source,
            name=HEADLESS,
            namespace=minio.namespace,
            labels=labels("minio", "storage"),
            selector={"app": "minio"},
            ports=ports,
            headless=True,
            publish_not_ready=True,
        ),
        spec(
            "Service",
            "service",
            source,
            name="minio",
            namespace=minio.namespace,
            labels=labels("minio", "storage"),
            selector={"app": "minio"},
            ports=ports,
            headless=False,
        ),
    ]


def _server_args(minio: Minio) -> list[str]:
    templates = claim_templates(minio)
    paths = [f"/{t}" for t in templates]
    if minio.mode == "distributed":
        host = f"minio-{{0...{minio.nodes - 1}}}.{service_dns(HEADLESS, minio.namespace)}"
        drives = paths[0] if len(paths) == 1 else f"/data{{0...{len(paths) - 1}}}"
        targets = [f"http://{host}:{minio.port}{drives}"]
    else:
        targets = paths
    return [
        "server",
        *targets,
        "--address",
        f":{minio.port}",
        "--console-address",
        f":{minio.console_port}",
        "--certs-dir",
        "/tmp/certs",
    ]


def _statefulset(minio: Minio) -> Spec:
    volume, mount = tmp_volume()
    secret = minio.credentials
    container: dict[str, Any] = {
        "name": "minio",
        "image": tunable(_SOURCE + ("image",), minio.image, Minio, "image"),
        "args": _server_args(minio),
        "ports": [
            {"name": "api", "containerPort": minio.port, "protocol": "TCP"},
            {"name": "console", "containerPort": minio.console_port, "protocol": "TCP"},
        ],
        # Credentials as files from the Secret (MinIO reads *_FILE), never as environment values.
        "env": [
            {"name": "MINIO_ROOT_USER_FILE", "value": f"{SECRET_DIR}/{secret.keys['access-key']}"},
            {"name": "MINIO_ROOT_PASSWORD_FILE", "value": f"{SECRET_DIR}/{secret.keys['secret-key']}"},
        ],
        "envFrom": [{"configMapRef": {"name": "minio-config"}}],
        "resources": resources(minio.resources, _SOURCE),
        "volumeMounts": [{"name": t, "mountPath": f"/{t}"} for t in claim_templates(minio)]
        + [mount, credentials_mount()],
        "livenessProbe": http_probe("/minio/health/live", "api", delay=10),
        "readinessProbe": http_probe("/minio/health/ready", "api", delay=10),
        "securityContext": container_security(),
    }
    claims = [
        {
            "metadata": {"name": t},
            "spec": {
                "accessModes": minio.volumes.access_modes,
                "storageClassName": minio.storage_class,
                "resources": {"requests": {"storage": minio.volumes.size}},
            },
        }
        for t in claim_templates(minio)
    ]
    return spec(
        "StatefulSet",
        "statefulset",
        ("storage", "minio"),
        name="minio",
        namespace=minio.namespace,
        labels=labels("minio", "storage"),
        selector={"app": "minio"},
        pod_labels=labels("minio", "storage"),
        service_name=HEADLESS,
        replicas=minio.nodes,
        pod_management_policy="Parallel",
        pod={
            "securityContext": pod_security(MINIO_UID),
            "automountServiceAccountToken": False,
            "affinity": spread_over_nodes("minio"),
            "containers": [container],
            "volumes": [volume, credentials_volume(minio)],
        },
        claims=claims,
    )


def credentials_volume(minio: Minio) -> dict[str, Any]:
    """The credentials Secret as read-only files, readable by the pod's group only."""
    return {"name": "credentials", "secret": {"secretName": minio.credentials.name, "defaultMode": 0o440}}


def credentials_mount() -> dict[str, Any]:
    return {"name": "credentials", "mountPath": SECRET_DIR, "readOnly": True}


def _bucket_script(minio: Minio) -> str:
    user = shlex.quote(f"{SECRET_DIR}/{minio.credentials.keys['access-key']}")
    password = shlex.quote(f"{SECRET_DIR}/{minio.credentials.keys['secret-key']}")
    endpoint = f"http://{service_dns('minio', minio.namespace)}:{minio.port}"
    lines = [
        "set -eu",
        f'until mc alias set imageflow {shlex.quote(endpoint)} "$(cat {user})" "$(cat {password})"; do',
        "  sleep 5",
        "done",
    ]
    for bucket in minio.buckets:
        name = shlex.quote(f"imageflow/{bucket.name}")
        lines += [f"mc mb --ignore-existing {name}", f"mc anonymous set {bucket.anonymous} {name}"]
    return "\n".join(lines) + "\n"


def _bucket_job(minio: Minio) -> Spec:
    volume, mount = tmp_volume()
    container = {
        "name": "mc",
        "image": tunable(_SOURCE + ("client_image",), minio.client_image, Minio, "client_image"),
        "command": ["/bin/sh", "-c", _bucket_script(minio)],
        "env": [{"name": "MC_CONFIG_DIR", "value": "/tmp/mc"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
        "volumeMounts": [mount, credentials_mount()],
        "securityContext": container_security(),
    }
    return spec(
        "Job",
        "job",
        ("storage", "minio", "buckets"),
        name="minio-buckets",
        namespace=minio.namespace,
        labels=labels("minio-buckets", "storage"),
        pod_labels=labels("minio-buckets", "storage"),
        backoff_limit=10,
        pod={
            "securityContext": pod_security(),
            "automountServiceAccountToken": False,
            "restartPolicy": "OnFailure",
            "containers": [container],
            "volumes": [volume, credentials_volume(minio)],
        },
    )
