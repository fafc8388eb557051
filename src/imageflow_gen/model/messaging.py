"""Kafka and Kafka Connect on VM1 (seed 8.0.2)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .types import (
    BucketName,
    GroupId,
    Image,
    KafkaClusterId,
    ListenerName,
    Name,
    Port,
    Positive,
    ServiceName,
    Sorted,
    Strict,
    Text,
    TopicName,
)


TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


# The keys of a cluster workload's Kafka Secret (`kafka-<workload>`), by logical key: the
# names cert-manager writes for a certificate, and `password` for SCRAM.
CLIENT_SECRET_KEYS = {"password": "password", "ca": "ca.crt", "certificate": "tls.crt", "private-key": "tls.key"}


def client_keys(protocol: str) -> list[str]:
    """The files a client needs for `protocol`, by logical key: `password` (SASL), `ca` (the CA
    of the brokers' certificate, TLS), `certificate` and `private-key` (its own, SSL)."""
    keys = ["password"] if protocol in SASL_PROTOCOLS else []
    if protocol in TLS_PROTOCOLS:
        keys.append("ca")
    if protocol == "SSL":
        keys += ["certificate", "private-key"]
    return keys


class KafkaListener(Strict):
    """A client listener: who connects, and over which of the VM's addresses."""

    name: ListenerName
    """Listener name, e.g. VPN (for VM0) or K3S (for the cluster)."""
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Security protocol. SASL_SSL: TLS and a SCRAM user name and password (`sasl`); SSL: TLS
    with client certificates (mutual TLS); SASL_PLAINTEXT: SCRAM without encryption; PLAINTEXT:
    neither, so keep it on a network only the platform reaches (the generated docs warn)."""
    network: Literal["vpn", "private"]
    """Which address of the Kafka VM is advertised: vpn_address or address."""
    purpose: Text
    """Who uses it."""


class KafkaSasl(Strict):
    """SCRAM authentication on the SASL listeners. Each workload whose `uses` name topics (and
    the OTel agent when it ships logs) is its own SCRAM user, named as the workload, limited by
    ACLs to its topics. Passwords are files (compose) and Secret keys (cluster), never values."""

    mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    """SCRAM mechanism the brokers enable and the clients use."""


class KafkaBroker(Strict):
    """One broker (KRaft combined broker and controller)."""

    name: Name
    """Broker name (container and host name)."""
    node_id: Positive
    """KRaft node id."""
    ports: Annotated[dict[ListenerName, Port], Sorted]
    """Port per listener name, including CONTROLLER; brokers share one VM, so ports differ."""


class KafkaTopic(Strict):
    """A topic the platform uses."""

    name: TopicName
    """Topic name."""
    partitions: Positive
    """Partitions."""
    replication_factor: Positive
    """Replicas of each partition."""


class S3SinkConnector(Strict):
    """A Kafka Connect sink that writes topics to a MinIO bucket over the S3 API."""

    name: Name
    """Connector name."""
    topics: list[TopicName] = Field(min_length=1)
    """Topics to sink."""
    bucket: BucketName
    """Target bucket (must be a MinIO bucket)."""
    flush_size: Positive = 1000
    """Records per object written."""


class KafkaConnect(Strict):
    """Kafka Connect beside the brokers (seed: MinIO integration)."""

    image: Image
    """Kafka Connect image that bundles the S3 sink connector (io.confluent.connect.s3.S3SinkConnector), pinned."""
    init_image: Image = "curlimages/curl:8.8.0"
    """Image of the one-shot service that submits the connector configurations over the REST API."""
    rest_port: Port = 8083
    """REST API port."""
    rest_access: Literal["internal", "localhost", "private"] = "internal"
    """Who reaches the REST API (which can create connectors): `internal`, only the stack's own
    network (the connector set-up job); `localhost`, also the VM itself (published on
    127.0.0.1); `private`, also the VM's private network."""
    group_id: GroupId = "imageflow-connect"
    """Connect cluster group id."""
    connectors: list[S3SinkConnector] = Field(default_factory=list)
    """Connectors to configure."""


class Kafka(Strict):
    """Apache Kafka in KRaft mode on the messaging VM."""

    vm: Name
    """The VM it runs on (seed: vm1)."""
    cluster_service: ServiceName = "kafka"
    """Name of the selector-less Service that gives cluster workloads a stable name for the brokers."""
    cluster_namespace: Name
    """Namespace of that Service."""
    image: Image
    """Kafka image, pinned."""
    cluster_id: KafkaClusterId
    """KRaft cluster id (not a secret; identifies the cluster's storage)."""
    listeners: list[KafkaListener] = Field(min_length=1)
    """Client listeners."""
    brokers: list[KafkaBroker] = Field(min_length=1)
    """Brokers; the seed recommends 3."""
    default_replication_factor: Positive
    """Replication factor of new topics."""
    min_insync_replicas: Positive
    """Replicas that must acknowledge a write with acks=all."""
    num_partitions: Positive = 3
    """Partitions of new topics."""
    internal_port: Port = 39092
    """Port of the brokers' own listener on the compose network (between brokers, and for Connect)."""
    heap_mb: Positive = 1024
    """JVM heap per broker in MB."""
    topics: list[KafkaTopic] = Field(default_factory=list)
    """Topics to create."""
    connect: KafkaConnect | None = None
    """Kafka Connect."""
    sasl: KafkaSasl = Field(default_factory=KafkaSasl)
    """SCRAM settings of the SASL listeners."""

    def listener_on(self, network: str) -> KafkaListener | None:
        """The first listener on one of the Kafka VM's networks (vpn or private)."""
        return next((lst for lst in self.listeners if lst.network == network), None)

    def protocol_on(self, network: str) -> str:
        """The protocol of that listener; PLAINTEXT where there is none (no client to secure)."""
        listener = self.listener_on(network)
        return listener.protocol if listener else "PLAINTEXT"


class Messaging(Strict):
    """The messaging layer."""

    kafka: Kafka
    """Kafka."""
