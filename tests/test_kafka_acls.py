"""Each Kafka client is its own user, limited by ACLs to the topics its `uses` name: the settings
are checked in the output, then run for real. A KRaft broker (Kafka's own jars, which `make test`
installs) starts with the generated broker settings and JAAS file; the generated `kafka-init`
script runs against it; then each workload's client settings produce and consume, and the
broker itself says what each user may do."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import CRDS, PROFILES
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate.tools import find

SCRAM = """purpose: SCRAM and ACLs on Kafka
extends: dev
messaging:
  kafka:
    listeners:
      - name: VPN
        protocol: {vpn}
        network: vpn
        purpose: Backend API on VM0 over the VPN
      - name: K3S
        protocol: {private}
        network: private
        purpose: Cluster workloads
"""
# The command-line tools kafka-init calls, by the class the image's scripts run.
TOOLS = {
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs.sh": "kafka.admin.ConfigCommand",
    "kafka-acls.sh": "kafka.admin.AclCommand",
}
LOG4J = "log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
LOG4J += "log4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
LOG4J += "log4j.appender.stderr.layout.ConversionPattern=%p %c: %m%n\n"


def _profiles(tmp_path: Path, private: str = "SASL_PLAINTEXT", vpn: str = "SASL_PLAINTEXT") -> Path:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "scram.yaml").write_text(SCRAM.format(private=private, vpn=vpn))
    return profiles


@pytest.fixture(scope="module")
def scram(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    profiles = _profiles(tmp_path_factory.mktemp("scram"))
    return profiles, build(profiles, "scram", CRDS).files


def _compose(files: dict[str, str], vm: str) -> dict[str, Any]:
    return yaml.safe_load(files[f"compose/scram/{vm}/docker-compose.yaml"])


# ---- the output ----------------------------------------------------------------------------


def test_each_client_is_its_own_scram_user(scram: tuple[Path, dict[str, str]]) -> None:
    profiles, files = scram
    init = _compose(files, "vm1")["services"]["kafka-init"]
    users = ["backend-api", "grpc-gateway", "otel-agent"]  # dev's: by their uses, and the agent's logs
    assert init["secrets"] == [f"kafka-{u}__password" for u in users]  # each its Secret's key
    script = init["entrypoint"][2]
    assert [
        re.search(r"--entity-name (\S+)", line)[1] for line in script.splitlines() if "kafka-configs" in line
    ] == users  # type: ignore[index]
    example = files["compose/scram/vm1/.env.example"]
    assert all(f"SECRET_KAFKA_{u.replace('-', '_').upper()}__PASSWORD_FILE=" in example for u in users)
    # In the cluster each reads its own Secret, in its namespace, through the profile's provider.
    deployments = {
        d["metadata"]["name"]: d for d in objects(validated(profiles, "scram")[2]) if d["kind"] == "Deployment"
    }
    pod = deployments["grpc-gateway"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["KAFKA_SASL_USERNAME"] == "grpc-gateway" and env["KAFKA_GROUP_ID"] == "grpc-gateway"
    assert env["KAFKA_SASL_PASSWORD_FILE"] == "/etc/imageflow/kafka/password"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-client"]
    assert volume["secret"]["secretName"] == "kafka-grpc-gateway"
    assert volume["secret"]["items"] == [{"key": "password", "path": "password"}]
    # A workload without a Kafka use gets neither the variables nor a Secret.
    resize = deployments["resize"]["spec"]["template"]["spec"]
    assert not [e for e in resize["containers"][0]["env"] if e["name"].startswith("KAFKA_")]
    assert "kafka-client" not in {v["name"] for v in resize["volumes"]}
    # The edge backend on vm0 is the same user, by its compose secrets.
    backend = _compose(files, "vm0")["services"]["backend-api"]["environment"]
    assert backend["KAFKA_SASL_USERNAME"] == "backend-api" and backend["KAFKA_GROUP_ID"] == "backend-api"


def test_the_secrets_and_the_docs_name_each_user(scram: tuple[Path, dict[str, str]]) -> None:
    profiles, files = scram
    kinds = {"ExternalSecret", "SealedSecret", "Secret"}
    secrets_ = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in objects(validated(profiles, "scram")[2])
        if o["kind"] in kinds and o["metadata"]["name"].startswith("kafka-")
    }
    assert secrets_ == {
        ("imageflow-backend", "kafka-backend-api"),  # dev's backend runs in the cluster too
        ("imageflow-processing", "kafka-grpc-gateway"),
        ("imageflow-observability", "kafka-otel-agent"),
    }
    readme = files["docs/scram/README.md"]
    assert "| `grpc-gateway` | topic `image-jobs` | Read |" in readme
    assert "| `grpc-gateway` | group `grpc-gateway` | Read |" in readme
    assert "| `grpc-gateway` | group names beginning `grpc-gateway.` | Read |" in readme
    assert "| `otel-agent` | topic `system-logs` | Write |" in readme
    assert "On `VPN` (SASL_PLAINTEXT), `backend-api` connects, each as its own Kafka" in readme
    assert (
        "On `K3S` (SASL_PLAINTEXT), `backend-api`, `grpc-gateway`, `otel-agent` connect, each as its own Kafka"
        in readme
    )


def test_brokers_authorize_only_when_a_listener_authenticates(scram: tuple[Path, dict[str, str]]) -> None:
    _, files = scram
    env = _compose(files, "vm1")["services"]["kafka-1"]["environment"]
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_SUPER_USERS"] == "User:ANONYMOUS" and env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    plain = yaml.safe_load(build(PROFILES, "dev", CRDS).files["compose/dev/vm1/docker-compose.yaml"])
    broker = plain["services"]["kafka-1"]["environment"]
    assert not [k for k in broker if "AUTHORIZER" in k or "SUPER_USERS" in k]
    assert "kafka-acls" not in plain["services"]["kafka-init"]["entrypoint"][2]


def test_mutual_tls_users_are_the_certificates_common_names(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, "SSL")
    files = build(profiles, "scram", CRDS).files
    env = _compose(files, "vm1")["services"]["kafka-1"]["environment"]
    # compose's `$$` is one `$` for the broker.
    assert env["KAFKA_SSL_PRINCIPAL_MAPPING_RULES"] == "RULE:^CN=([^,]+)(,.*)?$$/$$1/,DEFAULT"
    init = _compose(files, "vm1")["services"]["kafka-init"]
    assert init["secrets"] == ["kafka-backend-api__password"]  # the SASL listener's only
    assert "--allow-principal User:grpc-gateway --operation Write --topic image-results" in init["entrypoint"][2]
    (deployment,) = [
        d
        for d in objects(validated(profiles, "scram")[2])
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "grpc-gateway"
    ]
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "kafka-client"]
    assert volume["secret"]["secretName"] == "kafka-grpc-gateway"
    assert [i["key"] for i in volume["secret"]["items"]] == ["ca.crt", "tls.crt", "tls.key"]
    assert "the CN of its client certificate" in files["docs/scram/README.md"]


def test_two_workloads_cannot_share_a_kafka_user(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path)
    text = (profiles / "scram.yaml").read_text() + (
        "workloads:\n"
        "  - name: grpc-gateway\n"
        "    namespace: imageflow-backend\n"
        "    image: ghcr.io/imageflowcanvas/other:1.0.0\n"
        "    uses:\n"
        "      - {kafka: {consume: [image-results]}}\n"
        "    resources:\n"
        "      requests: {cpu: 10m, memory: 16Mi}\n"
        "      limits: {cpu: 100m, memory: 64Mi}\n"
    )
    (profiles / "scram.yaml").write_text(text)
    with pytest.raises(ImageflowError) as caught:
        build(profiles, "scram", CRDS)
    problems = [p for p in caught.value.problems if "Kafka user" in p.message]
    assert [p.key for p in problems] == ["workloads[0].uses[0].kafka"]
    assert problems[0].message.startswith("duplicate Kafka user (workload name) 'grpc-gateway' (also at processing.")
    assert problems[0].location.file.endswith("scram.yaml") and problems[0].location.line == 19


# ---- a real broker ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _properties(env: dict[str, str], ports: dict[str, int], data: Path, files: dict[str, Path]) -> str:
    """The broker's environment as the apache/kafka image turns it into server.properties
    (KAFKA_A_B -> a.b), with every host this machine, each port a free one and each of its
    compose secrets (`files`: by the path the container sees) a file here."""
    lines = []
    for key, value in sorted(env.items()):
        if not key.startswith("KAFKA_") or key in ("KAFKA_OPTS", "KAFKA_HEAP_OPTS"):
            continue
        value = str(value).replace("$$", "$")  # compose's escape
        if key in ("KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS"):
            value = ",".join(f"{n}://127.0.0.1:{ports[n]}" for n in (item.split("://")[0] for item in value.split(",")))
        elif key == "KAFKA_CONTROLLER_QUORUM_VOTERS":
            value = re.sub(r"@[^,]+", f"@127.0.0.1:{ports['CONTROLLER']}", value)
        elif key == "KAFKA_LOG_DIRS":
            value = str(data)
        elif value in files:
            value = str(files[value])
        lines.append(f"{key[6:].lower().replace('_', '.')}={value}")
    return "\n".join(lines) + "\n"


class Certificates:
    """A CA, the brokers' certificate for 127.0.0.1 and, on demand, a client certificate whose
    CN is a user's name, made by openssl; keys are unencrypted PKCS#8, as the docs ask for."""

    def __init__(self, root: Path) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.fail("openssl is missing")
        self.openssl, self.root = openssl, root
        root.mkdir()
        self.ca_key, self.ca = root / "ca.key", root / "ca.crt"
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.ca_key), "-out", str(self.ca))
        self.server = self._issue("kafka-server", "/CN=kafka", "subjectAltName=IP:127.0.0.1\n")
        self.clients: dict[str, Path] = {}

    def _run(self, *args: str) -> None:
        argv = [self.openssl, *args]
        if args[0] == "req" and "-x509" in args:
            argv += ["-subj", "/CN=imageflow-test-ca", "-days", "2"]
        result = subprocess.run(argv, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    def _issue(self, name: str, subject: str, extensions: str = "") -> Path:
        key, csr, crt, ext = (self.root / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
        self._run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key))
        self._run("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
        ext.write_text(extensions or "basicConstraints=CA:FALSE\n")
        self._run(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt),
        )  # fmt: skip
        pem = self.root / f"{name}.pem"
        pem.write_text(key.read_text() + crt.read_text())
        return pem

    def client(self, user: str) -> Path:
        """The user's key and certificate (PEM), its subject O=imageflow, CN=<user>."""
        if user not in self.clients:
            self.clients[user] = self._issue(f"client-{user}", f"/O=imageflow/CN={user}")
        return self.clients[user]

    def broker_files(self) -> dict[str, Path]:
        """The brokers' compose secrets: their key and certificate, the CA of the client certificates."""
        return {"kafka_server_pem": self.server, "kafka_client_ca": self.ca}


class Broker:
    """The generated broker on this machine; `tls`: the certificates (`Certificates`), when its
    listeners serve TLS."""

    def __init__(self, root: Path, files: dict[str, str], run_class: str, tls: Certificates | None = None) -> None:
        self.root, self.files, self.run_class, self.tls = root, files, run_class, tls
        compose = _compose(files, "vm1")
        self.broker = compose["services"]["kafka-1"]
        # The brokers' compose secrets, by the path the container sees them at.
        targets = {s["source"]: s["target"] for s in self.broker.get("secrets", [])}
        self.secret_files = {targets[name]: path for name, path in (tls.broker_files() if tls else {}).items()}
        protocols = self.broker["environment"]["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
        self.protocols = dict(item.split(":") for item in protocols)
        self.init = compose["services"]["kafka-init"]
        names = [item.split("://")[0] for item in self.broker["environment"]["KAFKA_LISTENERS"].split(",")]
        self.ports = {name: _free_port() for name in names}
        self.passwords = {u: secrets.token_urlsafe(16) for u in ("backend-api", "grpc-gateway", "otel-agent")}
        (root / "log4j.properties").write_text(LOG4J)

    def java(
        self, cls: str, *args: str, stdin: str | None = None, timeout: int = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KAFKA_HEAP_OPTS": "-Xmx256m"}
        argv = [self.run_class, f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}", cls, *args]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)

    def start(self) -> subprocess.Popen[bytes]:
        env = self.broker["environment"]
        config = self.root / "server.properties"
        config.write_text(_properties(env, self.ports, self.root / "data", self.secret_files))
        jaas = self.root / "kafka_server_jaas.conf"
        jaas.write_text(self.files["compose/scram/vm1/kafka/kafka_server_jaas.conf"])
        fmt = self.java("kafka.tools.StorageTool", "format", "-t", env["CLUSTER_ID"], "-c", str(config))
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr
        argv = [
            self.run_class,
            "-Xmx512m",
            f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
            env["KAFKA_OPTS"].replace("/etc/kafka/jaas/kafka_server_jaas.conf", str(jaas)),
            "kafka.Kafka",
            str(config),
        ]
        log = (self.root / "broker.log").open("wb")
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def internal(self) -> str:
        return f"127.0.0.1:{self.ports['INTERNAL']}"

    def wait(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("the broker stopped:\n" + (self.root / "broker.log").read_text()[-4000:])
            ready = self.java("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", self.internal(), "--list")
            if ready.returncode == 0:
                return
            time.sleep(1)
        pytest.fail("the broker did not start:\n" + (self.root / "broker.log").read_text()[-4000:])

    def run_init(self) -> subprocess.CompletedProcess[str]:
        """The generated kafka-init script, with the image's scripts, the compose secrets and the
        brokers' names pointing here."""
        bin_dir, run = self.root / "bin", self.root / "secrets"
        bin_dir.mkdir(exist_ok=True)
        run.mkdir(exist_ok=True)
        for script, cls in TOOLS.items():
            path = bin_dir / script
            log4j = f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}"
            path.write_text(f'#!/bin/sh\nexec "{self.run_class}" {log4j} {cls} "$@"\n')
            path.chmod(0o755)
        for user, password in self.passwords.items():
            (run / f"kafka-{user}__password").write_text(password)
        script = self.init["entrypoint"][2].replace("$$", "$")
        script = script.replace("/opt/kafka/bin/", f"{bin_dir}/").replace("/run/secrets/", f"{run}/")
        script = script.replace("kafka-1:39092", self.internal())
        return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=600)

    def client(self, user: str, listener: str, password: str | None = None) -> Path:
        """A client's settings for `listener`'s protocol, as the generated variables give them
        (the SCRAM mechanism, the user's name, its certificate and the brokers' CA as files)."""
        protocol = self.protocols[listener]
        lines = [f"security.protocol={protocol}"]
        if protocol.startswith("SASL_"):
            secret = password if password is not None else self.passwords[user]
            mechanism = self.broker["environment"]["KAFKA_SASL_ENABLED_MECHANISMS"]
            lines += [
                f"sasl.mechanism={mechanism}",
                "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{user}" password="{secret}";',
            ]
        if protocol.endswith("SSL"):
            assert self.tls is not None
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.tls.ca}"]
        if protocol == "SSL":
            assert self.tls is not None
            lines += ["ssl.keystore.type=PEM", f"ssl.keystore.location={self.tls.client(user)}"]
        path = self.root / f"{user}-{listener}.properties"
        path.write_text("\n".join(lines) + "\n")
        return path

    def produce(self, user: str, listener: str, topic: str, message: str, password: str | None = None) -> str:
        result = self.java(
            "kafka.tools.ConsoleProducer",
            "--bootstrap-server", f"127.0.0.1:{self.ports[listener]}",
            "--topic", topic,
            "--producer.config", str(self.client(user, listener, password)),
            "--request-required-acks", "all",
            "--sync",
            stdin=message + "\n",
        )  # fmt: skip
        return result.stdout + result.stderr

    def consume(self, user: str, listener: str, topic: str, group: str) -> str:
        result = self.java(
            "kafka.tools.ConsoleConsumer",
            "--bootstrap-server", f"127.0.0.1:{self.ports[listener]}",
            "--topic", topic,
            "--group", group,
            "--from-beginning",
            "--max-messages", "1",
            "--timeout-ms", "20000",
            "--consumer.config", str(self.client(user, listener)),
        )  # fmt: skip
        return result.stdout + result.stderr


def _run_broker(root: Path, files: dict[str, str], tls: Certificates | None = None) -> Iterator[Broker]:
    run_class = find("kafka-run-class")
    if run_class is None:
        pytest.fail("Kafka's jars are missing: `make tools` installs them")
    b = Broker(root, files, str(run_class), tls)
    proc = b.start()
    try:
        b.wait(proc)
        init = b.run_init()
        assert init.returncode == 0, init.stdout + init.stderr
        yield b
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def broker(scram: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from _run_broker(tmp_path_factory.mktemp("kafka"), scram[1])


DENIED_TOPIC = "TopicAuthorizationException"
DENIED_GROUP = "GroupAuthorizationException"


def test_the_broker_holds_exactly_the_derived_acls(broker: Broker) -> None:
    listed = broker.java("kafka.admin.AclCommand", "--bootstrap-server", broker.internal(), "--list")
    assert listed.returncode == 0, listed.stderr
    found = set(re.findall(r"principal=User:([\w-]+), host=\*, operation=(\w+), permissionType=ALLOW", listed.stdout))
    assert found == {
        ("backend-api", "WRITE"),
        ("backend-api", "READ"),
        ("grpc-gateway", "WRITE"),
        ("grpc-gateway", "READ"),
        ("otel-agent", "WRITE"),
    }
    assert "resourceType=GROUP, name=grpc-gateway, patternType=LITERAL" in listed.stdout
    assert "resourceType=GROUP, name=grpc-gateway., patternType=PREFIXED" in listed.stdout
    # kafka-init may run again (every `docker compose up`): nothing fails, nothing doubles.
    again = broker.run_init()
    assert again.returncode == 0, again.stdout + again.stderr
    relisted = broker.java("kafka.admin.AclCommand", "--bootstrap-server", broker.internal(), "--list").stdout
    assert sorted(relisted.splitlines()) == sorted(listed.stdout.splitlines())  # listed in no fixed order


def test_each_user_may_do_what_its_uses_say_and_nothing_else(broker: Broker) -> None:
    # The backend over the VPN listener queues a job; the gateway over the cluster's consumes it.
    assert DENIED_TOPIC not in broker.produce("backend-api", "VPN", "image-jobs", "job-1")
    got = broker.consume("grpc-gateway", "K3S", "image-jobs", "grpc-gateway")
    assert "job-1" in got, got
    # The gateway writes results, which only it produces; it may not queue jobs.
    assert DENIED_TOPIC not in broker.produce("grpc-gateway", "K3S", "image-results", "result-1")
    assert DENIED_TOPIC in broker.produce("grpc-gateway", "K3S", "image-jobs", "forged")
    # Groups outside its name are refused; so is a topic it does not consume.
    assert DENIED_GROUP in broker.consume("grpc-gateway", "K3S", "image-jobs", "someone-else")
    # A name it merely begins is another workload's (grpc-gateway-2's): refused too.
    assert DENIED_GROUP in broker.consume("grpc-gateway", "K3S", "image-jobs", "grpc-gateway-2")
    assert DENIED_TOPIC in broker.consume("otel-agent", "K3S", "image-jobs", "otel-agent")
    # A wrong password is not a user at all.
    assert "SaslAuthenticationException" in broker.produce("grpc-gateway", "K3S", "image-results", "x", "wrong")


def test_a_workload_on_the_kafka_vm_is_a_user_over_the_private_listener(tmp_path: Path) -> None:
    """A typed workload on a VM is wired to the stores as the edge backend is: on Kafka's own VM
    it reaches the brokers at the VM's private address, as its own user with its own ACLs."""
    profiles = _profiles(tmp_path)
    (profiles / "scram.yaml").write_text(
        (profiles / "scram.yaml").read_text() + "workloads:\n"
        "  - name: archiver\n"
        "    vm: vm1\n"
        "    image: ghcr.io/imageflowcanvas/archiver:1.0.0\n"
        "    uses:\n"
        "      - {kafka: {consume: [image-results]}}\n"
        "      - {minio: {buckets: [processed-images], access: r}}\n"
        "    resources:\n"
        "      requests: {cpu: 10m, memory: 16Mi}\n"
        "      limits: {cpu: 100m, memory: 64Mi}\n"
    )
    files = build(profiles, "scram", CRDS).files
    vm1 = _compose(files, "vm1")
    archiver = vm1["services"]["archiver"]
    env = archiver["environment"]
    broker = vm1["services"]["kafka-1"]["environment"]
    k3s = next(a for a in broker["KAFKA_ADVERTISED_LISTENERS"].split(",") if a.startswith("K3S://"))
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == k3s.removeprefix("K3S://")  # the VM's private address
    assert env["KAFKA_SASL_USERNAME"] == "archiver" and env["KAFKA_GROUP_ID"] == "archiver"
    assert env["KAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/kafka-archiver__password"
    assert env["MINIO_ACCESS_KEY_FILE"] == "/run/secrets/minio-archiver__access-key"
    assert archiver["extra_hosts"] and set(archiver["secrets"]) <= set(vm1["secrets"])
    script = vm1["services"]["kafka-init"]["entrypoint"][2]
    assert "--entity-name archiver " in script
    assert "--allow-principal User:archiver --operation Read --topic image-results " in script
    assert (
        "--allow-principal User:archiver --operation Read --group archiver. --resource-pattern-type prefixed" in script
    )
    assert script.count("User:archiver ") == 3
    # Its MinIO user is created in the cluster and admitted from its VM through the node port.
    objs = objects(validated(profiles, "scram")[2])
    assert any(o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "minio-archiver" for o in objs)
    (ingress,) = [
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "allow-vms-to-minio-ingress"
    ]
    vm1_address = k3s.removeprefix("K3S://").split(":")[0]
    assert {"ipBlock": {"cidr": f"{vm1_address}/32"}} in ingress["spec"]["ingress"][0]["from"]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    profiles = _profiles(tmp_path_factory.mktemp("tls"), private="SSL", vpn="SASL_SSL")
    files = build(profiles, "scram", CRDS).files
    root = tmp_path_factory.mktemp("kafka-tls")
    yield from _run_broker(root, files, Certificates(root / "certs"))


def test_over_tls_the_users_are_scram_users_and_certificate_names(tls_broker: Broker) -> None:
    """SASL_SSL on the VPN, mutual TLS on the cluster's listener: the generated PEM settings
    serve TLS, and a client certificate's CN is the user its ACLs name."""
    assert DENIED_TOPIC not in tls_broker.produce("backend-api", "VPN", "image-jobs", "job-tls")
    got = tls_broker.consume("grpc-gateway", "K3S", "image-jobs", "grpc-gateway.tls")
    assert "job-tls" in got, got
    assert DENIED_TOPIC in tls_broker.produce("grpc-gateway", "K3S", "image-jobs", "forged")
    # A certificate of the same CA for a name without uses is a user without rights.
    assert DENIED_TOPIC in tls_broker.produce("intruder", "K3S", "image-results", "x")
