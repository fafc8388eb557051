"""Typed workloads: the application's own containers, in a cluster namespace or on a VM.

One vocabulary for both sides: a workload names its image, ports, environment, files,
volumes, probes, resources and exposure; the plan turns it into Kubernetes objects in the
cluster or a compose service on the VM. Not a second Kubernetes API: only what a platform
engineer decides, with the hardening and the wiring derived.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, TypeVar

from pydantic import Field, model_validator

from .common import Autoscaling, Availability, Resources
from .release import Release, RollingRelease
from .types import (
    AbsolutePath,
    BucketName,
    Count,
    EnvName,
    Hostname,
    IPv4,
    Image,
    LabelValue,
    MeshDuration,
    Name,
    NodePort,
    Port,
    Positive,
    Quantity,
    SecretKey,
    ServiceName,
    Strict,
    SubdomainName,
    Text,
    TopicName,
    UrlPrefix,
    FileName,
    PortName,
)

# An argument of a command: one line, no NUL (a vector item, never a shell string).
Argument = Annotated[str, Field(max_length=4096, pattern=r"^[^\x00\n\r]*$")]
# File content: text without NUL, up to 256 KiB (a ConfigMap holds at most 1 MiB).
Content = Annotated[str, Field(max_length=262144, pattern=r"^[^\x00]*$")]
FileMode = Annotated[int, Field(ge=0, le=0o777)]
# Where an edge component runs: on the edge VM (compose) or in the cluster.
Placement = Literal["vm", "cluster"]


# What every workload's pod has besides its own volumes: scratch space mounted at /tmp (the
# root file system is read-only) and the volume of its files.
TMP_VOLUME, TMP_PATH, FILES_VOLUME = "tmp", "/tmp", "files"


_M = TypeVar("_M")


def _exactly_one(model: _M, keys: tuple[str, ...]) -> _M:
    """`model`, when exactly one of `keys` is set; else the error naming what was given."""
    given = [k for k in keys if getattr(model, k) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(keys)} (got {', '.join(given) or 'none'})")
    return model


class Published(Strict):
    """A port published on the VM's network interface (compose `ports:`)."""

    port: Port
    """Port on the VM."""
    address: IPv4 = "127.0.0.1"
    """Address it is bound to: 127.0.0.1 (the VM itself, the default), the VM's private
    address, or 0.0.0.0 (every interface; say so on purpose)."""


class Metrics(Strict):
    """Where a workload serves its Prometheus metrics."""

    port: Name
    """The name of one of its ports."""
    path: AbsolutePath = "/metrics"
    """HTTP path."""
    scheme: Literal["http", "https"] = "http"
    """http, or https (Prometheus then verifies the certificate against the cluster's CAs)."""
    exporter: Literal["node-exporter", "kube-state-metrics", "kafka-exporter", "dcgm-exporter"] | None = None
    """The well-known exporter it is, whose metric names (schemas/metrics/) the generated alerts
    and dashboards may then read; unset: its own metrics, scraped and checked for being up."""


class WorkloadPort(Strict):
    """A port the workload's container listens on."""

    name: PortName
    """Port name, unique in the workload; env endpoints and probes refer to it."""
    port: Port
    """Container port."""
    protocol: Literal["http", "grpc", "tcp", "udp"] = "tcp"
    """http, grpc, tcp or udp: the transport (UDP for udp) and the Service's appProtocol."""
    node_port: NodePort | None = None
    """In the cluster: expose it on every node at this fixed port (a NodePort Service)."""
    node_port_from: list[Name] | None = Field(default=None, min_length=1)
    """With node_port: admit only these VMs (by name) instead of any address that reaches the
    nodes. The Service then keeps the caller's address (externalTrafficPolicy: Local), so only
    the node running the pod answers: the workload must be placed on one node (a node_type
    that one node has), and the VMs' endpoints resolve to that node."""
    publish: Published | None = None
    """On a VM: publish it on the VM at this port and address."""

    @property
    def published_beyond_vm(self) -> bool:
        """Whether it is published where others reach it: not only on the VM's 127.0.0.1."""
        return self.publish is not None and self.publish.address != "127.0.0.1"


class SecretValue(Strict):
    """A key of a Secret declared in `secrets.workload_secrets`."""

    name: SubdomainName
    """Secret name."""
    key: SecretKey
    """Key inside the Secret."""


class Endpoint(Strict):
    """The address of another workload's port, resolved where this one runs: a cluster DNS name,
    the compose service name on the same VM, or the other VM's address and published port."""

    workload: ServiceName
    """The workload whose port it is."""
    port: PortName
    """Its port's name."""
    scheme: Literal["http", "https", "grpc", "tcp", "none"] = "none"
    """URL scheme to put in front (none: host:port only)."""
    path: UrlPrefix | None = None
    """Path appended to a URL (with a scheme)."""


class EnvVar(Strict):
    """An environment variable: exactly one of value, secret, file or endpoint."""

    name: EnvName
    """Variable name."""
    value: Text | None = None
    """A plain value (never a secret: secret-looking values are refused)."""
    secret: SecretValue | None = None
    """From a Secret: the cluster mounts it by secretKeyRef; on a VM it is a compose secret and
    the container gets `<name>_FILE`, the path of a file holding it (the official images'
    convention)."""
    file: FileName | None = None
    """The content of one of this workload's `files` (a configMapKeyRef in the cluster)."""
    endpoint: Endpoint | None = None
    """Another workload's address (and the network flow to it is allowed)."""
    where: Placement | None = None
    """Only for an edge component that runs in both places: set it only where the component runs
    `cluster` or `vm` (say, the address of a service only the cluster reaches). Unset: both."""

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        return _exactly_one(self, ("value", "secret", "file", "endpoint"))


class MinioUse(Strict):
    """Buckets of the platform's MinIO, and what the workload does with them."""

    buckets: list[BucketName] = Field(min_length=1)
    """Buckets (declared in storage.minio.buckets)."""
    access: Literal["r", "w", "rw"]
    """r (read), w (write) or rw; at most what each bucket's `access` grants the platform."""


class KafkaUse(Strict):
    """Topics of the platform's Kafka, and whether the workload produces to or consumes them."""

    produce: list[TopicName] = Field(default_factory=list)
    """Topics it writes (declared in messaging.kafka.topics)."""
    consume: list[TopicName] = Field(default_factory=list)
    """Topics it reads (declared in messaging.kafka.topics)."""

    @model_validator(mode="after")
    def _some_topic(self) -> KafkaUse:
        if not self.produce and not self.consume:
            raise ValueError("name the topics it produces to or consumes (produce, consume)")
        return self


class PostgresUse(Strict):
    """A database of the platform's PostgreSQL, as one of its roles."""

    database: Name
    """The database (storage.postgresql.databases)."""
    role: Name
    """The role it connects as: the database's owner or one of its grants."""


class Use(Strict):
    """What a workload talks to: exactly one of another workload's (or seed service's) named port
    (`workload` and `port`), MinIO buckets (`minio`), Kafka topics (`kafka`) or a PostgreSQL
    database (`postgresql`). The generator sets
    the variables that carry the address (and the credentials' files), mounts the credentials and
    opens the network path; nothing else does."""

    workload: ServiceName | None = None
    """The workload whose port it is."""
    port: PortName | None = None
    """Its port's name."""
    scheme: Literal["http", "https", "grpc", "tcp", "none"] = "none"
    """URL scheme to put in front (none: host:port only)."""
    path: UrlPrefix | None = None
    """Path appended to a URL (with a scheme)."""
    env: EnvName | None = None
    """For a workload's port: the variable that carries the address. Default:
    `<WORKLOAD>_<PORT>_ADDRESS` in upper case, `-` written `_` (postgresql's port sql:
    POSTGRESQL_SQL_ADDRESS)."""
    minio: MinioUse | None = None
    """Buckets of MinIO: the workload gets its own MinIO user, limited to them (MINIO_* variables)."""
    kafka: KafkaUse | None = None
    """Topics of Kafka (KAFKA_* variables)."""
    postgresql: PostgresUse | None = None
    """A database of PostgreSQL as a role (PG* variables: libpq's own, the password from the
    role's Secret)."""
    where: Placement | None = None
    """As for env: only for an edge component that runs in both places."""

    @model_validator(mode="after")
    def _one_target(self) -> Use:
        _exactly_one(self, ("workload", "minio", "kafka", "postgresql"))
        if (self.workload is None) != (self.port is None):
            raise ValueError("a workload's port needs both workload and port")
        if self.workload is None:
            given = [k for k in ("env", "path") if getattr(self, k) is not None]
            given += ["scheme"] if self.scheme != "none" else []
            if given:
                raise ValueError(f"{', '.join(given)}: only for a workload's port")
        return self

    @property
    def variable(self) -> str:
        return self.env or f"{self.workload}_{self.port}_ADDRESS".upper().replace("-", "_")

    @property
    def endpoint(self) -> Endpoint | None:
        """The workload port it names, as an env endpoint (None: a store)."""
        if self.workload is None or self.port is None:
            return None
        return Endpoint(workload=self.workload, port=self.port, scheme=self.scheme, path=self.path)


def env_entries(env: Sequence[EnvVar], uses: Sequence[Use]) -> list[tuple[tuple[str | int, ...], EnvVar]]:
    """(key, variable) of every variable a workload sets by name: its `env` (("env", j)) and the
    address of each of its uses of a workload's port (("uses", k)), in that order. A store's
    variables are the store's own (plan/clients.py)."""
    result: list[tuple[tuple[str | int, ...], EnvVar]] = [(("env", j), v) for j, v in enumerate(env)]
    for k, u in enumerate(uses):
        if u.endpoint is not None:
            result.append((("uses", k), EnvVar(name=u.variable, endpoint=u.endpoint, where=u.where)))
    return result


_Placed = TypeVar("_Placed", EnvVar, Use)


def env_in(items: list[_Placed], place: Placement) -> list[_Placed]:
    """The variables (or uses) set where a component runs `place`: those without `where`, and
    `place`'s."""
    return [v for v in items if v.where in (None, place)]


class ConfigFile(Strict):
    """A file written from the profile: a ConfigMap key mounted as a file in the cluster, a
    file beside the compose file mounted read-only on a VM."""

    name: FileName
    """File name (and ConfigMap key)."""
    path: AbsolutePath
    """Where the file appears in the container."""
    mode: FileMode = 0o444
    """File mode (octal 0o444 by default; at most 0o777)."""
    content: Content
    """The file's text (no secrets: the same patterns are refused as in env values)."""


class PersistentVolume(Strict):
    """A volume that outlives the pod: a claim per replica (stateful) or one shared claim."""

    size: Quantity
    """Requested size, e.g. 20Gi."""
    storage_class: Name | None = None
    """Storage class (default: the cluster's default class; K3s: local-path)."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany", "ReadWriteMany"] = "ReadWriteOnce"
    """Access mode of the claim."""


class Scratch(Strict):
    """An emptyDir: scratch space that goes with the pod."""

    size_limit: Quantity
    """The most it may hold; the kubelet evicts the pod beyond it."""
    memory: bool = False
    """Backed by memory (tmpfs) instead of the node's disk; counts against the memory limit."""


class HostPath(Strict):
    """A directory of the node (or VM). Only with a reason: it ties the pod to its node's files,
    needs Pod Security privileged in the cluster, and is listed in the generated docs."""

    path: AbsolutePath
    """Directory on the host."""
    reason: Text
    """Why the workload needs the host's files."""
    optional: bool = False
    """In the cluster: the directory may be missing on some nodes (no `type: Directory` check, so
    the pod starts there too), e.g. /var/lib/docker/containers on containerd nodes."""


class Volume(Strict):
    """A volume mounted into the container: exactly one of persistent, scratch, host_path."""

    name: Name
    """Volume name, unique in the workload."""
    path: AbsolutePath
    """Mount path in the container."""
    read_only: bool = False
    """Mount it read-only."""
    persistent: PersistentVolume | None = None
    """A persistent volume claim."""
    scratch: Scratch | None = None
    """An emptyDir."""
    host_path: HostPath | None = None
    """A host directory, with a reason."""

    @model_validator(mode="after")
    def _one_kind(self) -> Volume:
        return _exactly_one(self, ("persistent", "scratch", "host_path"))


class HttpCheck(Strict):
    """An HTTP GET that must answer 2xx or 3xx."""

    path: UrlPrefix = "/"
    """Request path."""
    port: PortName
    """Name of the port to ask."""


class PortCheck(Strict):
    """A check against one of the workload's ports."""

    port: PortName
    """Name of the port."""


class Probe(Strict):
    """A health check: exactly one of http, grpc, tcp, exec, and its timing."""

    http: HttpCheck | None = None
    """HTTP GET."""
    grpc: PortCheck | None = None
    """The gRPC health checking protocol."""
    tcp: PortCheck | None = None
    """A TCP connection."""
    exec: list[Argument] | None = Field(default=None, min_length=1)
    """A command as an argument vector (never a shell string), run in the container."""
    initial_delay: Count = 0
    """Seconds before the first check."""
    period: Positive = 10
    """Seconds between checks."""
    timeout: Positive = 3
    """Seconds a check may take."""
    failure_threshold: Positive = 3
    """Failures in a row that count as down."""

    @model_validator(mode="after")
    def _one_check(self) -> Probe:
        return _exactly_one(self, ("http", "grpc", "tcp", "exec"))


class Probes(Strict):
    """Health checks. Unset readiness and liveness default by the first port's protocol (grpc:
    the gRPC health protocol; http and tcp: a TCP connection; udp: none)."""

    readiness: Probe | None = None
    """Ready to take traffic (Service endpoints; compose `healthcheck`)."""
    liveness: Probe | None = None
    """Alive; the container is restarted when it fails."""
    startup: Probe | None = None
    """Started: the other probes wait for it (a slow first start, e.g. loading models)."""


class RunAsUser(Strict):
    """A fixed user id the image needs, with the reason."""

    uid: Count
    """User (and group) id; 0 (root) needs Pod Security baseline."""
    reason: Text
    """Why the image needs it."""


class Security(Strict):
    """Exceptions to the hardening every workload gets (non-root user 10001, read-only root
    file system, no capabilities, no privilege escalation): each with its reason, listed in the
    generated docs."""

    writable_root_filesystem: Text | None = None
    """The reason the container must write its root file system."""
    run_as: RunAsUser | None = None
    """A fixed user id, with the reason."""


class RouteExposure(Strict):
    """Reach the workload from outside. In the cluster through the Istio gateway (a
    VirtualService on `host`, one of network.gateway.hosts, and the policies that let the
    gateway in); on the edge VM through its nginx gateway (a location on its server_name, with
    the gateway's authentication and rate limit)."""

    host: Hostname
    """Public host name: one of network.gateway.hosts in the cluster."""
    path_prefix: UrlPrefix = "/"
    """Path prefix routed to the workload."""
    port: PortName
    """The workload's port the route sends to (http or grpc)."""
    timeout: MeshDuration = "30s"
    """Request timeout."""


class Workload(Strict):
    """A container the application runs: in a cluster namespace (`namespace`) or in a VM's
    compose stack (`vm`), exactly one."""

    name: ServiceName
    """Name: Deployment or StatefulSet and Service in the cluster, compose service on a VM."""
    description: Text = ""
    """What it is, for the generated docs."""
    namespace: Name | None = None
    """Run it in this cluster namespace."""
    vm: Name | None = None
    """Run it in this VM's compose stack."""
    image: Image
    """Container image, pinned."""
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] | None = None
    """When the image is pulled (compose: missing, always, never). Unset: the runtime's default,
    which for a pinned image is IfNotPresent (compose: missing)."""
    command: list[Argument] | None = None
    """Replaces the image's entrypoint (an argument vector)."""
    args: list[Argument] | None = None
    """Replaces the image's arguments (an argument vector)."""
    working_dir: AbsolutePath | None = None
    """Working directory."""
    kind: Literal["stateless", "stateful", "per-node"] = "stateless"
    """stateless: a Deployment; stateful: a StatefulSet with a headless Service, and a volume
    claim per replica for each persistent volume; per-node (in the cluster): a DaemonSet, one pod
    on every node it may run on (its node_type's, or every node, tolerating their taints), its
    Service answering each caller from the pod on the caller's own node (an agent, a node
    exporter)."""
    replicas: Count = 1
    """Replicas when not autoscaled."""
    autoscaling: Autoscaling | None = None
    """In the cluster: scale a stateless workload on CPU."""
    release: Release = Field(default_factory=RollingRelease)
    """In the cluster, a stateless workload: rolling (default), blue-green (`<name>-blue` and
    `<name>-green`, the Service on the active one) or canary (`<name>-canary` beside the stable
    Deployment; callers in the mesh get the canary's weight of each http and grpc port's
    requests), as for the processing services."""
    ports: list[WorkloadPort] = Field(default_factory=list)
    """Ports it listens on."""
    env: list[EnvVar] = Field(default_factory=list)
    """Environment variables."""
    uses: list[Use] = Field(default_factory=list)
    """What it talks to: other workloads' (or seed services') named ports. Each sets the variable
    carrying the address and opens the network path; `env` endpoints do the same, named by
    hand."""
    files: list[ConfigFile] = Field(default_factory=list)
    """Files written from the profile."""
    volumes: list[Volume] = Field(default_factory=list)
    """Volumes mounted into the container."""
    probes: Probes = Field(default_factory=Probes)
    """Health checks."""
    resources: Resources
    """Requests and limits."""
    gpu: Count = 0
    """NVIDIA GPUs (cluster: the nvidia RuntimeClass and the node's taints are derived)."""
    node_type: LabelValue | None = None
    """In the cluster: the nodes' `node-type` label to place it on."""
    security: Security = Field(default_factory=Security)
    """Exceptions to the hardening, each with a reason."""
    route: RouteExposure | None = None
    """Reach it from outside: the Istio gateway in the cluster, the edge VM's nginx on it."""
    availability: Availability | None = None
    """What it must survive in the cluster (as for processing services)."""
    metrics: Metrics | None = None
    """Its Prometheus metrics: `observability.prometheus` scrapes them (in the cluster each pod,
    on a VM the published port), and the policies admit exactly that scrape."""

    @model_validator(mode="after")
    def _one_place(self) -> Workload:
        if (self.namespace is None) == (self.vm is None):
            raise ValueError("give exactly one of namespace (the cluster) or vm (a VM's compose stack)")
        return self

    def port(self, name: str) -> WorkloadPort | None:
        return next((p for p in self.ports if p.name == name), None)
