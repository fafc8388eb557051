"""PostgreSQL in the cluster (seed 8.1.2: "MinIO, Database" in imageflow-storage): the server as a
stateful workload (rendered by plan/workloads.render), the bootstrap Job that creates its roles
and databases (idempotently), and the CronJob that dumps each database into a MinIO bucket.

Roles and databases come from the profile; each role's password is the Secret
`<name>-<role>` (key `password`), supplied by the secret provider in the store's namespace (for
the bootstrap job) and in each namespace whose workloads connect as that role. No password is
ever a value here: the bootstrap job reads each from its file into a psql variable, which psql
quotes as a literal.
"""

from __future__ import annotations

import shlex
from decimal import Decimal
from typing import Any

from ..model import Topology
from ..model.checks import BACKUP_ROLE, client_of_backup, postgres_port, role_secret
from ..model.quantity import parse
from ..model.storage import Postgresql
from ..model.workloads import Workload
from .common import (
    Spec,
    container_security,
    disruption_budget,
    labels,
    service_dns,
    spec,
    task,
    tmp_volume,
    tunable,
)
from .storage import cluster_endpoint, mc_settings, vm_endpoint
from .workloads import Rendering, Variant, render

SOURCE = ("storage", "postgresql")
COMPONENT = "storage"
POSTGRES_UID = 999  # the official image's postgres user, who owns the data directory
DATA_DIR = "/var/lib/postgresql/data"
CONFIG_DIR = "/etc/postgresql"
SUPERUSER_DIR = "/run/secrets/postgresql"
ROLES_DIR = "/run/secrets/postgresql-roles"
SQL_DIR = "/etc/imageflow/postgresql"
DUMP_DIR = "/dumps"
MINIO_USER_DIR = "/etc/imageflow/minio"


def bootstrap_job(pg: Postgresql) -> str:
    return f"{pg.name}-bootstrap"


def backup_job(pg: Postgresql) -> str:
    """The backup CronJob; on a VM, the upload service cron runs (it starts the dump first)."""
    return f"{pg.name}-backup"


def dump_service(pg: Postgresql) -> str:
    """On a VM, the backup's dump service (in the cluster the CronJob's init container)."""
    return f"{backup_job(pg)}-dump"


def specs(topo: Topology) -> list[Spec]:
    """The server, its bootstrap and backups in the cluster (on a VM: its compose stack's)."""
    pg = topo.storage.postgresql
    if pg is None or pg.namespace is None:
        return []
    workload, how = server_workload(topo)
    result = [
        spec(
            "ConfigMap",
            "configmap",
            SOURCE,
            name=f"{pg.name}-config",
            namespace=pg.namespace,
            labels=labels(pg.name, COMPONENT),
            data={"postgresql.conf": server_config(pg)},
        ),
        *render(topo, workload, SOURCE, how),
        # maxUnavailable 1, as every workload's: with one server a drain still stops it, which the
        # README lists among the single points of failure.
        disruption_budget(pg.name, pg.namespace, SOURCE, COMPONENT),
        spec(
            "ConfigMap",
            "configmap",
            SOURCE + ("databases",),
            name=bootstrap_job(pg),
            namespace=pg.namespace,
            labels=labels(bootstrap_job(pg), COMPONENT),
            data={"bootstrap.sql": bootstrap_sql(pg)},
        ),
        _bootstrap(pg),
    ]
    if pg.backup is not None:
        result.append(_backup(topo, pg))
    return result


def server_workload(topo: Topology) -> tuple[Workload, Rendering]:
    """The server as a stateful workload: its `sql` port (a node port admitting exactly the VMs
    that use it; on a VM published on its address), its data volume, pg_isready as readiness."""
    pg = topo.storage.postgresql
    assert pg is not None
    ready = ["pg_isready", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
    workload = Workload.model_validate(
        {
            "name": pg.name,
            **({"namespace": pg.namespace} if pg.namespace is not None else {"vm": pg.vm}),
            "image": pg.image,
            "kind": "stateful",
            "args": ["postgres", "-c", f"config_file={CONFIG_DIR}/postgresql.conf"],
            "ports": [postgres_port(topo)],
            "env": [{"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"}],
            "volumes": [
                {
                    "name": "data",
                    "path": DATA_DIR,
                    "persistent": {"size": pg.volume.size, "storage_class": pg.volume.storage_class},
                },
                {"name": "run", "path": "/var/run/postgresql", "scratch": {"size_limit": "16Mi", "memory": True}},
            ],
            "probes": {
                "startup": {"exec": ready, "period": 5, "failure_threshold": 60},
                "readiness": {"exec": ready, "period": 5},
                "liveness": {"tcp": {"port": "sql"}, "period": 10, "failure_threshold": 6},
            },
            "resources": pg.resources,
            "node_type": pg.node_type,
            "availability": {
                "survives": "nothing",
                "reason": "PostgreSQL runs one server, its data on its node's disk",
            },
            "security": {
                "run_as": {
                    "uid": POSTGRES_UID,
                    "reason": "the postgres image's data directory belongs to its postgres user (999)",
                }
            },
        }
    )
    rendering = Rendering(
        component=COMPONENT,
        key=SOURCE,
        variants=[Variant(pg.name, {}, tunable(SOURCE + ("image",), pg.image, Postgresql, "image"), 1, False)],
        selector={"app": pg.name},
        headless=True,
        env=[
            # The superuser's password, read by the image's entrypoint from the file on first start.
            {"name": "POSTGRES_PASSWORD_FILE", "value": f"{SUPERUSER_DIR}/password"},
        ],
        volumes=[
            _superuser_volume(pg),
            {"name": "config", "configMap": {"name": f"{pg.name}-config"}},
        ],
        mounts=[
            {"name": "superuser", "mountPath": SUPERUSER_DIR, "readOnly": True},
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        ],
        service_part=(),
    )
    return workload, rendering


def _superuser_volume(pg: Postgresql) -> dict[str, Any]:
    ref = pg.superuser
    return {
        "name": "superuser",
        "secret": {
            "secretName": ref.name,
            "defaultMode": 0o440,
            "items": [{"key": ref.keys["password"], "path": "password"}],
        },
    }


def server_config(pg: Postgresql) -> str:
    """postgresql.conf: listen everywhere (the NetworkPolicies decide who connects), passwords by
    SCRAM, the sizes from the profile."""
    buffers = max(Decimal(1), parse(pg.shared_buffers) // (1 << 20))
    return (
        "listen_addresses = '*'\n"
        f"port = {pg.port}\n"
        f"max_connections = {pg.max_connections}\n"
        f"shared_buffers = {buffers}MB\n"
        "password_encryption = scram-sha-256\n"
    )


# ---- bootstrap: roles and databases, idempotent -------------------------------------------

_RW = "SELECT, INSERT, UPDATE, DELETE"


def _ident(name: str) -> str:
    """A role or database name as a quoted identifier (the model allows lower-case letters, digits
    and '-', so nothing needs escaping inside the quotes)."""
    return f'"{name}"'


def bootstrap_sql(pg: Postgresql) -> str:
    """psql script that brings the server to the profile's roles and databases: creates what is
    missing, (re)sets each role's password from its file, and grants exactly the declared access.
    Running it twice changes nothing."""
    lines = ["\\set ON_ERROR_STOP on"]
    roles = [*pg.roles, *([BACKUP_ROLE] if pg.backup else [])]
    for role in roles:
        lines += [
            f"\\set password `cat {ROLES_DIR}/{role}`",
            f"SELECT 'CREATE ROLE {_ident(role)} LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec",
            f"ALTER ROLE {_ident(role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';",
        ]
    lines.append("\\unset password")
    # The application's roles reach only the databases that grant them, not the maintenance one.
    lines.append("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;")
    if pg.backup:  # reads every table, writes nothing (PostgreSQL 14 and later)
        lines.append(f"GRANT pg_read_all_data TO {_ident(BACKUP_ROLE)};")
    for db in pg.databases:
        name, owner = _ident(db.name), _ident(db.owner)
        lines += [
            f"SELECT 'CREATE DATABASE {name} OWNER {owner}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{db.name}')\\gexec",
            f"ALTER DATABASE {name} OWNER TO {owner};",
            f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {name} TO {owner};",
            *(f"GRANT CONNECT ON DATABASE {name} TO {_ident(g.role)};" for g in db.grants),
            *([f"GRANT CONNECT ON DATABASE {name} TO {_ident(BACKUP_ROLE)};"] if pg.backup else []),
            f"\\connect {name}",
            f"ALTER SCHEMA public OWNER TO {owner};",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
        ]
        for grant in db.grants:
            role = _ident(grant.role)
            tables = "SELECT" if grant.access == "r" else _RW
            sequences = "SELECT" if grant.access == "r" else "USAGE, SELECT"
            lines += [
                f"GRANT USAGE ON SCHEMA public TO {role};",
                f"GRANT {tables} ON ALL TABLES IN SCHEMA public TO {role};",
                f"GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {role};",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT {tables} ON TABLES TO {role};",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {role};",
            ]
        if pg.backup:
            lines.append(f"GRANT USAGE ON SCHEMA public TO {_ident(BACKUP_ROLE)};")
        lines.append("\\connect postgres")
    return "\n".join(lines) + "\n"


def _roles_volume(pg: Postgresql, roles: list[str], name: str = "roles") -> dict[str, Any]:
    """The roles' password Secrets as files `<role>` in one folder."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"secret": {"name": role_secret(pg, role), "items": [{"key": "password", "path": role}]}}
                for role in roles
            ],
        },
    }


_WAIT = 'until pg_isready -q; do echo "waiting for $PGHOST:$PGPORT"; sleep 5; done'
_PASSWORD = 'export PGPASSWORD="$(cat "$PASSWORD_FILE")"'


def bootstrap_roles(pg: Postgresql) -> list[str]:
    """The roles whose passwords the bootstrap sets: the profile's, and the backup's."""
    return [*pg.roles, *([BACKUP_ROLE] if pg.backup else [])]


def bootstrap_script() -> str:
    """Wait for the server, then run the SQL file as the superuser (PG* and PASSWORD_FILE set)."""
    steps = ["set -eu", _PASSWORD, _WAIT, f"psql -X -q -d postgres -f {SQL_DIR}/bootstrap.sql", 'echo "bootstrapped"']
    return "\n".join(steps) + "\n"


def client_env(pg: Postgresql, user: str, password_file: str) -> dict[str, str]:
    """libpq's variables for a job of the store (its password from a file, read by the script):
    the server's Service in the cluster, its compose service on a VM."""
    host = service_dns(pg.name, pg.namespace) if pg.namespace is not None else pg.name
    return {"PGHOST": host, "PGPORT": str(pg.port), "PGUSER": user, "PASSWORD_FILE": password_file}


def _client_env(pg: Postgresql, user: str, password_file: str) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in client_env(pg, user, password_file).items()]


def _bootstrap(pg: Postgresql) -> Spec:
    assert pg.namespace is not None
    volume, mount = tmp_volume()
    roles = bootstrap_roles(pg)
    container = {
        "name": "psql",
        "image": tunable(SOURCE + ("image",), pg.image, Postgresql, "image"),
        "command": ["/bin/sh", "-c", bootstrap_script()],
        "env": _client_env(pg, "postgres", f"{SUPERUSER_DIR}/password"),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
        "volumeMounts": [
            mount,
            {"name": "superuser", "mountPath": SUPERUSER_DIR, "readOnly": True},
            {"name": "roles", "mountPath": ROLES_DIR, "readOnly": True},
            {"name": "sql", "mountPath": SQL_DIR, "readOnly": True},
        ],
        "securityContext": container_security(),
    }
    volumes = [
        volume,
        _superuser_volume(pg),
        _roles_volume(pg, roles),
        {"name": "sql", "configMap": {"name": bootstrap_job(pg)}},
    ]
    name = bootstrap_job(pg)
    return task("Job", SOURCE + ("databases",), name, pg.namespace, COMPONENT, [container], volumes, backoff_limit=10)


# ---- backups: pg_dump of each database into MinIO, old dumps deleted -----------------------


def dump_script(pg: Postgresql, folder: str = DUMP_DIR) -> str:
    """Dump each database (custom format) into the shared folder, named by the UTC time."""
    # The folder starts empty (in the cluster a fresh emptyDir; on a VM a volume kept between runs).
    lines = ["set -eu", _PASSWORD, _WAIT, f"find {folder} -mindepth 1 -delete", 'stamp="$(date -u +%Y%m%dT%H%M%SZ)"']
    for db in pg.databases:
        target = shlex.quote(f"{folder}/{db.name}")
        lines += [f"mkdir -p {target}", f'pg_dump -Fc -d {shlex.quote(db.name)} -f {target}/"$stamp".dump']
    return "\n".join(lines) + "\n"


def upload_script(topo: Topology, pg: Postgresql) -> str:
    """Copy the dumps into the bucket and delete the bucket's dumps older than the retention
    (MinIO at its Service in the cluster, by its node port from a VM)."""
    assert pg.backup is not None
    bucket = pg.backup.bucket
    minio = topo.storage.minio
    endpoint = cluster_endpoint(minio) if pg.namespace is not None else vm_endpoint(minio)
    lines = [
        "set -eu",
        f'mc alias set imageflow {shlex.quote(endpoint)} "$(cat {MINIO_USER_DIR}/access-key)" '
        f'"$(cat {MINIO_USER_DIR}/secret-key)"',
        f"mc cp --recursive {DUMP_DIR}/ {shlex.quote(f'imageflow/{bucket}/')}",
    ]
    for db in pg.databases:
        lines.append(
            f"mc rm --recursive --force --older-than {pg.backup.retention_days}d "
            + shlex.quote(f"imageflow/{bucket}/{db.name}/")
        )
    return "\n".join(lines) + "\n"


def _backup(topo: Topology, pg: Postgresql) -> Spec:
    assert pg.backup is not None and pg.namespace is not None
    minio = topo.storage.minio
    client = client_of_backup(topo)
    volume, mount = tmp_volume()
    dumps = {"name": "dumps", "emptyDir": {"sizeLimit": pg.volume.size}}
    dumps_mount = {"name": "dumps", "mountPath": DUMP_DIR}
    resources = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
    dump = {
        "name": "pg-dump",
        "image": tunable(SOURCE + ("image",), pg.image, Postgresql, "image"),
        "command": ["/bin/sh", "-c", dump_script(pg)],
        "env": _client_env(pg, BACKUP_ROLE, f"{ROLES_DIR}/{BACKUP_ROLE}"),
        "resources": resources,
        "volumeMounts": [mount, dumps_mount, {"name": "role", "mountPath": ROLES_DIR, "readOnly": True}],
        "securityContext": container_security(),
    }
    env, trust = mc_settings(minio)
    upload = {
        "name": "upload",
        "image": tunable(("storage", "minio", "client_image"), minio.client_image, type(minio), "client_image"),
        "command": ["/bin/sh", "-c", upload_script(topo, pg)],
        "env": env,
        "resources": resources,
        "volumeMounts": [
            mount,
            {**dumps_mount, "readOnly": True},
            {"name": "minio-user", "mountPath": MINIO_USER_DIR, "readOnly": True},
            *trust[1],
        ],
        "securityContext": container_security(),
    }
    volumes = [
        volume,
        dumps,
        _roles_volume(pg, [BACKUP_ROLE], "role"),
        {"name": "minio-user", "secret": {"secretName": client.secret, "defaultMode": 0o440}},
        *trust[0],
    ]
    # The dump first (an init container), then the upload: a failed dump uploads nothing.
    return task(
        "CronJob",
        SOURCE + ("backup",),
        backup_job(pg),
        pg.namespace,
        COMPONENT,
        [upload],
        volumes,
        [dump],
        schedule=pg.backup.schedule,
        backoff_limit=3,
    )
