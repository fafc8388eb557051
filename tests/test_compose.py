"""Compose stacks for VM0 (edge) and VM1 (Kafka): schema, nginx -t, hardening, no secret values."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import CRDS, PROFILES
from imageflow_gen.pipeline import build
from imageflow_gen.validate import secret_problems
from imageflow_gen.validate import tools as gates
from imageflow_gen.writing import write

PROFILE_NAMES = ["dev", "staging", "prod"]


def files_of(profile: str, profiles_dir: Path = PROFILES) -> dict[str, str]:
    return build(profiles_dir, profile, CRDS).files


def stack(files: dict[str, str], profile: str, vm: str) -> dict:
    return yaml.safe_load(files[f"compose/{profile}/{vm}/docker-compose.yaml"])


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_compose_files_pass_the_compose_spec(profile: str, tmp_path: Path) -> None:
    write(tmp_path, profile, files_of(profile))
    names = [f"compose/{profile}/{vm}/docker-compose.yaml" for vm in ("vm0", "vm1")]
    result = gates.compose_schema(tmp_path, names)
    assert result.skipped is None and result.problems == []


DEBIAN_CRS = "/usr/share/modsecurity-crs"  # Debian's modsecurity-crs: rules/ as in the CRS's release


def stage_nginx(conf: str, tmp_path: Path, hosts: dict[str, str], modsecurity: str | None = None) -> tuple[Path, str]:
    """The rendered files in a folder that becomes /etc/nginx (throwaway certificates, Debian's
    mime.types beside them), and the shell commands that make a private mount namespace look
    like the gateway's container: /etc/nginx, the upstreams' names in /etc/hosts (`hosts`:
    name to loopback address), Debian's CRS where the configuration includes the image's,
    an empty /var/log with the audit log's folder. The rendered files are not changed."""
    folder = tmp_path / "etc-nginx"
    (folder / "tls").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test",
            "-keyout",
            str(folder / "tls/tls.key"),
            "-out",
            str(folder / "tls/tls.crt"),
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy("/etc/nginx/mime.types", folder / "mime.types")
    (folder / "nginx.conf").write_text(conf)
    (tmp_path / "hosts").write_text(
        "127.0.0.1 localhost\n" + "".join(f"{address} {name}\n" for name, address in sorted(hosts.items()))
    )
    mounts = [f"mount --bind {tmp_path}/hosts /etc/hosts", f"mount --bind {folder} /etc/nginx"]
    if modsecurity is not None:
        (folder / "modsecurity.conf").write_text(modsecurity)
        crs = re.search(r"^Include (/opt/\S+)/rules/\*\.conf$", modsecurity, re.M)
        assert crs is not None, "the CRS is included from /opt/<folder>/rules"
        mounts += [
            "mount -t tmpfs tmpfs /opt",
            f"mkdir -p {crs.group(1)}",
            f"mount --bind {DEBIAN_CRS} {crs.group(1)}",
            "mount -t tmpfs tmpfs /var/log",
            "mkdir -m 0777 /var/log/modsecurity",
        ]
    return folder, " && ".join(mounts)


def nginx_test(
    conf: str, tmp_path: Path, hosts: list[str], modsecurity: str | None = None
) -> subprocess.CompletedProcess[str]:
    """nginx -t on a generated config, with throwaway certificates and the stack's host names,
    in a private mount namespace, so nginx -t checks the real files unchanged."""
    _, mounts = stage_nginx(conf, tmp_path, {name: "127.0.0.1" for name in hosts}, modsecurity)
    script = f"{mounts} && {gates.find('nginx')} -t -p /etc/nginx/ -c /etc/nginx/nginx.conf"
    return subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_generated_nginx_configs_pass_nginx_t(profile: str, tmp_path: Path) -> None:
    files = files_of(profile)
    for name in ("api-gateway", "web-ui"):
        work = tmp_path / name
        work.mkdir()
        modsecurity = files[f"compose/{profile}/vm0/nginx/modsecurity.conf"] if name == "api-gateway" else None
        conf = files[f"compose/{profile}/vm0/nginx/{name}.conf"]
        result = nginx_test(conf, work, ["backend-api", "web-ui"], modsecurity)
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr


def test_gateway_duties_are_in_the_config() -> None:
    conf = files_of("prod")["compose/prod/vm0/nginx/api-gateway.conf"]
    for needle in (
        "ssl_certificate tls/tls.crt;",
        "limit_req_zone $binary_remote_addr zone=api:10m rate=20r/s;",
        "limit_req zone=api burst=40 nodelay;",
        "upstream backend_api",
        "proxy_set_header Upgrade",
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "server_name api.imageflow.com;",
        "return 301 https://",
    ):
        assert needle in conf, needle
    web = files_of("prod")["compose/prod/vm0/nginx/web-ui.conf"]
    assert "try_files $uri $uri/ /index.html;" in web


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_service_is_hardened(profile: str) -> None:
    files = files_of(profile)
    for vm in ("vm0", "vm1"):
        text = files[f"compose/{profile}/{vm}/docker-compose.yaml"]
        assert "docker.sock" not in text
        for name, service in stack(files, profile, vm)["services"].items():
            assert re.search(r":[A-Za-z0-9_.-]+$", service["image"]) and not service["image"].endswith(":latest")
            assert service["restart"] in ("unless-stopped", "on-failure"), name
            assert "no-new-privileges:true" in service["security_opt"] and service["cap_drop"] == ["ALL"]
            limits = service["deploy"]["resources"]["limits"]
            assert limits["memory"] and limits["pids"] > 0, name
            assert "healthcheck" in service, name
            if service["healthcheck"].get("disable"):
                assert service["restart"] == "on-failure", f"{name}: only one-shot services skip health checks"


def test_prod_matches_the_seed_roles() -> None:
    files = files_of("prod")
    assert set(stack(files, "prod", "vm0")["services"]) == {
        "api-gateway",
        "api-gateway-audit-init",
        "backend-api",
        "web-ui",
        "vm0-node-exporter",
    }
    vm1 = stack(files, "prod", "vm1")["services"]
    assert {"kafka-1", "kafka-2", "kafka-3", "kafka-connect"} <= set(vm1)
    brokers = [vm1[f"kafka-{i}"]["environment"] for i in (1, 2, 3)]
    assert all(b["KAFKA_PROCESS_ROLES"] == "broker,controller" for b in brokers)
    assert {b["KAFKA_DEFAULT_REPLICATION_FACTOR"] for b in brokers} == {"3"}
    assert {b["KAFKA_MIN_INSYNC_REPLICAS"] for b in brokers} == {"2"}
    assert (
        brokers[0]["KAFKA_ADVERTISED_LISTENERS"] == "INTERNAL://kafka-1:39092,VPN://10.8.0.11:9092,K3S://10.0.2.10:9094"
    )
    backend = stack(files, "prod", "vm0")["services"]["backend-api"]
    assert backend["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "10.8.0.11:9092,10.8.0.11:19092,10.8.0.11:29092"
    assert backend["deploy"]["replicas"] == 3
    connector = yaml.safe_load(files["compose/prod/vm1/connectors/system-logs-to-minio.json"])
    assert connector["connector.class"] == "io.confluent.connect.s3.S3SinkConnector"
    assert (
        connector["s3.bucket.name"] == "system-logs" and connector["store.url"] == "https://minio.imageflow.local:30900"
    )


def test_dev_has_one_broker() -> None:
    vm1 = stack(files_of("dev"), "dev", "vm1")["services"]
    assert sorted(n for n in vm1 if n.startswith("kafka-") and n[6:].isdigit()) == ["kafka-1"]
    assert vm1["kafka-1"]["environment"]["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_env_example_lists_every_variable_and_no_secret(profile: str) -> None:
    files = files_of(profile)
    for vm in ("vm0", "vm1"):
        compose = files[f"compose/{profile}/{vm}/docker-compose.yaml"]
        example = files[f"compose/{profile}/{vm}/.env.example"]
        used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", compose))
        listed = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
        assert used == listed, (vm, used ^ listed)
        assert all(value.startswith(("/", "./")) for value in re.findall(r"^[A-Z_]+=(.*)$", example, re.M))


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_no_secret_value_anywhere_in_the_output(profile: str) -> None:
    # The keys of the root's Secret, the TLS Secrets, the MinIO users' Secrets and MinIO's CA,
    # and of prod's workload Secrets (postgresql-credentials: password; backend-session: secret-key).
    keys = frozenset(
        {"rootUser", "rootPassword", "tls.crt", "tls.key", "access-key", "secret-key", "ca.crt", "password"}
    )
    assert secret_problems(files_of(profile), keys) == []


def test_the_secret_scan_finds_planted_secrets() -> None:
    planted = {
        "a.yaml": "MINIO_ROOT_PASSWORD: changeme123\n",
        "b.conf": "-----BEGIN PRIVATE KEY-----\n",
        "c.env": "AWS_KEY=AKIAABCDEFGHIJKLMNOP\n",
    }
    assert sorted(str(p.location) for p in secret_problems(planted)) == ["a.yaml:1:1", "b.conf:1:1", "c.env:1:1"]
    assert secret_problems({"d.yaml": "secret-key: rootPassword\n"}, frozenset({"rootPassword"})) == []


@pytest.mark.parametrize(
    "access, ports", [("internal", None), ("localhost", ["127.0.0.1:8083:8083"]), ("private", ["10.0.2.10:8083:8083"])]
)
def test_kafka_connects_rest_api_is_published_only_as_the_profile_says(
    tmp_path: Path, access: str, ports: list[str] | None
) -> None:
    from test_hostile import profile_with

    profiles = profile_with(
        tmp_path,
        "rest",
        {"purpose": "rest", "extends": "prod", "messaging": {"kafka": {"connect": {"rest_access": access}}}},
    )
    stack = yaml.safe_load(build(profiles, "rest", CRDS).files["compose/rest/vm1/docker-compose.yaml"])
    connect = stack["services"]["kafka-connect"]
    assert connect.get("ports") == ports
    assert connect["environment"]["CONNECT_CONFIG_PROVIDERS_FILE_PARAM_ALLOWED_PATHS"] == "/run/secrets"


@pytest.mark.parametrize("protocol", ["SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_every_listener_protocol_reaches_the_brokers_and_the_backend(tmp_path: Path, protocol: str) -> None:
    """No protocol is accepted and left unconfigured (tests/test_kafka_security.py has the details)."""
    from test_hostile import profile_with

    prod = yaml.safe_load((PROFILES / "base.yaml").read_text())
    listeners = [
        {**lst, "protocol": protocol if lst["name"] == "VPN" else "PLAINTEXT"}
        for lst in prod["messaging"]["kafka"]["listeners"]
    ]
    profiles = profile_with(
        tmp_path, "tls", {"purpose": "tls", "extends": "prod", "messaging": {"kafka": {"listeners": listeners}}}
    )
    files = build(profiles, "tls", CRDS).files
    brokers = yaml.safe_load(files["compose/tls/vm1/docker-compose.yaml"])["services"]
    backend = yaml.safe_load(files["compose/tls/vm0/docker-compose.yaml"])["services"]["backend-api"]
    assert f"VPN:{protocol}" in brokers["kafka-1"]["environment"]["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert backend["environment"]["KAFKA_SECURITY_PROTOCOL"] == protocol
    assert ("KAFKA_SSL_CA_FILE" in backend["environment"]) is (protocol != "SASL_PLAINTEXT")
    assert ("KAFKA_SASL_PASSWORD_FILE" in backend["environment"]) is protocol.startswith("SASL")
