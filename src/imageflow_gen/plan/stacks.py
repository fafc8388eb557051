"""What the VMs outside the cluster run under Docker Compose (seed 8.0.1 and 8.0.2), derived once.

VM0: the nginx API gateway (TLS, the WAF, authentication, abuse limits, load balancing,
WebSockets, security headers: plan/gateway.py), the FastAPI backend (a Kafka producer to VM1
over the VPN) and the web UI (static files with history fallback). VM1: Kafka in KRaft mode, one broker per topology
broker, topic creation (and SCRAM users), and Kafka Connect with an S3 sink to MinIO.
Secrets are files named by variables in `.env` (compose secrets); no value is ever written.
Each stack is data: the compose target only formats it, and the services' limits are the
envelopes of `plan/vms.py`, which the capacity check sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..model import Topology
from ..model.edge import EdgeComponent
from ..model.checks import (
    BACKUP_ROLE,
    CONNECT_USER,
    Caller,
    client_of_backup,
    kafka_network,
    kafka_users,
    role_secret,
    uses_store,
)
from ..model.messaging import Kafka
from ..model.quantity import parse
from ..model.storage import Minio
from ..model.workloads import SecretValue, Workload, env_entries, env_in
from .messaging import (
    CLIENT_CA_PEM,
    JAAS_FILE,
    SERVER_PEM,
    acls,
    broker_env,
    client_env,
    scram_users,
    vm_bootstrap_servers,
    vm_client_paths,
)
from . import gateway
from .common import workload_secret
from .exporters import vm_exporters
from .endpoints import endpoint_target, postgres_address
from .postgresql import (
    POSTGRES_UID,
    DATA_DIR,
    DUMP_DIR,
    MINIO_USER_DIR,
    ROLES_DIR,
    SQL_DIR,
    SUPERUSER_DIR,
    bootstrap_job,
    bootstrap_roles,
    bootstrap_script,
    backup_job,
    bootstrap_sql,
    client_env as postgres_env,
    dump_script,
    dump_service,
    server_config,
    server_workload,
    upload_script,
)
from .storage import CA_FILE, vm_endpoint, vm_host
from .vms import Envelope, edge_services, kafka_services, postgres_services, workload_services
from .slots import edge_fields
from .workloads import VmRoute, endpoint_value, vm_routes, vm_workloads

LOG_OPTIONS = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}
INTERNAL_LISTENER = "INTERNAL"


class Interpolated(str):
    """A compose value meant to be interpolated (`${VAR:?message}`); every other string is
    written literally (the compose target doubles its `$`)."""


@dataclass(frozen=True)
class ConfigFile:
    """A file beside a stack's compose file: a template with its context, JSON data, or text."""

    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    text: str | None = None


@dataclass(frozen=True)
class Stack:
    """One VM's compose project: its services and top-level sections, the `.env` variables it
    reads (name -> (example value, what it holds)), and the files beside it."""

    vm: str
    project: str
    services: dict[str, Any]
    networks: dict[str, Any] = field(default_factory=dict)
    volumes: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, tuple[str, str]] = field(default_factory=dict)
    files: dict[str, ConfigFile] = field(default_factory=dict)


def stacks(topo: Topology) -> list[Stack]:
    """The edge VM's stack and the Kafka VM's."""
    return [_vm0(topo), _vm1(topo)]


def _hardened(env: Envelope, *, read_only: bool = True, replicas: bool = False) -> dict[str, Any]:
    """What every service gets: restart, the plan's limits, no new privileges, no capabilities,
    log rotation; `replicas` writes the replica count too."""
    limits = {"limits": {"cpus": env.cpus, "memory": env.memory, "pids": env.pids}}
    service: dict[str, Any] = {
        "restart": "on-failure" if env.one_shot else "unless-stopped",
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "deploy": {"replicas": env.replicas, "resources": limits} if replicas else {"resources": limits},
        "logging": LOG_OPTIONS,
    }
    if read_only:
        service.update({"read_only": True, "tmpfs": ["/tmp"]})
    return service


# ---- VM0 --------------------------------------------------------------------------------


def _vm0(topo: Topology) -> Stack:
    edge = topo.edge
    gw, backend, web = edge.api_gateway, edge.backend_api, edge.web_ui
    services: dict[str, Any] = {}
    files: dict[str, ConfigFile] = {}
    env_vars = {
        "IMAGEFLOW_TLS_CERTIFICATE": (gw.tls.certificate_path, "TLS certificate chain (PEM) on this VM"),
        "IMAGEFLOW_TLS_KEY": (gw.tls.key_path, "TLS private key (PEM) on this VM"),
    }
    stack = edge_services(topo)  # the components that run on the VM, by name

    def _on_vm(component: EdgeComponent) -> bool:
        return component.name in stack

    wiring = backend_wiring(topo, backend) if _on_vm(backend) else VmWiring()

    if _on_vm(backend):
        services[backend.name] = _backend(topo, backend, stack[backend.name])
    if _on_vm(web):
        services[web.name] = _web(topo, web, stack[web.name])
        files["nginx/web-ui.conf"] = ConfigFile(template="compose/web-ui.conf.j2", context={"web": web})
    volumes: dict[str, Any] = {}
    if _on_vm(gw):
        init = gateway.audit_init(gw)
        services[init] = _audit_init(gw, stack[init])
        volumes[f"{gw.name}-audit"] = {}
        routes = vm_routes(topo)
        services[gw.name] = _gateway(
            topo, gw, stack[gw.name], backend if _on_vm(backend) else None, web if _on_vm(web) else None, routes
        )
        files["nginx/api-gateway.conf"] = ConfigFile(
            template="compose/api-gateway.conf.j2", context=gateway.template_context(topo)
        )
        files["nginx/modsecurity.conf"] = ConfigFile(text=gateway.modsecurity_config(topo))
    secrets: dict[str, Any] = {}
    for component in (backend, web, gw):
        if _on_vm(component):
            _add_env_secrets(env_in(component.env, "vm"), secrets, env_vars)
    _add_store_secrets(wiring, secrets, env_vars)
    result = Stack(
        vm=edge.vm,
        project=f"imageflow-{edge.vm}",
        services=services,
        networks={"edge": {}},
        volumes=volumes,
        secrets=secrets,
        variables=env_vars,
        files=files,
    )
    return _with_postgresql(topo, _with_workloads(topo, result, "edge"), "edge")


# MinIO's CA on a VM (when MinIO serves TLS): a file the .env names, a compose secret, and the
# variable the backend and Kafka Connect read (Connect's image adds it to its JVM's truststore).
MINIO_CA_SECRET = "minio_ca"
MINIO_CA_VARIABLE = "MINIO_CA_FILE"
MINIO_CA_ENV = ("./secrets/minio-ca.crt", "the certificate of the CA that signed MinIO's (PEM)")


def _minio_ca(minio: Minio) -> dict[str, str]:
    return {"MINIO_CA_FILE": f"/run/secrets/{MINIO_CA_SECRET}"} if minio.tls else {}


def minio_host(topo: Topology) -> str:
    """The compose `extra_hosts` entry that resolves MinIO's name to the node serving it to the VMs."""
    return f"{topo.storage.minio.domain}:{vm_host(topo)}"


def _secret_file(variable: str) -> dict[str, Any]:
    """A compose secret read from the file the .env variable names (which must be set)."""
    return {"file": Interpolated(f"${{{variable}:?set {variable} in .env}}")}


@dataclass(frozen=True)
class VmRendering:
    """What a seed slot on a VM adds to its workload's compose service, after the typed parts:
    the wiring it gets (environment, compose secrets, MinIO's host name), the edge's own mounts,
    ports and start order. `own_user`: the image's user, not the workloads' fixed one (the
    seed's images choose theirs)."""

    own_user: bool = False
    replicated: bool = True  # compose runs `replicas` of it (the gateway and web UI: one)
    environment: dict[str, str] = field(default_factory=dict)
    secrets: list[Any] = field(default_factory=list)  # names, or {source, target}
    depends_on: dict[str, Any] = field(default_factory=dict)
    extra_hosts: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    volumes: list[Any] = field(default_factory=list)


def _healthcheck(
    test: list[str], *, period: int = 15, timeout: int = 5, retries: int = 5, start: int = 0
) -> dict[str, Any]:
    """A readiness probe that compose runs: an argument vector and its timing."""
    return {
        "exec": test,
        "period": period,
        "timeout": timeout,
        "failure_threshold": retries,
        "initial_delay": start,
    }


def _edge_workload(topo: Topology, component: EdgeComponent, probe: dict[str, Any], **more: Any) -> Workload:
    """An edge component on the edge VM as a workload: its HTTP port, its health check."""
    return Workload.model_validate(
        {**edge_fields(component, "vm"), "vm": topo.edge.vm, "probes": {"readiness": probe}, **more}
    )


@dataclass(frozen=True)
class VmWiring:
    """What a workload's uses of the stores give it on a VM: its variables (a secret's as the
    path of its file) and the Secret keys mounted as those files (compose secrets the `.env`
    names), and MinIO's host name."""

    environment: dict[str, str] = field(default_factory=dict)
    secrets: list[SecretValue] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    minio_ca: bool = False  # reads MinIO's CA (a file of the VM's, shared by its workloads)


def _file(value: SecretValue) -> str:
    """Where a workload on a VM reads a Secret's key: compose mounts it in /run/secrets."""
    return f"/run/secrets/{workload_secret(value.name, value.key)[0]}"


def vm_store_wiring(topo: Topology, name: str, vm: str, uses: list[Any]) -> VmWiring:
    """A VM workload's MinIO, Kafka and PostgreSQL uses (those set where it runs): MINIO_* with
    its own MinIO user's keys (Secret `minio-<name>`), KAFKA_* as its own Kafka user (Secret
    `kafka-<name>`, over the VPN listener from the edge VM, the private one on Kafka's VM),
    libpq's PG* (the role's Secret), each secret a file. The same Secrets as in the cluster."""
    environment: dict[str, str] = {}
    secrets: list[SecretValue] = []
    minio, kafka, pg = topo.storage.minio, topo.messaging.kafka, topo.storage.postgresql
    uses_minio = uses_store(uses, "minio")
    if uses_minio:
        keys = {
            f"MINIO_{k.upper()}_KEY_FILE": SecretValue(name=f"minio-{name}", key=f"{k}-key")
            for k in ("access", "secret")
        }
        environment |= {"MINIO_ENDPOINT": vm_endpoint(minio), "MINIO_REGION": minio.region, **_minio_ca(minio)}
        environment |= {variable: _file(value) for variable, value in keys.items()}
        secrets += keys.values()
    user = next((u for u in kafka_users(topo) if u.vm == vm and u.name == name), None)
    if user is not None:
        network = kafka_network(topo, user)
        protocol = kafka.protocol_on(network)
        environment |= {
            "KAFKA_BOOTSTRAP_SERVERS": vm_bootstrap_servers(topo, network),
            **client_env(topo, protocol, name, vm_client_paths(name, protocol)),
            "KAFKA_ACKS": "all",
            "KAFKA_ENABLE_IDEMPOTENCE": "true",
            "KAFKA_COMPRESSION_TYPE": "lz4",
            **({"KAFKA_GROUP_ID": name} if user.consume else {}),  # its groups begin with its name
        }
        ref = user.ref(protocol)
        secrets += [SecretValue(name=ref.name, key=key) for key in ref.keys.values()]
    pg_use = next((u.postgresql for u in uses if u.postgresql is not None), None)
    if pg is not None and pg_use is not None:
        # Its compose name on the same VM, the address another VM publishes it on, or its node port.
        host, port = postgres_address(topo, Caller(name, None, vm, (), ()))
        password = SecretValue(name=role_secret(pg, pg_use.role), key="password")
        environment |= {
            "PGHOST": host,
            "PGPORT": str(port),
            "PGDATABASE": pg_use.database,
            "PGUSER": pg_use.role,
            "PGPASSWORD_FILE": _file(password),
        }
        secrets.append(password)
    return VmWiring(environment, secrets, [minio_host(topo)] if uses_minio else [], uses_minio and bool(minio.tls))


def _add_store_secrets(wiring: VmWiring, secrets: dict[str, Any], variables: dict[str, tuple[str, str]]) -> None:
    """The compose secrets (and the .env variables naming their files) a workload's stores need."""
    _add_secret_values(wiring.secrets, secrets, variables)
    if wiring.minio_ca:
        secrets[MINIO_CA_SECRET] = _secret_file(MINIO_CA_VARIABLE)
        variables[MINIO_CA_VARIABLE] = MINIO_CA_ENV


def _with_store_secrets(wiring: VmWiring) -> VmRendering:
    """A workload's store wiring as what its compose service adds."""
    secrets = [workload_secret(value.name, value.key)[0] for value in wiring.secrets]
    if wiring.minio_ca:
        secrets.append(MINIO_CA_SECRET)
    return VmRendering(environment=dict(wiring.environment), secrets=secrets, extra_hosts=wiring.extra_hosts)


def backend_wiring(topo: Topology, backend: EdgeComponent) -> VmWiring:
    """The stores the backend on the edge VM uses (its uses set there)."""
    return vm_store_wiring(topo, backend.name, topo.edge.vm, env_in(backend.uses, "vm"))


def _backend(topo: Topology, backend: EdgeComponent, env: Envelope) -> dict[str, Any]:
    # The URL is an argument, never part of the code.
    probe = _healthcheck(
        [
            "python",
            "-c",
            "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)",
            f"http://127.0.0.1:{backend.port}{backend.health_path}",
        ],
        start=20,
    )
    env_vars = [{"name": "PORT", "value": str(backend.port)}, *env_in(backend.env, "vm")]
    workload = _edge_workload(topo, backend, probe, env=env_vars)
    how = replace(_with_store_secrets(backend_wiring(topo, backend)), own_user=True)
    return _workload(topo, workload, env, "edge", how)


def _web(topo: Topology, web: EdgeComponent, env: Envelope) -> dict[str, Any]:
    probe = _healthcheck(["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{web.port}{web.health_path}"])
    how = VmRendering(own_user=True, replicated=False, volumes=["./nginx/web-ui.conf:/etc/nginx/nginx.conf:ro"])
    return _workload(topo, _edge_workload(topo, web, probe), env, "edge", how)


def _audit_init(gw: Any, env: Envelope) -> dict[str, Any]:
    """Root, with only the capability to change an owner, once: the named volume Docker makes
    root's becomes the gateway's user's, for ModSecurity's audit log."""
    return {
        "image": gw.image,
        **_hardened(env),
        "user": "0:0",
        "cap_add": ["CHOWN"],
        "entrypoint": ["chown", f"{gateway.GATEWAY_USER}:{gateway.GATEWAY_USER}", gateway.AUDIT_DIR],
        "volumes": [f"{gw.name}-audit:{gateway.AUDIT_DIR}"],
        "network_mode": "none",
        "healthcheck": {"disable": True},
    }


def _gateway(
    topo: Topology,
    gw: Any,
    env: Envelope,
    backend: EdgeComponent | None,
    web: EdgeComponent | None,
    routes: list[VmRoute],
) -> dict[str, Any]:
    depends = {c.name: {"condition": "service_healthy"} for c in (backend, web) if c is not None}
    depends[gateway.audit_init(gw)] = {"condition": "service_completed_successfully"}
    # nginx resolves its upstreams when it starts: the routed workloads must be up by then.
    depends.update({r.workload: {"condition": "service_started"} for r in routes})
    health = f"http://127.0.0.1:{gateway.HTTP_LISTEN}/healthz"
    probe = _healthcheck(["wget", "-q", "-O", "/dev/null", health], retries=3)
    # nginx itself, not the image's entrypoint, whose scripts write configuration from templates
    # (the files here are the whole configuration, and the root file system is read-only).
    workload = _edge_workload(topo, gw, probe, replicas=1, command=["nginx", "-g", "daemon off;"])
    how = VmRendering(
        own_user=True,
        replicated=False,
        ports=[f"{gw.https_port}:{gw.port}", f"{gw.http_port}:{gateway.HTTP_LISTEN}"],
        volumes=[
            "./nginx/api-gateway.conf:/etc/nginx/nginx.conf:ro",
            f"./nginx/modsecurity.conf:{gateway.MODSECURITY_FILE}:ro",
            f"{gw.name}-audit:{gateway.AUDIT_DIR}",
            Interpolated(
                "${IMAGEFLOW_TLS_CERTIFICATE:?set IMAGEFLOW_TLS_CERTIFICATE in .env}:/etc/nginx/tls/tls.crt:ro"
            ),
            Interpolated("${IMAGEFLOW_TLS_KEY:?set IMAGEFLOW_TLS_KEY in .env}:/etc/nginx/tls/tls.key:ro"),
        ],
        depends_on=depends,
    )
    return _workload(topo, workload, env, "edge", how)


# ---- VM1 --------------------------------------------------------------------------------


def _vm1(topo: Topology) -> Stack:
    kafka = topo.messaging.kafka
    vm = next(v for v in topo.vms if v.name == kafka.vm)
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    stack = kafka_services(topo)
    security = broker_env(topo)  # the same for every broker
    tls_files = _broker_files(vm, security)
    for broker in kafka.brokers:
        services[broker.name] = _broker(kafka, broker, vm, stack[broker.name], security, sorted(tls_files))
        volumes[f"{broker.name}-data"] = {}
    files: dict[str, ConfigFile] = {}
    env_vars: dict[str, tuple[str, str]] = {}
    secrets: dict[str, Any] = {}
    for name, (variable, default, description) in tls_files.items():
        env_vars[variable] = (default, description)
        secrets[name] = _secret_file(variable)
    for user in scram_users(topo):
        # The key `password` of the user's Secret kafka-<name>, as its workload reads it.
        value = _user_password(user)
        what = f"the password of Kafka's SCRAM user {user} (no ',', '=', '[' or ']')"
        _add_secret_values([value], secrets, env_vars, what)
    if "KAFKA_OPTS" in security:
        files["kafka/kafka_server_jaas.conf"] = ConfigFile(text=_JAAS)
    services["kafka-init"] = _topics(topo, kafka, stack["kafka-init"])
    if kafka.connect:
        services["kafka-connect"] = _connect(topo, kafka, stack["kafka-connect"])
        services["kafka-connect-init"] = _connect_init(kafka, stack["kafka-connect-init"])
        for connector in kafka.connect.connectors:
            files[f"connectors/{connector.name}.json"] = ConfigFile(json=_connector(topo, connector))
        env_vars["MINIO_S3_CREDENTIALS_FILE"] = (
            "./secrets/minio-s3.properties",
            f"properties file with aws.access.key.id and aws.secret.access.key for the S3 sink: the keys "
            f"of MinIO user {CONNECT_USER} (Secret minio-{CONNECT_USER})",
        )
        secrets["minio_s3_credentials"] = {
            "file": Interpolated("${MINIO_S3_CREDENTIALS_FILE:?set MINIO_S3_CREDENTIALS_FILE in .env}")
        }
        if topo.storage.minio.tls:
            env_vars[MINIO_CA_VARIABLE] = MINIO_CA_ENV
            secrets[MINIO_CA_SECRET] = _secret_file(MINIO_CA_VARIABLE)
    result = Stack(
        vm=vm.name,
        project=f"imageflow-{vm.name}",
        services=services,
        networks={"kafka": {}},
        volumes=volumes,
        secrets=secrets,
        variables=env_vars,
        files=files,
    )
    return _with_postgresql(topo, _with_workloads(topo, result, "kafka"), "kafka")


# The brokers' JAAS configuration for SCRAM: no secret in it (SCRAM credentials live in the
# cluster's metadata, created by the topic job).
_JAAS = "KafkaServer {\n  org.apache.kafka.common.security.scram.ScramLoginModule required;\n};\n"


def _user_password(user: str) -> SecretValue:
    """A SCRAM user's password: the key `password` of its workload's Secret kafka-<name>."""
    return SecretValue(name=f"kafka-{user}", key="password")


def _user_secret(user: str) -> str:
    """The compose secret of a SCRAM user's password in the topic job."""
    value = _user_password(user)
    return workload_secret(value.name, value.key)[0]


def _broker_files(vm: Any, env: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    """Compose secret -> (.env variable, default, what it holds) of the TLS files the brokers'
    security settings `env` name; `vm` is the Kafka VM, whose addresses the certificate names."""
    names = " and ".join(a for a in (vm.vpn_address, vm.address) if a)
    result = {}
    if "KAFKA_SSL_KEYSTORE_LOCATION" in env:
        result["kafka_server_pem"] = (
            "KAFKA_SERVER_PEM_FILE",
            "./secrets/kafka-server.pem",
            f"the brokers' private key (PKCS#8, unencrypted) and certificate chain, PEM, for {names} "
            "(IP subject alternative names); readable by uid 1000",
        )
    if "KAFKA_SSL_TRUSTSTORE_LOCATION" in env:
        result["kafka_client_ca"] = (
            "KAFKA_CLIENT_CA_FILE",
            "./secrets/kafka-client-ca.pem",
            "the CA certificate (PEM) that signs the SSL listeners' client certificates",
        )
    return result


def _internal(kafka: Kafka, broker_name: str) -> str:
    return f"{broker_name}:{kafka.internal_port}"


def _broker(
    kafka: Kafka, broker: Any, vm: Any, env: Envelope, security: dict[str, str], tls: list[str]
) -> dict[str, Any]:
    """One broker's service; `security` and `tls` (its compose secrets) are the same for all."""
    addresses = {"vpn": vm.vpn_address, "private": vm.address}
    voters = ",".join(f"{b.node_id}@{b.name}:{b.ports['CONTROLLER']}" for b in kafka.brokers)
    listeners = [
        f"{INTERNAL_LISTENER}://0.0.0.0:{kafka.internal_port}",
        f"CONTROLLER://0.0.0.0:{broker.ports['CONTROLLER']}",
    ]
    listeners += [f"{lst.name}://0.0.0.0:{broker.ports[lst.name]}" for lst in kafka.listeners]
    advertised = [f"{INTERNAL_LISTENER}://{_internal(kafka, broker.name)}"]
    advertised += [f"{lst.name}://{addresses[lst.network]}:{broker.ports[lst.name]}" for lst in kafka.listeners]
    protocols = [f"{INTERNAL_LISTENER}:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    protocols += [f"{lst.name}:{lst.protocol}" for lst in kafka.listeners]
    internal_rf = min(3, len(kafka.brokers))
    return {
        "image": kafka.image,
        "hostname": broker.name,
        **_hardened(env, read_only=False),
        "environment": {
            "CLUSTER_ID": kafka.cluster_id,
            "KAFKA_NODE_ID": str(broker.node_id),
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENERS": ",".join(listeners),
            "KAFKA_ADVERTISED_LISTENERS": ",".join(advertised),
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": ",".join(protocols),
            "KAFKA_INTER_BROKER_LISTENER_NAME": INTERNAL_LISTENER,
            "KAFKA_DEFAULT_REPLICATION_FACTOR": str(kafka.default_replication_factor),
            "KAFKA_MIN_INSYNC_REPLICAS": str(kafka.min_insync_replicas),
            "KAFKA_NUM_PARTITIONS": str(kafka.num_partitions),
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": str(internal_rf),
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": str(internal_rf),
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": str(min(kafka.min_insync_replicas, internal_rf)),
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
            "KAFKA_HEAP_OPTS": f"-Xms{kafka.heap_mb}m -Xmx{kafka.heap_mb}m",
            **security,
        },
        "ports": [
            f"{addresses[lst.network]}:{broker.ports[lst.name]}:{broker.ports[lst.name]}" for lst in kafka.listeners
        ],
        **({"secrets": [{"source": name, "target": _TARGETS[name]} for name in tls]} if tls else {}),
        "volumes": [
            f"{broker.name}-data:/var/lib/kafka/data",
            *([f"./kafka/kafka_server_jaas.conf:{JAAS_FILE}:ro"] if "KAFKA_OPTS" in security else []),
        ],
        "networks": ["kafka"],
        "healthcheck": {
            "test": [
                "CMD-SHELL",
                "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "
                f"{_internal(kafka, broker.name)} >/dev/null 2>&1",
            ],
            "interval": "30s",
            "timeout": "20s",
            "retries": 5,
            "start_period": "60s",
        },
    }


def _bootstrap(kafka: Kafka) -> str:
    return ",".join(_internal(kafka, b.name) for b in kafka.brokers)


_TARGETS = {"kafka_server_pem": SERVER_PEM, "kafka_client_ca": CLIENT_CA_PEM}


def _topics(topo: Topology, kafka: Kafka, env: Envelope) -> dict[str, Any]:
    """Topic creation and the SCRAM users, over the internal listener; each password is read
    from its secret file when the job runs."""
    commands = ["set -eu"]
    for topic in kafka.topics:
        commands.append(
            f"/opt/kafka/bin/kafka-topics.sh --bootstrap-server {_bootstrap(kafka)} --create "
            f"--if-not-exists --topic {topic.name} --partitions {topic.partitions} "
            f"--replication-factor {topic.replication_factor}"
        )
    users = scram_users(topo)
    for user in users:
        commands.append(
            f"/opt/kafka/bin/kafka-configs.sh --bootstrap-server {_bootstrap(kafka)} --alter "
            f"--entity-type users --entity-name {user} --add-config "
            f'"{kafka.sasl.mechanism}=[password=$(cat /run/secrets/{_user_secret(user)})]"'
        )
    for acl in acls(topo):  # adding an ACL that exists changes nothing
        operations = " ".join(f"--operation {op}" for op in acl.operations)
        commands.append(
            f"/opt/kafka/bin/kafka-acls.sh --bootstrap-server {_bootstrap(kafka)} --add "
            f"--allow-principal User:{acl.principal} {operations} --{acl.resource} {acl.name} "
            f"--resource-pattern-type {acl.pattern}"
        )
    service = {
        "image": kafka.image,
        **_hardened(env, read_only=False),
        "entrypoint": ["/bin/sh", "-c", "\n".join(commands) + "\n"],
        **({"secrets": [_user_secret(user) for user in users]} if users else {}),
        "depends_on": {b.name: {"condition": "service_healthy"} for b in kafka.brokers},
        "networks": ["kafka"],
        "healthcheck": {"disable": True},
    }
    return service


def _connect(topo: Topology, kafka: Kafka, env: Envelope) -> dict[str, Any]:
    connect = kafka.connect
    assert connect is not None
    internal_rf = str(min(3, len(kafka.brokers)))
    vm = next(v for v in topo.vms if v.name == kafka.vm)
    return {
        "image": connect.image,
        "hostname": "kafka-connect",
        **_hardened(env, read_only=False),
        "environment": {
            "CONNECT_BOOTSTRAP_SERVERS": _bootstrap(kafka),
            "CONNECT_REST_PORT": str(connect.rest_port),
            "CONNECT_REST_ADVERTISED_HOST_NAME": "kafka-connect",
            "CONNECT_GROUP_ID": connect.group_id,
            "CONNECT_CONFIG_STORAGE_TOPIC": f"{connect.group_id}-configs",
            "CONNECT_OFFSET_STORAGE_TOPIC": f"{connect.group_id}-offsets",
            "CONNECT_STATUS_STORAGE_TOPIC": f"{connect.group_id}-status",
            "CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR": internal_rf,
            "CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR": internal_rf,
            "CONNECT_STATUS_STORAGE_REPLICATION_FACTOR": internal_rf,
            "CONNECT_KEY_CONVERTER": "org.apache.kafka.connect.storage.StringConverter",
            "CONNECT_VALUE_CONVERTER": "org.apache.kafka.connect.json.JsonConverter",
            "CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE": "false",
            "CONNECT_PLUGIN_PATH": "/usr/share/java,/usr/share/confluent-hub-components",
            "CONNECT_CONFIG_PROVIDERS": "file",
            "CONNECT_CONFIG_PROVIDERS_FILE_CLASS": "org.apache.kafka.common.config.provider.FileConfigProvider",
            # Connector configs may read files under /run/secrets only (Kafka 3.8 and later enforce
            # it; older Connect ignores it, so the REST API stays internal unless the profile says).
            "CONNECT_CONFIG_PROVIDERS_FILE_PARAM_ALLOWED_PATHS": "/run/secrets",
            "KAFKA_HEAP_OPTS": "-Xms512m -Xmx1g",
            **_minio_ca(topo.storage.minio),
        },
        "secrets": ["minio_s3_credentials", *([MINIO_CA_SECRET] if topo.storage.minio.tls else [])],
        "extra_hosts": [minio_host(topo)],
        **(
            {"ports": [f"{_REST_ADDRESS[connect.rest_access] or vm.address}:{connect.rest_port}:{connect.rest_port}"]}
            if connect.rest_access != "internal"
            else {}
        ),
        "depends_on": {"kafka-init": {"condition": "service_completed_successfully"}},
        "networks": ["kafka"],
        "healthcheck": {
            "test": ["CMD-SHELL", f"curl -fsS http://127.0.0.1:{connect.rest_port}/ >/dev/null"],
            "interval": "30s",
            "timeout": "10s",
            "retries": 5,
            "start_period": "90s",
        },
    }


# Where the Connect REST API is published on the Kafka VM (None: the VM's private address).
_REST_ADDRESS = {"localhost": "127.0.0.1", "private": None}


def _connect_init(kafka: Kafka, env: Envelope) -> dict[str, Any]:
    connect = kafka.connect
    assert connect is not None
    url = f"http://kafka-connect:{connect.rest_port}/connectors"
    commands = ["set -eu"] + [
        f"curl -fsS -X PUT -H 'Content-Type: application/json' --data @/connectors/{c.name}.json {url}/{c.name}/config"
        for c in connect.connectors
    ]
    return {
        "image": connect.init_image,
        **_hardened(env),
        "entrypoint": ["/bin/sh", "-c", "\n".join(commands) + "\n"],
        "volumes": ["./connectors:/connectors:ro"],
        "depends_on": {"kafka-connect": {"condition": "service_healthy"}},
        "networks": ["kafka"],
        "healthcheck": {"disable": True},
    }


def _connector(topo: Topology, connector: Any) -> dict[str, str]:
    """The S3 sink's configuration; credentials come from the secret file through the file provider."""
    minio = topo.storage.minio
    credentials = "/run/secrets/minio_s3_credentials"
    config = {
        "connector.class": "io.confluent.connect.s3.S3SinkConnector",
        "tasks.max": "1",
        "topics": ",".join(connector.topics),
        "s3.bucket.name": connector.bucket,
        "s3.region": minio.region,
        "store.url": vm_endpoint(minio),
        "s3.path.style.access.enabled": "true",
        "storage.class": "io.confluent.connect.s3.storage.S3Storage",
        "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
        "flush.size": str(connector.flush_size),
        "aws.access.key.id": f"${{file:{credentials}:aws.access.key.id}}",
        "aws.secret.access.key": f"${{file:{credentials}:aws.secret.access.key}}",
    }
    return config


# ---- typed workloads on a VM -----------------------------------------------------------

_PULL = {"IfNotPresent": "missing", "Always": "always", "Never": "never"}


def _add_env_secrets(env: list[Any], secrets: dict[str, Any], variables: dict[str, tuple[str, str]]) -> None:
    """The compose secrets (and the .env variables naming their files) of the Secret keys `env` reads."""
    _add_secret_values([var.secret for var in env if var.secret is not None], secrets, variables)


def _add_secret_values(
    values: list[SecretValue], secrets: dict[str, Any], variables: dict[str, tuple[str, str]], what: str = ""
) -> None:
    """Each Secret key as a compose secret read from the file an .env variable names (`what`:
    what the key holds, for the .env's comment)."""
    for value in values:
        name, variable = workload_secret(value.name, value.key)
        secrets[name] = _secret_file(variable)
        variables[variable] = (
            f"./secrets/{value.name}-{value.key}",
            f"file holding key {value.key} of Secret {value.name}" + (f": {what}" if what else ""),
        )


def _with_workloads(topo: Topology, stack: Stack, network: str) -> Stack:
    """`stack` with the typed workloads of its VM added: services, volumes, secrets, files."""
    workloads = [*(w for _, w in vm_workloads(topo, stack.vm)), *vm_exporters(topo, stack.vm)]
    if not workloads:
        return stack
    envelopes = workload_services(topo, stack.vm)
    services, volumes = dict(stack.services), dict(stack.volumes)
    secrets, variables, files = dict(stack.secrets), dict(stack.variables), dict(stack.files)
    for w in workloads:
        wiring = vm_store_wiring(topo, w.name, stack.vm, w.uses)
        service = _workload(topo, w, envelopes[w.name], network, _with_store_secrets(wiring))
        _add_store_secrets(wiring, secrets, variables)
        for volume in w.volumes:
            if volume.persistent is not None:
                volumes[f"{w.name}-{volume.name}"] = {}
        for f in w.files:
            files[f"files/{w.name}/{f.name}"] = ConfigFile(text=f.content)
        _add_env_secrets(w.env, secrets, variables)
        services[w.name] = service
    return Stack(
        vm=stack.vm,
        project=stack.project,
        services=services,
        networks=stack.networks,
        volumes=volumes,
        secrets=secrets,
        variables=variables,
        files=files,
    )


def _workload(topo: Topology, w: Workload, env: Envelope, network: str, how: VmRendering) -> dict[str, Any]:
    """The compose service of a workload on a VM: the one formatter of typed workloads and of
    the edge components (`how`: what a slot adds)."""
    writable = w.security.writable_root_filesystem is not None
    uid = w.security.run_as.uid if w.security.run_as else 10001
    service: dict[str, Any] = {
        "image": w.image,
        **({"pull_policy": _PULL[w.image_pull_policy]} if w.image_pull_policy else {}),
        **_hardened(env, read_only=not writable, replicas=how.replicated),
    }
    if not how.own_user:
        service["user"] = f"{uid}:{uid}"
    if w.command is not None:
        service["entrypoint"] = list(w.command)
    if w.args is not None:
        service["command"] = list(w.args)
    if w.working_dir:
        service["working_dir"] = w.working_dir
    environment: dict[str, str] = {}
    secrets: list[str] = []
    depends: dict[str, Any] = {}
    contents = {f.name: f.content for f in w.files}
    for _, var in env_entries(w.env, w.uses):
        if var.value is not None:
            environment[var.name] = var.value
        elif var.file is not None:
            environment[var.name] = contents[var.file]
        elif var.secret is not None:
            name, _ = workload_secret(var.secret.name, var.secret.key)
            environment[f"{var.name}_FILE"] = f"/run/secrets/{name}"
            secrets.append(name)
        elif var.endpoint is not None:
            environment[var.name] = endpoint_value(topo, w, var.endpoint)
            found = endpoint_target(topo, var.endpoint)
            if found is not None and found[0].vm == w.vm:
                target = found[0]
                depends[target.name] = {"condition": "service_healthy" if target.healthcheck else "service_started"}
    environment.update(how.environment)
    if environment:
        service["environment"] = environment
    if secrets := [*sorted(set(secrets)), *how.secrets]:
        service["secrets"] = secrets
    if how.extra_hosts:
        service["extra_hosts"] = how.extra_hosts
    published = [
        f"{p.publish.address}:{p.publish.port}:{p.port}/{'udp' if p.protocol == 'udp' else 'tcp'}"
        for p in w.ports
        if p.publish is not None
    ]
    mounts: list[Any] = [*how.volumes]
    mounts += [
        {"type": "bind", "source": f"./files/{w.name}/{f.name}", "target": f.path, "read_only": True} for f in w.files
    ]
    for volume in w.volumes:
        mount: dict[str, Any]
        if volume.persistent is not None:
            mount = {"type": "volume", "source": f"{w.name}-{volume.name}", "target": volume.path}
        elif volume.host_path is not None:
            mount = {"type": "bind", "source": volume.host_path.path, "target": volume.path}
        elif volume.scratch is not None and volume.scratch.memory:
            size = int(parse(volume.scratch.size_limit))
            mount = {"type": "tmpfs", "target": volume.path, "tmpfs": {"size": size}}
        else:
            mount = {"type": "volume", "target": volume.path}  # anonymous: goes with the container
        if volume.read_only:
            mount["read_only"] = True
        mounts.append(mount)
    if ports := [*how.ports, *published]:
        service["ports"] = ports
    if mounts:
        service["volumes"] = mounts
    if depends := {**how.depends_on, **depends}:
        service["depends_on"] = depends
    if w.ports and not how.ports:  # a published port needs no expose
        # TCP unless marked, as compose reads it
        service["expose"] = [f"{p.port}/udp" if p.protocol == "udp" else str(p.port) for p in w.ports]
    if w.gpu:
        service["deploy"]["resources"]["reservations"] = {
            "devices": [{"driver": "nvidia", "count": w.gpu, "capabilities": ["gpu"]}]
        }
    service["networks"] = [network]
    readiness = w.probes.readiness
    if readiness is not None and readiness.exec is not None:
        service["healthcheck"] = {
            "test": ["CMD", *readiness.exec],
            "interval": f"{readiness.period}s",
            "timeout": f"{readiness.timeout}s",
            "retries": readiness.failure_threshold,
            **({"start_period": f"{readiness.initial_delay}s"} if readiness.initial_delay else {}),
        }
    return service


# ---- PostgreSQL on a VM -------------------------------------------------------------------


def _with_postgresql(topo: Topology, stack: Stack, network: str) -> Stack:
    """`stack` with the PostgreSQL store when the profile places it on this VM: the server (the
    cluster's workload, published on the VM's address), the bootstrap as a one-shot service, and
    the backup as two services of the compose profile `backup` that a cron file starts. The
    superuser's, the roles' and the backup's MinIO user's keys are compose secrets at the paths
    the cluster's pods read them from, so the scripts are the cluster's."""
    pg = topo.storage.postgresql
    if pg is None or pg.vm != stack.vm:
        return stack
    envelopes = postgres_services(topo, stack.vm)
    services, volumes = dict(stack.services), dict(stack.volumes)
    secrets, variables, files = dict(stack.secrets), dict(stack.variables), dict(stack.files)

    def secret(name: str, key: str, target: str) -> dict[str, str]:
        """A Secret's key as a compose secret mounted at `target` (the .env names its file)."""
        _add_secret_values([SecretValue(name=name, key=key)], secrets, variables)
        return {"source": workload_secret(name, key)[0], "target": target}

    superuser = secret(pg.superuser.name, pg.superuser.keys["password"], f"{SUPERUSER_DIR}/password")
    workload, _ = server_workload(topo)
    config = f"{pg.name}/postgresql.conf"
    files[config] = ConfigFile(text=server_config(pg))
    how = VmRendering(
        environment={"POSTGRES_PASSWORD_FILE": superuser["target"]},
        secrets=[superuser],
        volumes=[
            {"type": "bind", "source": f"./{config}", "target": "/etc/postgresql/postgresql.conf", "read_only": True}
        ],
    )
    services[pg.name] = _workload(topo, workload, envelopes[pg.name], network, how)
    volumes[f"{pg.name}-data"] = {}
    healthy = {pg.name: {"condition": "service_healthy"}}
    files[f"{pg.name}/bootstrap.sql"] = ConfigFile(text=bootstrap_sql(pg))
    roles = [secret(role_secret(pg, role), "password", f"{ROLES_DIR}/{role}") for role in bootstrap_roles(pg)]
    services[bootstrap_job(pg)] = {
        "image": pg.image,
        **_hardened(envelopes[bootstrap_job(pg)]),
        "user": f"{POSTGRES_UID}:{POSTGRES_UID}",
        "entrypoint": ["/bin/sh", "-c", bootstrap_script()],
        "environment": postgres_env(pg, "postgres", superuser["target"]),
        "secrets": [superuser, *roles],
        "volumes": [
            {
                "type": "bind",
                "source": f"./{pg.name}/bootstrap.sql",
                "target": f"{SQL_DIR}/bootstrap.sql",
                "read_only": True,
            }
        ],
        "depends_on": healthy,
        "networks": [network],
        "healthcheck": {"disable": True},
    }
    if pg.backup is not None:
        _add_backup(topo, pg, envelopes, services, volumes, files, secret, network)
    return replace(stack, services=services, volumes=volumes, secrets=secrets, variables=variables, files=files)


def _add_backup(
    topo: Topology,
    pg: Any,
    envelopes: dict[str, Envelope],
    services: dict[str, Any],
    volumes: dict[str, Any],
    files: dict[str, ConfigFile],
    secret: Any,
    network: str,
) -> None:
    """The dump (pg_dump as the backup role into a volume), then the upload (mc, as the backup's
    MinIO user, by MinIO's node port), both in the compose profile `backup`; and the cron file."""
    minio = topo.storage.minio
    dumps = f"{pg.name}-dumps"
    volumes[dumps] = {}
    dump, upload = dump_service(pg), backup_job(pg)  # cron runs the upload, which starts the dump
    role = secret(role_secret(pg, BACKUP_ROLE), "password", f"{ROLES_DIR}/{BACKUP_ROLE}")
    services[dump] = {
        "image": pg.image,
        **_hardened(envelopes[dump]),
        "user": f"{POSTGRES_UID}:{POSTGRES_UID}",
        "profiles": ["backup"],
        "entrypoint": ["/bin/sh", "-c", dump_script(pg, DATA_DIR)],
        "environment": postgres_env(pg, BACKUP_ROLE, role["target"]),
        "secrets": [role],
        # At the image's data folder (its postgres user's, mode 1777): a new volume takes its
        # owner and mode there, so the dump, which runs as that user, may write into it.
        "volumes": [{"type": "volume", "source": dumps, "target": DATA_DIR}],
        "depends_on": {pg.name: {"condition": "service_healthy"}},
        "networks": [network],
        "healthcheck": {"disable": True},
    }
    user = client_of_backup(topo).secret
    keys = [secret(user, key, f"{MINIO_USER_DIR}/{key}") for key in ("access-key", "secret-key")]
    environment = {"MC_CONFIG_DIR": "/tmp/mc"}
    if minio.tls:  # mc trusts exactly MinIO's CA
        keys.append({"source": MINIO_CA_SECRET, "target": CA_FILE})
        environment["SSL_CERT_FILE"] = CA_FILE
    services[upload] = {
        "image": minio.client_image,
        **_hardened(envelopes[upload]),
        "profiles": ["backup"],
        "entrypoint": ["/bin/sh", "-c", upload_script(topo, pg)],
        "environment": environment,
        "secrets": keys,
        "volumes": [{"type": "volume", "source": dumps, "target": DUMP_DIR, "read_only": True}],
        "extra_hosts": [minio_host(topo)],
        "depends_on": {dump: {"condition": "service_completed_successfully"}},
        "networks": [network],
        "healthcheck": {"disable": True},
    }
    assert pg.backup is not None
    files[f"cron/{upload}"] = ConfigFile(
        text=(
            f"# PostgreSQL's backups on {pg.vm} (storage.postgresql.backup), for /etc/cron.d: set IMAGEFLOW_STACK\n"
            "# to the folder of this compose stack. The schedule is in the VM's time zone.\n"
            f"IMAGEFLOW_STACK=/opt/imageflow/{pg.vm}\n"
            f'{pg.backup.schedule} root cd "$IMAGEFLOW_STACK" && docker compose --profile backup run --rm {upload}\n'
        )
    )
