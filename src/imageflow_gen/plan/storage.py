"""MinIO in the cluster (seed 8.2): config, storage class, one PV per drive, StatefulSet, buckets."""

from __future__ import annotations

import json
import shlex
from typing import Any

from ..model import Topology
from ..model.checks import MinioClient, minio_clients
from ..model.storage import Minio
from ..shared import once_per_object
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
    task,
    tmp_volume,
    tunable,
)

_SOURCE = ("storage", "minio")
APP = "minio"  # the servers' `app` label and their Service's name
API_PORT = "api"  # the name of the S3 API's port, where the metrics are served too
MINIO_UID = NON_ROOT_UID
HEADLESS = "minio-hl"
VM_SERVICE = "minio-vm"
SECRET_DIR = "/run/secrets/minio"
CLIENT_DIR = "/etc/imageflow/minio"  # a workload's own MinIO keys
USERS_DIR = "/run/secrets/minio-users"  # the bucket job: every MinIO user's keys, one folder each
POLICIES_DIR = "/etc/imageflow/minio-policies"  # the bucket job: one policy document per user
POLICIES = "minio-policies"
CA_DIR = "/etc/imageflow/minio-ca"  # the CA of MinIO's certificate, for its clients
CA_FILE = f"{CA_DIR}/ca.crt"
CERTS_DIR = "/etc/minio/certs"  # MinIO's own: public.crt, private.key, CAs/


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
    if vm_clients(topo):
        result.append(_vm_service(minio))
    result.append(_statefulset(minio))
    result.append(disruption_budget("minio", minio.namespace, base, "storage"))
    clients = minio_clients(topo)
    result.append(
        spec(
            "ConfigMap",
            "configmap",
            ("storage", "minio", "buckets"),
            name=POLICIES,
            namespace=minio.namespace,
            labels=labels(BUCKET_JOB, "storage"),
            data={f"{c.name}.json": policy_document(c) for c in clients},
        )
    )
    result.append(_bucket_job(minio, clients))
    return result


# ---- MinIO users: one per workload, limited to its buckets ----------------------------------

# What each access mode lets a user do: on the bucket, and on its objects.
_BUCKET_ACTIONS = {
    "r": ["s3:GetBucketLocation", "s3:ListBucket"],
    "w": ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
    "rw": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
}
_OBJECT_ACTIONS = {
    "r": ["s3:GetObject"],
    "w": ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject"],
    "rw": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
}


def policy_document(client: MinioClient) -> str:
    """The IAM policy of a MinIO user: each of its buckets, with exactly its access mode."""
    statements = []
    for bucket, mode in client.buckets:
        statements += [
            {"Effect": "Allow", "Action": _BUCKET_ACTIONS[mode], "Resource": [f"arn:aws:s3:::{bucket}"]},
            {"Effect": "Allow", "Action": _OBJECT_ACTIONS[mode], "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2) + "\n"


def scheme(minio: Minio) -> str:
    return "https" if minio.tls else "http"


def cluster_endpoint(minio: Minio) -> str:
    """The S3 API's URL for cluster workloads."""
    return f"{scheme(minio)}://{service_dns('minio', minio.namespace)}:{minio.port}"


def vm_endpoint(minio: Minio) -> str:
    """The S3 API's URL for the VMs: MinIO's domain (resolved by `vm_host`) and the node port."""
    return f"{scheme(minio)}://{minio.domain}:{minio.vm_access.node_port}"


def tls_names(minio: Minio) -> list[str]:
    """The names MinIO's certificate must hold: what the cluster's clients, the servers among
    themselves (distributed) and the VMs use; `*.<domain>` too for virtual-host-style requests."""
    names = [service_dns(APP, minio.namespace), f"{APP}.{minio.namespace}.svc"]
    if minio.mode == "distributed":
        names.append(f"*.{service_dns(HEADLESS, minio.namespace)}")
    return names + [minio.domain, f"*.{minio.domain}"]


def vm_host(topo: Topology) -> str:
    """The node address the VMs' MinIO name resolves to: the first node holding MinIO's drives."""
    host = topo.storage.minio.volumes.hosts[0]
    return str(next(n.ip for n in topo.cluster.nodes if n.name == host))


def vm_clients(topo: Topology) -> list[MinioClient]:
    return [c for c in minio_clients(topo) if c.vm]


def vm_endpoints(topo: Topology) -> list[dict[str, str]]:
    """What each VM uses inside the cluster, how it finds it and what admits it (for the docs)."""
    minio = topo.storage.minio
    addresses = {vm.name: vm.address for vm in topo.vms}
    return [
        {
            "vm": c.vm or "",
            "address": str(addresses[c.vm]),
            "user": c.name,
            "url": vm_endpoint(minio),
            "node": minio.volumes.hosts[0],
            "node_address": vm_host(topo),
        }
        for c in vm_clients(topo)
        if c.vm in addresses
    ]


@once_per_object
def _clients_by_name(topo: Topology) -> dict[str, MinioClient]:
    by_name: dict[str, MinioClient] = {}
    for c in minio_clients(topo):
        by_name.setdefault(c.name, c)
    return by_name


def client_of(topo: Topology, workload: str) -> MinioClient:
    return _clients_by_name(topo)[workload]


def client_env(minio: Minio) -> list[dict[str, str]]:
    """A cluster workload's MinIO keys (and the CA it trusts), as files: the variables name the
    files, never a value."""
    env = [
        {"name": "MINIO_ACCESS_KEY_FILE", "value": f"{CLIENT_DIR}/access-key"},
        {"name": "MINIO_SECRET_KEY_FILE", "value": f"{CLIENT_DIR}/secret-key"},
    ]
    if minio.tls:
        env.append({"name": "MINIO_CA_FILE", "value": CA_FILE})
    return env


def client_volumes(minio: Minio, client: MinioClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts): the workload's own MinIO user's Secret, and the CA, read-only."""
    volumes = [{"name": "minio-user", "secret": {"secretName": client.secret, "defaultMode": 0o440}}]
    mounts = [{"name": "minio-user", "mountPath": CLIENT_DIR, "readOnly": True}]
    if minio.tls:
        volume, mount = ca_volume(minio)
        volumes.append(volume)
        mounts.append(mount)
    return volumes, mounts


def ca_volume(minio: Minio) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount): the CA of MinIO's certificate as CA_FILE."""
    assert minio.tls is not None
    ca = minio.tls.ca
    volume = {
        "name": "minio-ca",
        "secret": {"secretName": ca.name, "defaultMode": 0o444, "items": [{"key": ca.keys["ca"], "path": "ca.crt"}]},
    }
    return volume, {"name": "minio-ca", "mountPath": CA_DIR, "readOnly": True}


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


def drive_number(minio: Minio, server: int, drive: int) -> int:
    """The 1-based number of a server's drive: its PersistentVolume's and folder's."""
    return server * minio.drives_per_node + drive + 1


def drive_host(minio: Minio, server: int, drive: int) -> str:
    """The node holding a server's drive: drive NN goes to hosts[(NN - 1) % len(hosts)]."""
    hosts = minio.volumes.hosts
    return str(hosts[(drive_number(minio, server, drive) - 1) % len(hosts)])


def _volumes(minio: Minio) -> list[Spec]:
    """One PersistentVolume per drive, pre-bound to its claim and pinned to its host node."""
    result = []
    templates = claim_templates(minio)
    for server in range(minio.nodes):
        for drive, template in enumerate(templates):
            number = drive_number(minio, server, drive)
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
                    host=drive_host(minio, server, drive),
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
            selector={"app": APP},
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
            selector={"app": APP},
            ports=ports,
            headless=False,
        ),
    ]


def _vm_service(minio: Minio) -> Spec:
    """The S3 API on the nodes running MinIO, for the VMs (see MinioVmAccess)."""
    return spec(
        "Service",
        "service",
        ("storage", "minio", "vm_access"),
        name=VM_SERVICE,
        namespace=minio.namespace,
        labels=labels("minio", "storage"),
        selector={"app": APP},
        ports=[
            {
                "name": "api",
                "port": minio.port,
                "targetPort": "api",
                "protocol": "TCP",
                "nodePort": minio.vm_access.node_port,
            }
        ],
        headless=False,
        type="NodePort",
        external_traffic_policy="Local",
    )


def _server_args(minio: Minio) -> list[str]:
    templates = claim_templates(minio)
    paths = [f"/{t}" for t in templates]
    if minio.mode == "distributed":
        host = f"minio-{{0...{minio.nodes - 1}}}.{service_dns(HEADLESS, minio.namespace)}"
        drives = paths[0] if len(paths) == 1 else f"/data{{0...{len(paths) - 1}}}"
        targets = [f"{scheme(minio)}://{host}:{minio.port}{drives}"]
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
        CERTS_DIR if minio.tls else "/tmp/certs",
    ]


def _certs(minio: Minio) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """MinIO's certificate, key and trusted CA, where it reads them (its certs dir)."""
    if minio.tls is None:
        return [], []
    cert, ca = minio.tls.certificate, minio.tls.ca
    volume = {
        "name": "certs",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {
                    "secret": {
                        "name": cert.name,
                        "items": [
                            {"key": cert.keys["cert"], "path": "public.crt"},
                            {"key": cert.keys["key"], "path": "private.key"},
                        ],
                    }
                },
                {"secret": {"name": ca.name, "items": [{"key": ca.keys["ca"], "path": "CAs/ca.crt"}]}},
            ],
        },
    }
    return [volume], [{"name": "certs", "mountPath": CERTS_DIR, "readOnly": True}]


def _statefulset(minio: Minio) -> Spec:
    volume, mount = tmp_volume()
    cert_volumes, cert_mounts = _certs(minio)
    secret = minio.credentials
    container: dict[str, Any] = {
        "name": "minio",
        "image": tunable(_SOURCE + ("image",), minio.image, Minio, "image"),
        "args": _server_args(minio),
        "ports": [
            {"name": API_PORT, "containerPort": minio.port, "protocol": "TCP"},
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
        + [mount, credentials_mount(), *cert_mounts],
        "livenessProbe": http_probe("/minio/health/live", "api", delay=10, https=bool(minio.tls)),
        "readinessProbe": http_probe("/minio/health/ready", "api", delay=10, https=bool(minio.tls)),
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
        selector={"app": APP},
        pod_labels=labels("minio", "storage"),
        service_name=HEADLESS,
        replicas=minio.nodes,
        pod_management_policy="Parallel",
        pod={
            "securityContext": pod_security(MINIO_UID),
            "automountServiceAccountToken": False,
            "affinity": spread_over_nodes("minio"),
            "containers": [container],
            "volumes": [volume, credentials_volume(minio), *cert_volumes],
        },
        claims=claims,
    )


def credentials_volume(minio: Minio) -> dict[str, Any]:
    """The credentials Secret as read-only files, readable by the pod's group only."""
    return {"name": "credentials", "secret": {"secretName": minio.credentials.name, "defaultMode": 0o440}}


def credentials_mount() -> dict[str, Any]:
    return {"name": "credentials", "mountPath": SECRET_DIR, "readOnly": True}


def mc_settings(minio: Minio) -> tuple[list[dict[str, str]], tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(env, (volumes, mounts)) of a container running mc: its config under /tmp (the root file
    system is read-only) and, when MinIO serves TLS, the CA it trusts, exactly that one."""
    env = [{"name": "MC_CONFIG_DIR", "value": "/tmp/mc"}]
    if not minio.tls:
        return env, ([], [])
    ca, ca_mount = ca_volume(minio)
    env.append({"name": "SSL_CERT_FILE", "value": CA_FILE})  # mc (Go) trusts exactly this CA
    return env, ([ca], [ca_mount])


def _bucket_script(minio: Minio, clients: list[MinioClient]) -> str:
    user = shlex.quote(f"{SECRET_DIR}/{minio.credentials.keys['access-key']}")
    password = shlex.quote(f"{SECRET_DIR}/{minio.credentials.keys['secret-key']}")
    endpoint = cluster_endpoint(minio)
    lines = [
        "set -eu",
        f'until mc alias set imageflow {shlex.quote(endpoint)} "$(cat {user})" "$(cat {password})"; do',
        "  sleep 5",
        "done",
    ]
    for bucket in minio.buckets:
        name = shlex.quote(f"imageflow/{bucket.name}")
        lines += [f"mc mb --ignore-existing {name}", f"mc anonymous set {bucket.anonymous} {name}"]
    # Each workload's user: (re)created with the keys from its Secret (a changed secret key is
    # rotated), its policy replaced by the current document, and attached. This mc release
    # fails an attach that is already in effect, which is the state wanted.
    lines += [
        "attach() {",
        '  if ! out=$(mc admin policy attach imageflow "$1" --user "$2" 2>&1); then',
        '    case "$out" in *"already in effect"*) ;; *) echo "$out" >&2; return 1 ;; esac',
        "  fi",
        "}",
    ]
    for client in clients:
        keys = {key: shlex.quote(f"{USERS_DIR}/{client.name}/{key}") for key in ("access-key", "secret-key")}
        policy = shlex.quote(client.policy)
        lines += [
            f"mc admin policy create imageflow {policy} {shlex.quote(f'{POLICIES_DIR}/{client.name}.json')}",
            f'mc admin user add imageflow "$(cat {keys["access-key"]})" "$(cat {keys["secret-key"]})"',
            f'attach {policy} "$(cat {keys["access-key"]})"',
        ]
    return "\n".join(lines) + "\n"


BUCKET_JOB = "minio-buckets"


def _bucket_job(minio: Minio, clients: list[MinioClient]) -> Spec:
    volume, mount = tmp_volume()
    users = {
        "name": "users",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {
                    "secret": {
                        "name": c.secret,
                        "items": [{"key": key, "path": f"{c.name}/{key}"} for key in ("access-key", "secret-key")],
                    }
                }
                for c in clients
            ],
        },
    }
    policies = {"name": "policies", "configMap": {"name": POLICIES}}
    env, trust = mc_settings(minio)
    container = {
        "name": "mc",
        "image": tunable(_SOURCE + ("client_image",), minio.client_image, Minio, "client_image"),
        "command": ["/bin/sh", "-c", _bucket_script(minio, clients)],
        "env": env,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
        "volumeMounts": [
            mount,
            credentials_mount(),
            {"name": "users", "mountPath": USERS_DIR, "readOnly": True},
            {"name": "policies", "mountPath": POLICIES_DIR, "readOnly": True},
            *trust[1],
        ],
        "securityContext": container_security(),
    }
    return task(
        "Job",
        ("storage", "minio", "buckets"),
        BUCKET_JOB,
        minio.namespace,
        "storage",
        [container],
        [volume, credentials_volume(minio), users, policies, *trust[0]],
        backoff_limit=10,
    )
