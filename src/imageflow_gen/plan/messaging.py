"""Kafka lives on VM1, outside the cluster: a selector-less Service and an EndpointSlice give
cluster workloads a stable in-cluster name for the brokers' cluster-network listener."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import Topology
from ..model.checks import KafkaUser, kafka_clients, kafka_network
from ..model.messaging import CLIENT_SECRET_KEYS, SASL_PROTOCOLS, TLS_PROTOCOLS, client_keys
from .common import Spec, labels, service_dns, spec, workload_secret

K3S_NETWORK = "private"
VPN_NETWORK = "vpn"


def cluster_listener(topo: Topology) -> str | None:
    """The listener cluster workloads use: the first on the VM's private network."""
    listener = topo.messaging.kafka.listener_on(K3S_NETWORK)
    return listener.name if listener else None


def vpn_bootstrap_servers(topo: Topology) -> str:
    """The brokers as the edge VM reaches them: the Kafka VM's VPN address and each broker's
    port of the VPN listener; empty without either."""
    kafka = topo.messaging.kafka
    vm = next(v for v in topo.vms if v.name == kafka.vm)
    listener = kafka.listener_on(VPN_NETWORK)
    if listener is None or vm.vpn_address is None:
        return ""
    return ",".join(f"{vm.vpn_address}:{b.ports[listener.name]}" for b in kafka.brokers)


def vm_bootstrap_servers(topo: Topology, network: str) -> str:
    """The brokers as a VM reaches them over `network`: the Kafka VM's address there, each
    broker's port of that network's listener."""
    if network == VPN_NETWORK:
        return vpn_bootstrap_servers(topo)
    listener = cluster_listener(topo)
    if listener is None:
        return ""
    return ",".join(f"{kafka_vm_address(topo)}:{b.ports[listener]}" for b in topo.messaging.kafka.brokers)


def broker_ports(topo: Topology) -> list[tuple[str, int]]:
    """(broker name, port of the cluster listener) for every broker."""
    listener = cluster_listener(topo)
    if listener is None:
        return []
    return [(b.name, b.ports[listener]) for b in topo.messaging.kafka.brokers]


def kafka_vm_address(topo: Topology) -> str:
    return str(next(vm.address for vm in topo.vms if vm.name == topo.messaging.kafka.vm))


def bootstrap_servers(topo: Topology) -> str:
    kafka = topo.messaging.kafka
    host = service_dns(kafka.cluster_service, kafka.cluster_namespace)
    return ",".join(f"{host}:{port}" for _, port in broker_ports(topo))


def specs(topo: Topology) -> list[Spec]:
    kafka = topo.messaging.kafka
    ports = broker_ports(topo)
    if not ports:
        return []
    source = ("messaging", "kafka")
    service_labels = labels(kafka.cluster_service, "messaging")
    return [
        spec(
            "Service",
            "service",
            source,
            name=kafka.cluster_service,
            namespace=kafka.cluster_namespace,
            labels=service_labels,
            selector=None,
            headless=False,
            ports=[{"name": name, "port": port, "targetPort": port, "protocol": "TCP"} for name, port in ports],
        ),
        spec(
            "EndpointSlice",
            "endpointslice",
            source,
            name=f"{kafka.cluster_service}-vm",
            namespace=kafka.cluster_namespace,
            labels={
                **service_labels,
                "kubernetes.io/service-name": kafka.cluster_service,
                "endpointslice.kubernetes.io/managed-by": "imageflow-gen",
            },
            addresses=[kafka_vm_address(topo)],
            ports=[{"name": name, "port": port, "protocol": "TCP"} for name, port in ports],
        ),
    ]


# ---- security: what brokers and clients need for each listener's protocol ----------------

# Where the Secret of the cluster's Kafka clients is mounted.
CLUSTER_CLIENT_DIR = "/etc/imageflow/kafka"
CLUSTER_CLIENT_VOLUME = "kafka-client"
# Inside the broker containers (the apache/kafka image keeps its secrets in /etc/kafka/secrets).
SERVER_PEM = "/etc/kafka/secrets/kafka-server.pem"
CLIENT_CA_PEM = "/etc/kafka/secrets/kafka-client-ca.pem"
JAAS_FILE = "/etc/kafka/jaas/kafka_server_jaas.conf"


def client_env(topo: Topology, protocol: str, username: str, paths: dict[str, str]) -> dict[str, str]:
    """A client's settings for `protocol`: the contract the backend and the processing services
    read (docs/<profile>/README.md lists it). Secrets are files; `paths` names them by logical key."""
    env = {"KAFKA_SECURITY_PROTOCOL": protocol}
    if protocol in SASL_PROTOCOLS:
        env.update(
            {
                "KAFKA_SASL_MECHANISM": topo.messaging.kafka.sasl.mechanism,
                "KAFKA_SASL_USERNAME": username,
                "KAFKA_SASL_PASSWORD_FILE": paths["password"],
            }
        )
    if protocol in TLS_PROTOCOLS:
        env["KAFKA_SSL_CA_FILE"] = paths["ca"]
    if protocol == "SSL":
        env.update({"KAFKA_SSL_CERT_FILE": paths["certificate"], "KAFKA_SSL_KEY_FILE": paths["private-key"]})
    return env


def cluster_client_paths(topo: Topology) -> dict[str, str]:
    """Where a cluster workload finds its Kafka client files, by logical key (none for PLAINTEXT)."""
    keys = client_keys(topo.messaging.kafka.protocol_on(K3S_NETWORK))
    return {key: f"{CLUSTER_CLIENT_DIR}/{CLIENT_SECRET_KEYS[key]}" for key in keys}


def cluster_client(
    topo: Topology, user: KafkaUser
) -> tuple[list[dict[str, str]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, volumes, mounts) a cluster workload adds to reach the brokers: the protocol, and for
    an authenticated listener its own Secret `kafka-<name>`, mounted read-only as files."""
    protocol = topo.messaging.kafka.protocol_on(K3S_NETWORK)
    paths = cluster_client_paths(topo)
    group = _group(user)
    if not paths:  # PLAINTEXT
        return [{"name": "KAFKA_SECURITY_PROTOCOL", "value": protocol}, *group], [], []
    env = client_env(topo, protocol, user.name, paths)
    ref = user.ref(protocol)
    volume = {
        "name": CLUSTER_CLIENT_VOLUME,
        "secret": {
            "secretName": ref.name,
            "defaultMode": 0o440,
            "items": [{"key": key, "path": key} for key in sorted(ref.keys.values())],
        },
    }
    mount = {"name": CLUSTER_CLIENT_VOLUME, "mountPath": CLUSTER_CLIENT_DIR, "readOnly": True}
    return [{"name": name, "value": value} for name, value in env.items()] + group, [volume], [mount]


def _group(user: KafkaUser) -> list[dict[str, str]]:
    """A consumer's group id: its name (with ACLs it may also use groups named `<name>.<more>`)."""
    return [{"name": "KAFKA_GROUP_ID", "value": user.name}] if user.consume else []


def vm_client_paths(name: str, protocol: str) -> dict[str, str]:
    """Where a VM workload finds its Kafka files: compose secrets of its Secret `kafka-<name>`."""
    return {
        key: "/run/secrets/" + workload_secret(f"kafka-{name}", CLIENT_SECRET_KEYS[key])[0]
        for key in client_keys(protocol)
    }


def authenticated(topo: Topology) -> list[KafkaUser]:
    """The clients whose listener knows who they are (SASL or SSL), once per place."""
    kafka = topo.messaging.kafka
    return [u for u in kafka_clients(topo) if kafka.protocol_on(kafka_network(topo, u)) != "PLAINTEXT"]


def scram_users(topo: Topology) -> list[str]:
    """The SCRAM users the topic job creates: the clients of each SASL listener, by name."""
    kafka = topo.messaging.kafka
    return sorted({u.name for u in authenticated(topo) if kafka.protocol_on(kafka_network(topo, u)) in SASL_PROTOCOLS})


@dataclass(frozen=True)
class Acl:
    """One ACL the topic job adds: `principal` may do `operations` on a resource."""

    principal: str
    resource: str  # topic | group
    name: str
    pattern: str  # literal | prefixed
    operations: tuple[str, ...]


def acls(topo: Topology) -> list[Acl]:
    """Least privilege for every authenticated client, from its uses: Write on the topics it
    produces, Read on those it consumes and on its consumer groups: its name, and the names that
    begin with its name and a dot (workload names have no dot, so no two overlap). Clients of a
    PLAINTEXT listener are ANONYMOUS, which the brokers' own listeners need as a super user."""
    produce: dict[str, dict[str, None]] = {}
    consume: dict[str, dict[str, None]] = {}
    for user in authenticated(topo):
        produce.setdefault(user.name, {}).update(dict.fromkeys(user.produce))
        consume.setdefault(user.name, {}).update(dict.fromkeys(user.consume))
    result = []
    for name in sorted(produce):
        result += [Acl(name, "topic", topic, "literal", ("Write",)) for topic in produce[name]]
        result += [Acl(name, "topic", topic, "literal", ("Read",)) for topic in consume[name]]
        if consume[name]:  # its group, and those it names `<name>.<more>` (no other name begins so)
            result += [
                Acl(name, "group", name, "literal", ("Read",)),
                Acl(name, "group", f"{name}.", "prefixed", ("Read",)),
            ]
    return result


def broker_env(topo: Topology) -> dict[str, str]:
    """The brokers' security settings for the listeners' protocols (none for PLAINTEXT only).

    Keys and certificates are PEM files, so no keystore password exists to be passed around;
    client authentication is required on SSL listeners only (SASL_SSL authenticates by SCRAM).
    """
    listeners = topo.messaging.kafka.listeners
    protocols = {lst.protocol for lst in listeners}
    env: dict[str, str] = {}
    if protocols & TLS_PROTOCOLS:
        env.update({"KAFKA_SSL_KEYSTORE_TYPE": "PEM", "KAFKA_SSL_KEYSTORE_LOCATION": SERVER_PEM})
    if "SSL" in protocols:
        env.update({"KAFKA_SSL_TRUSTSTORE_TYPE": "PEM", "KAFKA_SSL_TRUSTSTORE_LOCATION": CLIENT_CA_PEM})
        # The image turns KAFKA_LISTENER_NAME_VPN_SSL_CLIENT_AUTH into listener.name.vpn.ssl.client.auth.
        env.update(
            {
                f"KAFKA_LISTENER_NAME_{lst.name}_SSL_CLIENT_AUTH": "required"
                for lst in listeners
                if lst.protocol == "SSL"
            }
        )
    if protocols & SASL_PROTOCOLS:
        env.update(
            {
                "KAFKA_SASL_ENABLED_MECHANISMS": topo.messaging.kafka.sasl.mechanism,
                "KAFKA_OPTS": f"-Djava.security.auth.login.config={JAAS_FILE}",
            }
        )
    if protocols - {"PLAINTEXT"}:
        # ACLs bind the authenticated clients. The brokers and the controller talk over the
        # PLAINTEXT INTERNAL and CONTROLLER listeners (the stack's network only), as ANONYMOUS.
        env.update(
            {
                "KAFKA_AUTHORIZER_CLASS_NAME": AUTHORIZER,
                "KAFKA_SUPER_USERS": "User:ANONYMOUS",
                "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND": "false",
            }
        )
    if "SSL" in protocols:
        # A client certificate's principal is its CN: a workload's certificate names the workload.
        env["KAFKA_SSL_PRINCIPAL_MAPPING_RULES"] = "RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT"
    return env


AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def kafka_security(topo: Topology) -> dict[str, Any]:
    """Who connects to which listener with which settings, their ACLs, and which security the
    brokers serve: what the generated docs tell."""
    kafka = topo.messaging.kafka
    protocols = {lst.protocol for lst in kafka.listeners}
    clients = []
    users = authenticated(topo)
    for network in (VPN_NETWORK, K3S_NETWORK):
        listener = kafka.listener_on(network)
        if listener is None or listener.protocol == "PLAINTEXT":
            continue
        for on_vm in (True, False):
            names = sorted(
                {u.name for u in users if kafka_network(topo, u) == network and (u.namespace is None) == on_vm}
            )
            if not names:
                continue
            if on_vm:
                where = "on its VM, from compose secrets (the keys of its Secret `kafka-<name>`)"
                paths = vm_client_paths("<name>", listener.protocol)
            else:
                where, paths = "in the cluster, from its Secret `kafka-<name>`", cluster_client_paths(topo)
            clients.append(
                {
                    "users": names,
                    "where": where,
                    "listener": listener.name,
                    "protocol": listener.protocol,
                    "sasl": listener.protocol in SASL_PROTOCOLS,
                    "mechanism": kafka.sasl.mechanism,
                    "env": sorted(client_env(topo, listener.protocol, "<name>", paths).items()),
                }
            )
    return {
        "kafka_clients": clients,
        "kafka_acls": acls(topo),
        "kafka_tls": bool(protocols & TLS_PROTOCOLS),
        "kafka_mtls": "SSL" in protocols,
        "kafka_sasl": bool(protocols & SASL_PROTOCOLS),
        "kafka_sasl_plaintext": "SASL_PLAINTEXT" in protocols,
    }
