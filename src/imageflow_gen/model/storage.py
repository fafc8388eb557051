"""MinIO and persistent storage (seed 8.2)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import Resources, SecretRef
from .types import (
    AbsolutePath,
    BucketName,
    CronSchedule,
    LabelValue,
    ServiceName,
    Hostname,
    Image,
    Name,
    NodePort,
    Port,
    Positive,
    Provisioner,
    Region,
    Size,
    Sorted,
    Strict,
)


AccessMode = Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]


class StorageClass(Strict):
    """A StorageClass (seed 8.2.2)."""

    name: Name
    """StorageClass name."""
    provisioner: Provisioner
    """Provisioner; kubernetes.io/no-provisioner for local volumes."""
    volume_binding_mode: Literal["WaitForFirstConsumer", "Immediate"] = "WaitForFirstConsumer"
    """When a claim binds."""
    reclaim_policy: Literal["Retain", "Delete"] | None = None
    """What happens to dynamically provisioned volumes when released; unset: Kubernetes' default (Delete)."""
    parameters: Annotated[dict[str, str], Sorted] = Field(default_factory=dict)
    """Provisioner parameters; values are strings."""


class Bucket(Strict):
    """A bucket MinIO creates at start."""

    name: BucketName
    """Bucket name."""
    access: Literal["rw", "r", "w"]
    """What the platform's workloads do with it: rw (read and write), r (read), w (write). Not
    anonymous access: a bucket is private unless `anonymous` says otherwise."""
    anonymous: Literal["none", "download", "upload", "public"] = "none"
    """Access without credentials: none (private, the default), download, upload, or public
    (both). The bucket job sets it on every run, so a bucket made private stays private."""


class MinioVolumes(Strict):
    """The local PersistentVolumes behind MinIO's drives, one per drive."""

    size: Size
    """Capacity of each volume (seed: 1Ti)."""
    path_prefix: AbsolutePath
    """Host directory; drive NN is at <prefix>/NN (seed: /data/minio)."""
    reclaim_policy: Literal["Retain", "Delete", "Recycle"] = "Retain"
    """What happens to the data when the claim goes."""
    access_modes: list[AccessMode] = Field(default_factory=lambda: list[AccessMode](["ReadWriteOnce"]), min_length=1)
    """Access modes of the volumes."""
    hosts: list[Name] = Field(min_length=1)
    """Nodes that hold the drives; drive NN goes to hosts[(NN - 1) % len(hosts)]."""


class MinioVmAccess(Strict):
    """MinIO's S3 API for the VMs, exposed on the cluster's private network and nowhere else.

    A NodePort Service with `externalTrafficPolicy: Local`: only the nodes running a MinIO
    server (those holding its volumes) answer, and the connection keeps the VM's own address,
    so MinIO's NetworkPolicy admits exactly the VMs that use it. The VMs resolve `domain` to
    the first volume host's address (an `extra_hosts` entry in their compose stacks)."""

    node_port: NodePort = 30900
    """Node port of the Service `minio-vm` (30000-32767, K3s' default range)."""


class MinioTls(Strict):
    """MinIO serves its S3 API over TLS only, to the cluster and the VMs alike.

    The certificate must name every address clients use: the generated README lists them
    (the Services' names, each server's name behind the headless Service, `domain`)."""

    certificate: SecretRef
    """Secret with the server's certificate chain and its key (keys: cert, key), in MinIO's namespace."""
    ca: SecretRef
    """Secret with the certificate of the CA that signed it (key: ca): supplied in each namespace
    with a MinIO client, which trusts it (and MinIO's servers, which trust each other by it)."""


class Minio(Strict):
    """MinIO object storage as a StatefulSet in the cluster (seed 8.0.3, 8.2.1)."""

    namespace: Name
    """Namespace (seed: imageflow-storage)."""
    image: Image
    """MinIO server image, pinned."""
    client_image: Image
    """MinIO client (mc) image, pinned; the bucket-creating Job runs it."""
    mode: Literal["distributed", "standalone"]
    """distributed: erasure-coded over several servers; standalone: one server."""
    nodes: Positive
    """MinIO servers (StatefulSet replicas); seed: 4."""
    drives_per_node: Positive = 1
    """Drives per server."""
    region: Region
    """S3 region name."""
    browser: bool
    """Whether the web console is on."""
    domain: Hostname
    """Domain for virtual-host-style bucket requests."""
    port: Port = 9000
    """S3 API port."""
    tls: MinioTls | None = None
    """TLS for the S3 API; unset: plain HTTP (requests are signed, objects cross readable)."""
    vm_access: MinioVmAccess = Field(default_factory=lambda: MinioVmAccess())
    """How the VMs' MinIO users (the edge VM's backend, Kafka Connect) reach the S3 API."""
    console_port: Port = 9001
    """Web console port."""
    resources: Resources
    """Requests and limits per server."""
    storage_class: Name
    """StorageClass of the drives' volumes."""
    volumes: MinioVolumes
    """The PersistentVolumes behind the drives."""
    buckets: list[Bucket] = Field(default_factory=list)
    """Buckets created at start."""
    credentials: SecretRef
    """Secret with the root user and password (keys: access-key, secret-key)."""
    metrics_token: SecretRef | None = None
    """Secret with the bearer token Prometheus scrapes MinIO's metrics with (key: token), made
    with `mc admin prometheus generate`; supplied in Prometheus's namespace. Unset: MinIO is not
    scraped."""

    @property
    def drives(self) -> int:
        return self.nodes * self.drives_per_node


class PostgresGrant(Strict):
    """A role's access to a database besides its owner's."""

    role: Name
    """The role (its password: the Secret `postgresql-<role>`, key `password`)."""
    access: Literal["r", "rw"]
    """r: read the tables of schema public; rw: also insert, update and delete."""


class PostgresDatabase(Strict):
    """A database the bootstrap job creates, and who may use it."""

    name: Name
    """Database name."""
    owner: Name
    """The role that owns it (and its schema public): the application's migrations run as it."""
    grants: list[PostgresGrant] = Field(default_factory=list)
    """Further roles, each with its access."""


class PostgresBackup(Strict):
    """Logical backups: a CronJob dumps each database (pg_dump, custom format) into a MinIO bucket
    and deletes the dumps older than the retention."""

    schedule: CronSchedule = "0 3 * * *"
    """When (cron, the controller's time zone: UTC on K3s)."""
    bucket: BucketName
    """The bucket (storage.minio.buckets, access rw): the dumps go under `<database>/`."""
    retention_days: Positive = 7
    """Days a dump is kept."""


class PostgresVolume(Strict):
    """The server's data volume: a claim of the StatefulSet."""

    size: Size
    """Requested size."""
    storage_class: Name | None = None
    """Storage class (default: the cluster's default class; K3s: local-path)."""


class Postgresql(Strict):
    """PostgreSQL in the cluster (seed 8.1.2 puts the database in imageflow-storage), or on a VM's
    compose stack: one server, its databases and roles, bootstrapped idempotently, backed up to
    MinIO."""

    name: ServiceName = "postgresql"
    """Name of the StatefulSet and its Service (on a VM: of its compose service); uses (and env
    endpoints, port `sql`) name it."""
    namespace: Name | None = None
    """Namespace in the cluster (seed: imageflow-storage); or `vm`."""
    vm: Name | None = None
    """A VM to run it on instead (its compose stack, beside the edge or the Kafka services): the
    server publishes its port on the VM's address, the bootstrap is a one-shot service, the
    backups a service cron starts (a file for /etc/cron.d beside the stack)."""
    image: Image
    """The official postgres image, pinned; the bootstrap and backup jobs run its psql and pg_dump."""
    port: Port = 5432
    """SQL port (named `sql`)."""
    volume: PostgresVolume
    """The data volume."""
    node_type: LabelValue | None = None
    """The nodes' `node-type` label to place it on (prod: storage-optimized)."""
    resources: Resources
    """Requests and limits."""
    max_connections: Positive = 100
    """Server setting max_connections."""
    shared_buffers: Size = "128Mi"
    """Server setting shared_buffers (a quarter of the memory limit is the usual choice)."""
    superuser: SecretRef
    """Secret with the password of the superuser `postgres` (key: password), in its namespace; only
    the server and the bootstrap job read it."""
    databases: list[PostgresDatabase] = Field(min_length=1)
    """Databases and their roles."""
    vm_node_port: NodePort | None = None
    """Node port for the VMs' uses (the edge VM's backend): a NodePort Service that keeps the
    caller's address, admitting exactly the VMs whose uses name a database."""
    backup: PostgresBackup | None = None
    """Scheduled logical backups to MinIO."""

    @model_validator(mode="after")
    def _one_place(self) -> Postgresql:
        if (self.namespace is None) == (self.vm is None):
            raise ValueError("set exactly one of namespace (in the cluster) and vm (on a VM's compose stack)")
        return self

    @property
    def roles(self) -> list[str]:
        """Every role: owners first, then the grantees, each once."""
        names = [d.owner for d in self.databases] + [g.role for d in self.databases for g in d.grants]
        return list(dict.fromkeys(names))


class Storage(Strict):
    """Storage classes and MinIO."""

    storage_classes: list[StorageClass] = Field(default_factory=list)
    """StorageClasses to create."""
    cluster_classes: list[Name] = Field(default_factory=lambda: ["local-path"])
    """StorageClasses the cluster provides itself, which claims may name too (K3s ships
    local-path, from its local-path provisioner); listed as a prerequisite where used."""
    minio: Minio
    """MinIO."""
    postgresql: Postgresql | None = None
    """PostgreSQL."""
