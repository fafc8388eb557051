"""Kafka listeners with TLS and SCRAM: brokers, the edge VM's backend, the cluster's workloads,
the topic job and the docs carry matching settings; secrets are files, never values."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import CRDS, PROFILES, run_cli
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets.kubernetes import objects

SECURE = """purpose: TLS and SCRAM on Kafka
extends: prod
messaging:
  kafka:
    listeners:
      - name: VPN
        protocol: SASL_SSL
        network: vpn
        purpose: Backend API on VM0 over the VPN
      - name: K3S
        protocol: {private}
        network: private
        purpose: Cluster workloads
"""


def _profiles(tmp_path: Path, private: str = "SSL", name: str = "secure") -> Path:
    profiles = tmp_path / "profiles"
    if not profiles.exists():
        shutil.copytree(PROFILES, profiles)
    (profiles / f"{name}.yaml").write_text(SECURE.format(private=private))
    return profiles


def _objects(profiles: Path, profile: str, kind: str) -> list[dict]:
    """The profile's objects of `kind`, as the overlay builds them."""
    return [o for o in objects(validated(profiles, profile)[2]) if o["kind"] == kind]


@pytest.fixture(scope="module")
def secure_profiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _profiles(tmp_path_factory.mktemp("secure"))


@pytest.fixture(scope="module")
def secure(secure_profiles: Path) -> dict[str, str]:
    return build(secure_profiles, "secure", CRDS).files


def test_brokers_serve_tls_from_pem_files_and_scram_from_a_jaas_file(secure: dict[str, str]) -> None:
    compose = yaml.safe_load(secure["compose/secure/vm1/docker-compose.yaml"])
    broker = compose["services"]["kafka-1"]
    env = broker["environment"]
    assert env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] == (
        "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,VPN:SASL_SSL,K3S:SSL"
    )
    assert env["KAFKA_SSL_KEYSTORE_TYPE"] == "PEM" and env["KAFKA_SSL_TRUSTSTORE_TYPE"] == "PEM"
    assert env["KAFKA_LISTENER_NAME_K3S_SSL_CLIENT_AUTH"] == "required"
    assert "KAFKA_LISTENER_NAME_VPN_SSL_CLIENT_AUTH" not in env  # SASL_SSL authenticates by SCRAM
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    jaas = env["KAFKA_OPTS"].split("=", 1)[1]
    assert f"./kafka/kafka_server_jaas.conf:{jaas}:ro" in broker["volumes"]
    assert "ScramLoginModule required;" in secure["compose/secure/vm1/kafka/kafka_server_jaas.conf"]
    # No password anywhere in the brokers' settings: the key is an unencrypted PEM file.
    assert not [k for k in env if "PASSWORD" in k or "CREDENTIALS" in k]
    targets = {s["source"]: s["target"] for s in broker["secrets"]}
    assert targets == {
        "kafka_server_pem": env["KAFKA_SSL_KEYSTORE_LOCATION"],
        "kafka_client_ca": env["KAFKA_SSL_TRUSTSTORE_LOCATION"],
    }
    assert compose["secrets"]["kafka_server_pem"]["file"].startswith("${KAFKA_SERVER_PEM_FILE:?")
    example = secure["compose/secure/vm1/.env.example"]
    assert "KAFKA_SERVER_PEM_FILE=" in example and "KAFKA_CLIENT_CA_FILE=" in example
    # The internal listener (between brokers, and for Connect) is never published.
    assert all(":39092" not in port for port in broker["ports"])


def test_the_topic_job_creates_the_scram_user_from_its_secret_file(secure: dict[str, str]) -> None:
    compose = yaml.safe_load(secure["compose/secure/vm1/docker-compose.yaml"])
    init = compose["services"]["kafka-init"]
    script = init["entrypoint"][2]
    # The SASL listener's one client; the cluster's SSL listener knows its users by certificate.
    assert init["secrets"] == ["kafka-backend-api__password"]
    (line,) = [line for line in script.splitlines() if "kafka-configs.sh" in line]
    # `$$` is compose's escape: the container's shell reads the file when the job runs.
    assert (
        "--entity-name backend-api --add-config "
        '"SCRAM-SHA-512=[password=$$(cat /run/secrets/kafka-backend-api__password)]"'
    ) in line
    # The key `password` of the workload's Secret kafka-backend-api, as the backend reads it on vm0.
    assert "SECRET_KAFKA_BACKEND_API__PASSWORD_FILE=" in secure["compose/secure/vm1/.env.example"]


def test_the_edge_backend_gets_matching_client_settings(secure: dict[str, str]) -> None:
    compose = yaml.safe_load(secure["compose/secure/vm0/docker-compose.yaml"])
    backend = compose["services"]["backend-api"]
    env = backend["environment"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_USERNAME"] == "backend-api"
    # The keys of its Secret kafka-backend-api, as in the cluster, each a compose secret.
    assert env["KAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/kafka-backend-api__password"
    assert env["KAFKA_SSL_CA_FILE"] == "/run/secrets/kafka-backend-api__ca.crt"
    wanted = {"kafka-backend-api__password", "kafka-backend-api__ca.crt"}
    assert wanted <= set(backend["secrets"]) <= set(compose["secrets"])
    example = secure["compose/secure/vm0/.env.example"]
    assert "SECRET_KAFKA_BACKEND_API__PASSWORD_FILE=" in example
    assert "file holding key password of Secret kafka-backend-api" in example


def test_cluster_workloads_read_their_own_secret_as_files(secure_profiles: Path) -> None:
    deployments = {d["metadata"]["name"]: d for d in _objects(secure_profiles, "secure", "Deployment")}
    for name in ("grpc-gateway", "backend-api"):
        pod = deployments[name]["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}  # prod's backend has Secret refs
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SSL"
        assert env["KAFKA_SSL_CERT_FILE"] == "/etc/imageflow/kafka/tls.crt"
        (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-client"]
        assert volume["secret"]["secretName"] == f"kafka-{name}"
        assert {i["key"] for i in volume["secret"]["items"]} == {"ca.crt", "tls.crt", "tls.key"}
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "kafka-client"]
        assert mount == {"name": "kafka-client", "mountPath": "/etc/imageflow/kafka", "readOnly": True}
    # Each Secret comes through the profile's provider, in its workload's namespace.
    secrets = {
        (s["metadata"]["namespace"], s["metadata"]["name"])
        for s in _objects(secure_profiles, "secure", "ExternalSecret")
    }
    assert {("imageflow-processing", "kafka-grpc-gateway"), ("imageflow-backend", "kafka-backend-api")} <= secrets
    assert not [s for s in secrets if s[1] == "kafka-resize"]  # no Kafka use, no Secret


def test_docs_say_who_connects_how(secure: dict[str, str]) -> None:
    readme = secure["docs/secure/README.md"]
    assert "On `VPN` (SASL_SSL), `backend-api` connects, each as its own Kafka" in readme
    assert "| `KAFKA_SSL_CERT_FILE` | `/etc/imageflow/kafka/tls.crt` |" in readme
    assert "PLAINTEXT listeners neither encrypt" not in readme
    assert "`kafka-grpc-gateway`" in readme  # in the table of Secrets to provide


def test_scram_on_the_private_listener_creates_each_cluster_user(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, "SASL_PLAINTEXT")
    files = build(profiles, "secure", CRDS).files
    compose = yaml.safe_load(files["compose/secure/vm1/docker-compose.yaml"])
    assert compose["services"]["kafka-init"]["secrets"] == [
        f"kafka-{user}__password" for user in ("backend-api", "evaluator", "grpc-gateway", "otel-agent")
    ]
    (deployment,) = [d for d in _objects(profiles, "secure", "Deployment") if d["metadata"]["name"] == "grpc-gateway"]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KAFKA_SASL_USERNAME"] == "grpc-gateway"
    assert env["KAFKA_SASL_PASSWORD_FILE"] == "/etc/imageflow/kafka/password" and "KAFKA_SSL_CA_FILE" not in env
    assert "does not encrypt" in files["docs/secure/README.md"]


def test_plaintext_stays_explicit_and_needs_no_secret() -> None:
    files = build(PROFILES, "prod", CRDS).files
    (deployment,) = [d for d in _objects(PROFILES, "prod", "Deployment") if d["metadata"]["name"] == "grpc-gateway"]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    broker = yaml.safe_load(files["compose/prod/vm1/docker-compose.yaml"])["services"]["kafka-1"]
    assert "secrets" not in broker and "KAFKA_OPTS" not in broker["environment"]
    assert "PLAINTEXT listeners neither encrypt" in files["docs/prod/README.md"]


def test_the_shared_client_secret_is_gone_with_a_located_message(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path)
    text = (profiles / "secure.yaml").read_text()
    (profiles / "secure.yaml").write_text(text + "    client_credentials: {name: kafka-client, keys: {ca: ca.crt}}\n")
    with pytest.raises(ImageflowError) as caught:
        build(profiles, "secure", CRDS)
    (problem,) = caught.value.problems
    assert problem.location.file.endswith("secure.yaml") and problem.location.line == 14
    assert problem.key == "messaging.kafka.client_credentials" and problem.message.startswith("unknown key")


@pytest.mark.parametrize(
    ("name", "protocol", "message"),
    [
        ("VPNSSL", "SASL_SSL", "ends in SSL or contains SASL_"),
        ("EXT_SASL_X", "PLAINTEXT", "ends in SSL or contains SASL_"),
        ("K_3", "SSL", "2 or more letters and digits without '_'"),
    ],
)
def test_listener_names_the_image_would_misread_are_refused(
    tmp_path: Path, name: str, protocol: str, message: str
) -> None:
    profiles = _profiles(tmp_path)
    text = (
        (profiles / "secure.yaml")
        .read_text()
        .replace("- name: K3S\n        protocol: SSL", f"- name: {name}\n        protocol: {protocol}")
    )
    ports = "".join(
        f"      - name: kafka-{i}\n        node_id: {i}\n"
        f"        ports: {{VPN: {p}92, CONTROLLER: {p}93, K3S: {p}94, {name}: {p}95}}\n"
        for i, p in ((1, "90"), (2, "190"), (3, "290"))
    )
    (profiles / "secure.yaml").write_text(text + "    brokers:\n" + ports)
    with pytest.raises(ImageflowError) as caught:
        build(profiles, "secure", CRDS)
    # Listeners merge by name with prod's, so the new one is appended.
    (problem,) = [p for p in caught.value.problems if p.key == "messaging.kafka.listeners[2].name"]
    assert problem.message.startswith(repr(name)) and message in problem.message


def test_the_real_tools_accept_the_secure_output(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path)
    result = run_cli("validate", "--profiles-dir", str(profiles), "--profile", "secure")
    assert result.code == 0, result.stdout + result.stderr
    for tool in ("kubeconform: ok", "helm = kustomize: ok", "compose schema: ok"):
        assert tool in result.stdout


def test_kafka_needs_a_vm_other_than_the_edge_vms(tmp_path: Path) -> None:
    """Each VM's stack is written to compose/<profile>/<vm>/; the VM roles keep two stacks off
    one VM (the edge VM has the role edge, Kafka's must have the role messaging)."""
    profiles = _profiles(tmp_path)
    (profiles / "secure.yaml").write_text("purpose: x\nextends: prod\nmessaging:\n  kafka:\n    vm: vm0\n")
    with pytest.raises(ImageflowError) as caught:
        build(profiles, "secure", CRDS)
    problems = [p for p in caught.value.problems if p.key == "messaging.kafka.vm"]
    assert [p.message for p in problems] == ["VM 'vm0' has the role 'edge', not 'messaging'"]
    assert problems[0].location.file.endswith("secure.yaml") and problems[0].location.line == 5
