"""Typed workloads (`workloads:`): the feature profile through every gate and a simulated
cluster, the flows its policies open, its compose services, and each option's bad values
refused with a located message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from conftest import CRDS, PROFILES, REPO, feature_profiles, run_cli
from imageflow_gen.errors import ValidationFailed
from imageflow_gen.loading import load_profile
from imageflow_gen.modelling import topology
from imageflow_gen.pipeline import build, validated
from imageflow_gen.plan.workloads import files_hash
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate import tools as gates
from imageflow_gen.writing import write
from imageflow_gen.yamlio import parse_all
from test_compose import nginx_test
from test_graph import Cluster, _required_all
from test_security import checkov, failed

PROFILE = "workloads"


@pytest.fixture(scope="module")
def features() -> Path:
    return feature_profiles()


@pytest.fixture(scope="module")
def built(features: Path) -> Any:
    return build(features, PROFILE, CRDS)


def _objects(features: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects(validated(features, PROFILE)[2])}


def test_the_feature_profile_passes_every_gate(built: Any, tmp_path: Path) -> None:
    write(tmp_path, PROFILE, built.files)
    outcomes = gates.run_all(tmp_path, PROFILE, "1.28", CRDS, built.objects)
    assert {o.tool for o in outcomes} >= {"kubeconform", "helm = kustomize", "compose schema"}
    assert [(o.tool, o.skipped, [str(p) for p in o.problems]) for o in outcomes if o.skipped or o.problems] == []


def test_checkov_finds_nothing_but_the_stated_exceptions(built: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write(out, PROFILE, built.files)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    _, overlay = gates.kustomize_build(out, f"kustomize/overlays/{PROFILE}")
    (manifests / "overlay.yaml").write_text(overlay)
    assert failed(checkov(manifests, "kubernetes")) == []


def test_the_feature_profile_becomes_ready_in_a_simulated_cluster(features: Path) -> None:
    """A real API server (Pod Security admission included), scheduler and controllers: every
    workload scheduled where its placement says, every claim bound, every Service with endpoints."""
    result = run_cli("simulate", "--profile", PROFILE, "--profiles-dir", str(features))
    assert result.code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for expected in (
        "StatefulSet imageflow-storage/postgresql",
        "Deployment imageflow-inference/triton",
        "Deployment imageflow-backend/camera-streams-blue ",  # blue-green: both colours at full size
        "Deployment imageflow-backend/camera-streams-green ",
        "Deployment imageflow-processing/evaluator ",  # canary: the stable track and the canary
        "Deployment imageflow-processing/evaluator-canary ",
        "PersistentVolumeClaim imageflow-storage/data-postgresql-0",
        "Service imageflow-storage/postgresql-nodeport",
        "HorizontalPodAutoscaler imageflow-processing/evaluator",
    ):
        (line,) = [line for line in lines if expected in line]
        assert line.lstrip().startswith("ok"), line
    triton = next(line for line in lines if "Deployment imageflow-inference/triton" in line)
    assert triton.endswith("on k3s-worker-02")  # the GPU node, its taint tolerated
    assert "result: ok" in result.stdout


def test_the_policies_open_exactly_the_declared_flows(features: Path) -> None:
    """The NetworkPolicy evaluator of the graph tests: the seed's flows plus, for the workloads,
    exactly their env endpoints, their telemetry, the gateway's route and the node ports."""
    _, topo, plan = validated(features, PROFILE)
    cluster = Cluster(objects(plan))
    allowed = cluster.allowed()
    postgresql, triton = "imageflow-storage/postgresql", "imageflow-inference/triton"
    evaluators = ["imageflow-processing/evaluator", "imageflow-processing/evaluator-canary"]  # its canary
    streams_pods = ["imageflow-backend/camera-streams-blue", "imageflow-backend/camera-streams-green"]
    agent = "imageflow-observability/otel-agent"
    required = _required_all(topo) | {
        ("imageflow-backend/backend-api", postgresql, 5432),  # the seed's services' own env
        ("imageflow-processing/ai-detection", triton, 8001),
        ("imageflow-backend/backend-api", "imageflow-processing/grpc-gateway", 8080),  # where: cluster
    }
    for evaluator in evaluators:
        required |= {
            (evaluator, postgresql, 5432),
            (evaluator, triton, 8001),
            (evaluator, triton, 8000),
            (evaluator, "ip:10.0.2.10", 9308),
            (evaluator, "imageflow-processing/grpc-gateway", 8080),  # a seed service as an endpoint
            (evaluator, "imageflow-backend/backend-api", 50051),  # an edge component's further port
        }
    required |= {("istio-system/istio-ingressgateway", pod, 8888) for pod in streams_pods}
    for pod in (*evaluators, postgresql, triton, *streams_pods):
        required |= {(pod, agent, 4317), (pod, agent, 4318)}
    assert required - allowed == set(), "required but denied"
    assert allowed - required == set(), "open but not required"
    streams = streams_pods[1]  # the active colour (the Service selects it)
    for pod, port in ((streams, 8554), (streams, 8189)):
        assert cluster.admits_from_outside("203.0.113.7", pod, port), (pod, port)
    # PostgreSQL's node port admits the edge VM alone (node_port_from: [vm0])
    assert cluster.admits_from_outside("10.0.0.10", postgresql, 5432)
    assert not cluster.admits_from_outside("203.0.113.7", postgresql, 5432)
    assert not cluster.admits_from_outside("203.0.113.7", streams, 9997)  # the API is not exposed
    assert not cluster.admits_from_outside("203.0.113.7", triton, 8000)


def test_the_cluster_objects_carry_every_option(features: Path) -> None:
    objs = _objects(features)
    pg = objs[("StatefulSet", "postgresql")]
    pod = pg["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsUser"] == 999
    assert pg["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "local-path"
    assert container["readinessProbe"]["exec"]["command"] == ["pg_isready", "-U", "imageflow", "-d", "imageflow"]
    assert container["livenessProbe"]["tcpSocket"] == {"port": "sql"}
    assert {
        "name": "POSTGRES_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "postgresql-credentials", "key": "password"}},
    } in container["env"]
    assert objs[("Service", "postgresql")]["spec"]["clusterIP"] == "None"
    node_port = objs[("Service", "postgresql-nodeport")]["spec"]
    assert node_port["type"] == "NodePort" and node_port["ports"][0]["nodePort"] == 30432
    assert node_port["externalTrafficPolicy"] == "Local"  # node_port_from: the callers' addresses kept
    assert objs[("ConfigMap", "postgresql-files")]["data"]["postgresql.conf"].startswith("listen_addresses")
    # A new content replaces the pods: the pod template carries the files' hash.
    workload = validated(features, PROFILE)[1].workloads[0]
    stamp = pg["spec"]["template"]["metadata"]["annotations"]["imageflow.io/files-sha256"]
    assert stamp == files_hash(workload)
    changed = workload.model_copy(update={"files": [workload.files[0].model_copy(update={"content": "x = 1\n"})]})
    assert files_hash(changed) != stamp

    triton = objs[("Deployment", "triton")]
    tpod = triton["spec"]["template"]["spec"]
    (t,) = tpod["containers"]
    assert tpod["runtimeClassName"] == "nvidia" and t["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert tpod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    assert t["securityContext"]["readOnlyRootFilesystem"] is False
    assert t["command"] == ["tritonserver"] and t["startupProbe"]["httpGet"] == {
        "path": "/v2/health/ready",
        "port": "http",
    }
    assert {"name": "models", "hostPath": {"path": "/srv/imageflow/models", "type": "Directory"}} in tpod["volumes"]
    assert triton["metadata"]["annotations"]["imageflow.io/pod-security-exemption"].startswith(
        "hostPath /srv/imageflow/models: "
    )
    assert {"name": "shm", "emptyDir": {"sizeLimit": "1Gi", "medium": "Memory"}} in tpod["volumes"]

    streams = objs[("Service", "camera-streams")]["spec"]
    assert streams["type"] == "NodePort"
    assert {(p["name"], p["protocol"], p.get("nodePort")) for p in streams["ports"]} == {
        ("rtsp", "TCP", 30554),
        ("webrtc", "UDP", 30189),
        ("hls", "TCP", None),
        ("api", "TCP", None),
    }
    route = objs[("VirtualService", "camera-streams")]["spec"]
    assert route["hosts"] == ["streams.imageflow.com"] and route["http"][0]["timeout"] == "60s"

    (e,) = objs[("Deployment", "evaluator")]["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value", v.get("valueFrom")) for v in e["env"]}
    assert env["DB_ADDRESS"] == "postgresql.imageflow-storage.svc.cluster.local:5432"
    assert env["TRITON_URL"] == "dns:///triton.imageflow-inference.svc.cluster.local:8001"
    assert env["TRITON_HTTP"] == "http://triton.imageflow-inference.svc.cluster.local:8000/v2"
    assert env["EXPORTER_URL"] == "http://10.0.2.10:9308/metrics"
    assert env["RULES"] == {"configMapKeyRef": {"name": "evaluator-files", "key": "rules.json"}}
    assert env["LOG_FORMAT"] == "json $$(not-a-variable)"  # the kubelet expands no variable
    assert e["workingDir"] == "/app" and e["command"] == ["python", "-m", "evaluator"]
    assert e["readinessProbe"]["exec"]["command"] == ["python", "-m", "evaluator.health", "--ready"]
    assert e["livenessProbe"]["periodSeconds"] == 30 and e["livenessProbe"]["timeoutSeconds"] == 10
    assert objs[("HorizontalPodAutoscaler", "evaluator")]["spec"]["minReplicas"] == 2
    assert ("PodDisruptionBudget", "evaluator") in objs


def test_the_vm_services_carry_every_option(built: Any) -> None:
    vm0 = parse_all(built.files["compose/workloads/vm0/docker-compose.yaml"])[0]["services"]
    vm1 = parse_all(built.files["compose/workloads/vm1/docker-compose.yaml"])[0]["services"]
    notifier, redis = vm0["notifier"], vm0["redis"]
    assert notifier["environment"] == {
        "REDIS_ADDRESS": "redis:6379",  # the compose service on the same VM
        "DATABASE_ADDRESS": "10.0.1.11:30432",  # the node port on PostgreSQL's one node (node_port_from)
        "CHAT_TOKEN_FILE": "/run/secrets/notifier-token__token",
        "GREETING": "costs $$HOME $${USER}",  # compose interpolates nothing
        "BACKEND_URL": "http://backend-api:8000",  # a seed service on the same VM, by its compose name
        "BACKEND_GRPC": "backend-api:50051",  # its further port, on the compose network
        # Its uses of the stores: MinIO by the node port, as its own MinIO user
        "MINIO_ENDPOINT": "http://minio.imageflow.local:30900",
        "MINIO_REGION": "us-east-1",
        "MINIO_ACCESS_KEY_FILE": "/run/secrets/minio-notifier__access-key",
        "MINIO_SECRET_KEY_FILE": "/run/secrets/minio-notifier__secret-key",
        # Kafka over the VPN listener (PLAINTEXT here: no user, no files), its group its name
        "KAFKA_BOOTSTRAP_SERVERS": "10.8.0.11:9092",
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "KAFKA_ACKS": "all",
        "KAFKA_ENABLE_IDEMPOTENCE": "true",
        "KAFKA_COMPRESSION_TYPE": "lz4",
        "KAFKA_GROUP_ID": "notifier",
        # PostgreSQL's node port on its one node, the role's password a file
        "PGHOST": "10.0.1.11",
        "PGPORT": "30433",
        "PGDATABASE": "imageflow",
        "PGUSER": "imageflow",
        "PGPASSWORD_FILE": "/run/secrets/database-imageflow__password",
    }
    assert notifier["extra_hosts"] == ["minio.imageflow.local:10.0.1.10"]
    assert {"minio-notifier__access-key", "database-imageflow__password"} <= set(notifier["secrets"])
    assert notifier["depends_on"]["backend-api"] == {"condition": "service_healthy"}
    assert notifier["command"] == ["--config", "/etc/notifier/config.toml", "--price", "$$5"]
    assert notifier["entrypoint"] == ["/srv/notifier"] and notifier["pull_policy"] == "always"
    assert notifier["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "backend-api": {"condition": "service_healthy"},
    }
    assert notifier["read_only"] is True and notifier["user"] == "10001:10001"
    assert {"type": "bind", "source": "/var/log/imageflow/notifier", "target": "/var/log/notifier"} in notifier[
        "volumes"
    ]
    assert built.files["compose/workloads/vm0/files/notifier/config.toml"] == 'channel = "inspection"\n'
    env_example = built.files["compose/workloads/vm0/.env.example"]
    assert "SECRET_NOTIFIER_TOKEN__TOKEN_FILE=./secrets/notifier-token-token" in env_example
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"] and redis["user"] == "999:999"
    assert {"type": "volume", "source": "redis-data", "target": "/data"} in redis["volumes"]
    assert vm1["vm1-exporter"]["ports"] == ["10.0.2.10:9308:9308/tcp"]


def test_a_use_sets_its_address_and_opens_its_path(features: Path) -> None:
    """`uses`: each entry names its variable (by convention, or `env`) and opens the flow, whose
    policies trace back to the use."""
    objs = _objects(features)
    container = objs[("Deployment", "report-api")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["POSTGRESQL_SQL_ADDRESS"] == "postgresql.imageflow-storage.svc.cluster.local:5432"
    assert env["BACKEND_GRPC_URL"] == "dns:///backend-api.imageflow-backend.svc.cluster.local:50051"
    assert env["TRITON_HTTP_ADDRESS"] == "http://triton.imageflow-inference.svc.cluster.local:8000/v2"
    egress = objs[("NetworkPolicy", "allow-report-api-to-postgresql-sql-egress")]
    assert egress["metadata"]["annotations"]["imageflow.io/source"] == "workloads.yaml#workloads[8].uses[0]"
    # A store's use: its variables (files, never values), its own MinIO user, the paths opened.
    assert env["MINIO_ENDPOINT"] == "http://minio.imageflow-storage.svc.cluster.local:9000"
    assert env["MINIO_ACCESS_KEY_FILE"] == "/etc/imageflow/minio/access-key"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka.imageflow-backend.svc.cluster.local:9094"
    volumes = objs[("Deployment", "report-api")]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "minio-user", "secret": {"secretName": "minio-report-api", "defaultMode": 0o440}} in volumes
    policy = json.loads(objs[("ConfigMap", "minio-policies")]["data"]["report-api.json"])
    assert {r for st in policy["Statement"] for r in st["Resource"]} == {
        "arn:aws:s3:::processed-images",
        "arn:aws:s3:::processed-images/*",
    }
    assert "s3:PutObject" not in {a for st in policy["Statement"] for a in st["Action"]}  # read only
    assert env["PGHOST"] == "database.imageflow-storage.svc.cluster.local" and env["PGUSER"] == "imageflow"
    password = next(e for e in container["env"] if e["name"] == "PGPASSWORD")
    assert password["valueFrom"] == {"secretKeyRef": {"name": "database-imageflow", "key": "password"}}
    for name, source in (("minio", "uses[3].minio"), ("kafka", "uses[4].kafka"), ("database", "uses[5].postgresql")):
        egress = objs[("NetworkPolicy", f"allow-report-api-to-{name}-egress")]
        assert egress["metadata"]["annotations"]["imageflow.io/source"] == f"workloads.yaml#workloads[8].{source}"


_REPORT_USES = [
    "{workload: postgresql, port: sql}",
    "{workload: backend-api, port: grpc, scheme: grpc, env: BACKEND_GRPC_URL}",
    "{workload: triton, port: http, scheme: http, path: /v2}",
    "{minio: {buckets: [processed-images], access: r}}",
    "{kafka: {consume: [image-results]}}",
    "{postgresql: {database: imageflow, role: imageflow}}",
]


@pytest.mark.parametrize(
    ("dropped", "removed", "changed", "variables"),
    [
        (
            2,
            {
                ("NetworkPolicy", "imageflow-backend", "allow-report-api-to-triton-http-egress"),
                ("NetworkPolicy", "imageflow-inference", "allow-report-api-to-triton-http-ingress"),
            },
            set(),
            {"TRITON_HTTP_ADDRESS"},
        ),
        (  # its MinIO user goes: the Secrets, the policy document and the bucket job's lines
            3,
            {
                ("ExternalSecret", "imageflow-backend", "minio-report-api"),
                ("ExternalSecret", "imageflow-storage", "minio-report-api"),
                ("NetworkPolicy", "imageflow-backend", "allow-report-api-to-minio-egress"),
                ("NetworkPolicy", "imageflow-storage", "allow-report-api-to-minio-ingress"),
            },
            {("ConfigMap", "imageflow-storage", "minio-policies"), ("Job", "imageflow-storage", "minio-buckets")},
            {"MINIO_ENDPOINT", "MINIO_REGION", "MINIO_ACCESS_KEY_FILE", "MINIO_SECRET_KEY_FILE"},
        ),
        (
            4,
            {("NetworkPolicy", "imageflow-backend", "allow-report-api-to-kafka-egress")},
            {("ConfigMap", "imageflow-monitoring", "prometheus-config")},  # its consumer group's lag alert
            {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_GROUP_ID"},
        ),
        (  # the role's Secret stays: the backend connects as the same role in the same namespace
            5,
            {
                ("NetworkPolicy", "imageflow-backend", "allow-report-api-to-database-egress"),
                ("NetworkPolicy", "imageflow-storage", "allow-report-api-to-database-ingress"),
            },
            set(),
            {"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"},
        ),
    ],
)
def test_removing_a_use_removes_exactly_its_variables_secrets_and_policies(
    features: Path, tmp_path: Path, dropped: int, removed: set[Any], changed: set[Any], variables: set[str]
) -> None:
    for profile in features.glob("*.yaml"):
        shutil.copy(profile, tmp_path)
    kept = "".join(f"      - {use}\n" for k, use in enumerate(_REPORT_USES) if k != dropped)
    (tmp_path / "child.yaml").write_text("extends: workloads\nworkloads:\n  - name: report-api\n    uses:\n" + kept)

    def keyed(profile: str) -> dict[tuple[str, str, str], Any]:
        found = objects(validated(tmp_path, profile)[2])
        for o in found:  # the annotation names the profile file and the use's index; compare the rest
            o["metadata"].get("annotations", {}).pop("imageflow.io/source", None)
        return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in found}

    before, after = keyed("workloads"), keyed("child")
    assert set(before) - set(after) == removed
    assert set(after) - set(before) == set()
    deployment = ("Deployment", "imageflow-backend", "report-api")
    assert {key for key in before if key in after and before[key] != after[key]} == {deployment} | changed

    def names(objs: dict[Any, Any]) -> list[str]:
        return [e["name"] for e in objs[deployment]["spec"]["template"]["spec"]["containers"][0]["env"]]

    assert [n for n in names(before) if n not in variables] == names(after)
    assert set(names(before)) >= variables


def test_a_per_node_workload_is_a_daemonset_on_every_node(features: Path) -> None:
    objs = _objects(features)
    daemon = objs[("DaemonSet", "node-exporter")]
    pod = daemon["spec"]["template"]["spec"]
    assert "replicas" not in daemon["spec"]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeSelector" not in pod
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["proc"]["hostPath"] == {"path": "/proc", "type": "Directory"}
    assert volumes["sys"]["hostPath"] == {"path": "/sys"}  # optional: no check that it exists
    assert objs[("Service", "node-exporter")]["spec"]["internalTrafficPolicy"] == "Local"
    assert ("PodDisruptionBudget", "node-exporter") not in objs
    assert ("Deployment", "node-exporter") not in objs and ("StatefulSet", "node-exporter") not in objs


def test_an_edge_component_takes_further_ports_and_env_for_one_place(features: Path, built: Any) -> None:
    """The backend runs on the edge VM and in the cluster: its gRPC port in both, and the gRPC
    gateway's address (`where: cluster`) only in the cluster, which alone reaches it."""
    vm0 = parse_all(built.files["compose/workloads/vm0/docker-compose.yaml"])[0]["services"]
    backend = vm0["backend-api"]
    assert "50051" in backend["expose"] and "GRPC_GATEWAY_URL" not in backend["environment"]
    objs = _objects(features)
    container = objs[("Deployment", "backend-api")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GRPC_GATEWAY_URL"] == "http://grpc-gateway.imageflow-processing.svc.cluster.local:8080"
    assert {"name": "grpc", "containerPort": 50051, "protocol": "TCP"} in container["ports"]
    service = objs[("Service", "backend-api")]["spec"]["ports"]
    assert {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"} in service


def test_the_edge_gateway_routes_to_the_vm_workload_and_passes_nginx_t(built: Any, tmp_path: Path) -> None:
    conf = built.files["compose/workloads/vm0/nginx/api-gateway.conf"]
    assert "location ^~ /notify/ {" in conf and "proxy_pass http://notifier:8090;" in conf
    assert "proxy_read_timeout 1500ms;" in conf  # the route's 1.5s, in a unit nginx reads
    vm0 = parse_all(built.files["compose/workloads/vm0/docker-compose.yaml"])[0]["services"]
    assert vm0["api-gateway"]["depends_on"]["notifier"] == {"condition": "service_started"}
    modsecurity = built.files["compose/workloads/vm0/nginx/modsecurity.conf"]
    result = nginx_test(conf, tmp_path, ["backend-api", "web-ui", "notifier"], modsecurity)
    assert result.returncode == 0, result.stderr


def test_the_docs_list_the_workloads_and_every_exception(built: Any) -> None:
    readme = built.files["docs/workloads/README.md"]
    assert "| `camera-streams` | namespace `imageflow-backend` | stateless, blue-green |" in readme
    assert (
        "| `triton` | hostPath /srv/imageflow/models | the model repository is synced to the GPU node's disk |"
        in readme
    )
    assert "| `postgresql` | runs as user 999 |" in readme
    assert "| `imageflow-storage` | `postgresql-credentials` | `password` | workload |" in readme


# ---- bad values, each refused with a located message -----------------------------------


def _problems(features: Path, tmp_path: Path, text: str) -> list[str]:
    """The problems of a profile extending the feature profile."""
    for profile in features.glob("*.yaml"):
        shutil.copy(profile, tmp_path)
    (tmp_path / "child.yaml").write_text("extends: workloads\n" + text)
    try:
        topology(load_profile(tmp_path, "child"))
    except ValidationFailed as exc:
        return [str(p).replace(str(tmp_path) + "/", "") for p in exc.problems]
    return []


def _workload(name: str, body: str) -> str:
    return f"workloads:\n  - name: {name}\n" + "".join(f"    {line}\n" for line in body.strip().splitlines())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            _workload("evaluator", "env:\n  - {name: DB_PASSWORD, secret: {name: nope}}"),
            [
                "child.yaml:5:44 workloads[3].env[1].secret.name: Secret 'nope' is not declared in "
                "secrets.workload_secrets (defined: backend-session, notifier-token, postgresql-credentials)"
            ],
        ),
        (
            _workload("evaluator", "env:\n  - {name: DB_PASSWORD, secret: {key: pass}}"),
            [
                "child.yaml:5:43 workloads[3].env[1].secret.key: Secret 'postgresql-credentials' has no key 'pass' "
                "(defined: password)"
            ],
        ),
        (
            _workload("evaluator", "env:\n  - {name: DB_ADDRESS, endpoint: {port: postgres}}"),
            [
                "child.yaml:5:45 workloads[3].env[0].endpoint.port: workload 'postgresql' has no port 'postgres' "
                "(defined: sql)"
            ],
        ),
        (
            _workload("evaluator", "env:\n  - {name: DB_ADDRESS, endpoint: {workload: mysql}}"),
            [
                "child.yaml:5:49 workloads[3].env[0].endpoint.workload: 'mysql' is not another workload or seed "
                "service (defined: ai-detection, backend-api, camera-streams, database, filter, grpc-gateway, "
                "node-exporter, "
                "notifier, postgresql, redis, report-api, resize, triton, vm1-exporter, web-ui)"
            ],
        ),
        (
            _workload("evaluator", "env:\n  - {name: DB_ADDRESS, value: x, endpoint: {port: sql}}"),
            [
                "child.yaml:5:9 workloads[3].env[0]: give exactly one of value, secret, file, endpoint "
                "(got value, endpoint)"
            ],
        ),
        (
            _workload("evaluator", "env:\n  - {name: API_TOKEN, value: abc}"),
            [
                "child.yaml:5:34 workloads[3].env[9].value: API_TOKEN looks like a credential: take it from a Secret "
                "(secret: {name, key})"
            ],
        ),
        (
            _workload(
                "probe",
                "namespace: imageflow-backend\nimage: x/y:1\nresources: {requests: {cpu: 1, memory: 1Gi}, "
                "limits: {cpu: 1, memory: 1Gi}}\nports:\n  - {name: web, port: 80}\n  - {name: web, port: 81}",
            ),
            [
                "child.yaml:9:16 workloads[9].ports[1].name: duplicate port name 'web' "
                "(also at workloads[9].ports[0].name)"
            ],
        ),
        (
            _workload("triton", "volumes:\n  - {name: models, host_path: {path: /srv/models, $unset: [reason]}}"),
            ["child.yaml:5:55 workloads[1].volumes[0].host_path.reason: is required: a child profile cannot unset it"],
        ),
        (
            _workload("postgresql", "probes:\n  readiness: {exec: pg_isready -U imageflow}"),
            ["child.yaml:5:25 workloads[0].probes.readiness.exec: must be a list, got 'pg_isready -U imageflow'"],
        ),
        (
            _workload("camera-streams", "ports:\n  - {name: rtsp, node_port: 8554}"),
            [
                "child.yaml:5:33 workloads[2].ports[0].node_port: 8554 is out of range: should be greater than or "
                "equal to 30000"
            ],
        ),
        (
            _workload("camera-streams", "ports:\n  - {name: rtsp, node_port: 30432}"),
            [
                "child.yaml:5:33 workloads[2].ports[0].node_port: duplicate node port 30432 (also at "
                "workloads[0].ports[0].node_port)"
            ],
        ),
        (
            _workload("evaluator", "volumes:\n  - {name: host, path: /host, host_path: {path: /srv, reason: x}}"),
            [
                "child.yaml:5:46 workloads[3].volumes[1].host_path: Pod Security 'restricted' in imageflow-processing "
                "refuses hostPath volumes: run the workload in a namespace with pod_security privileged "
                "(and its reason)"
            ],
        ),
        (  # one host, two routes: both ends are told
            _workload("camera-streams", "route: {host: app.imageflow.com}"),
            [
                "base.yaml:349:13 edge.web_ui.hosts[0]: 'app.imageflow.com' is workload camera-streams's host too; "
                "two routes on one host and gateway are merged in no defined order: give the web UI its own host",
                "child.yaml:4:19 workloads[2].route.host: 'app.imageflow.com' is the web UI's host too; two routes on "
                "one host and gateway are merged in no defined order: give workload camera-streams its own host",
            ],
        ),
        (
            _workload("camera-streams", "route: {host: www.example.com}"),
            [
                "child.yaml:4:19 workloads[2].route.host: 'www.example.com' is not one of the gateway's hosts "
                "(defined: api.imageflow.com, app.imageflow.com, streams.imageflow.com)"
            ],
        ),
        (  # the reference that can no longer resolve is the problem, where it is written
            _workload("postgresql", "ports:\n  - {name: sql, $unset: [node_port]}"),
            [
                "workloads.yaml:57:73 edge.backend_api.env[0].endpoint.port: backend-api runs on VM vm0 and "
                "postgresql in the cluster: give port 'sql' a node_port",
                "workloads.yaml:73:67 workloads[0].ports[0].node_port_from: only with a node_port",
                "workloads.yaml:223:73 workloads[5].env[1].endpoint.port: notifier runs on VM vm0 and postgresql in "
                "the cluster: give port 'sql' a node_port",
            ],
        ),
        (  # a node port that admits some VMs keeps their addresses: only the pod's node answers
            _workload("postgresql", "$unset: [node_type]"),
            [
                "workloads.yaml:73:67 workloads[0].ports[0].node_port_from: keeps the caller's address, so only "
                "the node running postgresql answers: place it on one node (a node_type that one node has)"
            ],
        ),
        (
            _workload("postgresql", "ports:\n  - {name: sql, node_port_from: [vm1]}"),
            [
                "workloads.yaml:57:73 edge.backend_api.env[0].endpoint.port: backend-api runs on VM vm0, which "
                "postgresql's port 'sql' does not admit (node_port_from: vm1)",
                "workloads.yaml:223:73 workloads[5].env[1].endpoint.port: notifier runs on VM vm0, which "
                "postgresql's port 'sql' does not admit (node_port_from: vm1)",
            ],
        ),
        (
            _workload("postgresql", "ports:\n  - {name: sql, node_port_from: [vm0, vm9]}"),
            ["child.yaml:5:43 workloads[0].ports[0].node_port_from[1]: VM 'vm9' is not defined in vms"],
        ),
        (
            _workload("vm1-exporter", "ports:\n  - {name: metrics, publish: {address: 127.0.0.1}}"),
            [
                "workloads.yaml:175:71 workloads[3].env[5].endpoint.port: vm1-exporter's port 'metrics' is not "
                "published beyond VM vm1: publish it on the VM's address",
                "workloads.yaml:251:21 workloads[6].metrics.port: vm1-exporter runs on VM vm1: publish port "
                "'metrics' on the VM's address (publish.address) for Prometheus to scrape it",
            ],
        ),
        (
            _workload("evaluator", "ports: [{name: metrics, $remove: true}]\nprobes: {$unset: [liveness]}"),
            [
                "child.yaml:5:13 workloads[3].probes: no TCP port to probe by default: give probes.liveness "
                "(an exec command, say)",
                "workloads.yaml:168:14 workloads[3].release: a canary splits the requests of http and grpc ports in "
                "the mesh: the workload has none",
            ],
        ),
        (  # release strategies: a stateless cluster workload's; a canary needs the mesh's callers
            _workload("postgresql", "release: {strategy: blue-green}"),
            ["child.yaml:4:14 workloads[0].release: only rolling for a stateful workload"],
        ),
        (
            _workload("redis", "release: {strategy: canary}"),
            ["child.yaml:4:14 workloads[4].release: only rolling on a VM (compose replaces the container)"],
        ),
        (
            _workload("camera-streams", "release: {strategy: canary, $unset: [active, blue_image]}"),
            [
                "child.yaml:4:14 workloads[2].release: a canary's weight holds for the mesh's callers, while the "
                "gateway's route would send every request to the stable pods: release it blue-green, or drop the "
                "route"
            ],
        ),
        (
            _workload("evaluator", "volumes:\n  - {name: tmp, path: /tmp/cache, scratch: {size_limit: 1Gi}}"),
            [
                "child.yaml:5:16 workloads[3].volumes[1].name: 'tmp' is the name of a volume every workload has: "
                "choose another"
            ],
        ),
        (
            _workload("redis", "replicas: 2\nports:\n  - {name: redis, publish: {port: 6379}}"),
            [
                "child.yaml:6:32 workloads[4].ports[0].publish: 2 replicas cannot all publish port 6379 on the VM: "
                "one replica, or no publish"
            ],
        ),
        (
            _workload("notifier", "route: {host: app.imageflow.com, path_prefix: /v1/}"),
            [
                "child.yaml:4:19 workloads[5].route.host: the edge VM's gateway serves 'api.imageflow.com', "
                "not 'app.imageflow.com'",
                "child.yaml:4:51 workloads[5].route.path_prefix: '/v1/' is the backend API's location on the "
                "gateway: choose another prefix",
            ],
        ),
        (
            _workload("evaluator", "vm: vm0"),
            ["child.yaml:3:5 workloads[3]: give exactly one of namespace (the cluster) or vm (a VM's compose stack)"],
        ),
        (
            _workload("redis", "vm: vm2"),
            [
                "child.yaml:4:9 workloads[4].vm: VM 'vm2' has no compose stack (defined: vm0, vm1); the compute VM "
                "runs the cluster: give a namespace instead",
                "workloads.yaml:222:65 workloads[5].env[0].endpoint.port: redis's port 'redis' is not published "
                "beyond VM vm2: publish it on the VM's address",
            ],
        ),
        (
            "workloads:\n  - {name: postgresql, $remove: true}\n",
            [
                "child.yaml:3:24 workloads: removes 'postgresql', still referenced by "
                "workloads[2].env[0].endpoint.workload (workloads.yaml:170:49), "
                "workloads[4].env[1].endpoint.workload (workloads.yaml:223:55), "
                "workloads[7].uses[0].workload (workloads.yaml:289:20), "
                "edge.backend_api.env[0].endpoint.workload (workloads.yaml:57:55)"
            ],
        ),
        (
            "secrets:\n  workload_secrets:\n    - {name: notifier-token, $remove: true}\n",
            [
                "child.yaml:4:30 secrets.workload_secrets: removes 'notifier-token', still referenced by "
                "workloads[5].env[2].secret.name (workloads.yaml:224:43)"
            ],
        ),
        (  # `where` is an edge component's, for a place it runs
            _workload("redis", "env:\n  - {name: MODE, value: cache, where: vm}"),
            [
                "child.yaml:5:43 workloads[4].env[0].where: only for an edge component, which may run in the "
                "cluster and on the edge VM; this runs in one place"
            ],
        ),
        (
            "processing:\n  services:\n    - name: resize\n      env:\n"
            "        - {name: MODE, value: fast, where: cluster}\n",
            [
                "child.yaml:6:44 processing.services[1].env[0].where: only for an edge component, which may run in "
                "the cluster and on the edge VM; this runs in one place"
            ],
        ),
        (
            "edge:\n  web_ui:\n    runs_on: [cluster]\n    env:\n      - {name: MODE, value: spa, where: vm}\n",
            [
                "child.yaml:6:41 edge.web_ui.env[0].where: never set: edge.web_ui does not run on the vm "
                "(runs_on: cluster)"
            ],
        ),
        (  # one name per place: the same name for each place is two variables, never both set
            "edge:\n  backend_api:\n    env:\n"
            "      - {name: MODE, value: edge, where: vm}\n"
            "      - {name: MODE, value: cluster, where: cluster}\n"
            "      - {name: DATABASE_NAME, value: imageflow, where: cluster}\n"
            "      - {name: DATABASE_NAME, value: other}\n",
            [
                "child.yaml:8:16 edge.backend_api.env[6].name: duplicate env name 'DATABASE_NAME' (also at "
                "edge.backend_api.env[5].name)"
            ],
        ),
        (  # an edge component's further ports: apart from `port` (http), and never exposed
            "edge:\n  backend_api:\n    ports:\n      - {name: http, port: 8000}\n"
            "      - {name: admin, port: 9000, node_port: 30900}\n",
            [
                "child.yaml:5:16 edge.backend_api.ports[1].name: 'http' is the name of `port`, the HTTP port: "
                "choose another",
                "child.yaml:5:28 edge.backend_api.ports[1].port: duplicate container port '8000/tcp' (also at "
                "edge.backend_api.port)",
                "child.yaml:6:46 edge.backend_api.ports[2].node_port: an edge component's further ports are reached "
                "in the cluster and on the edge VM's compose network only",
            ],
        ),
        (  # per-node: one pod on each of its nodes, so nothing that counts, moves or pins pods
            "workloads:\n  - name: node-exporter\n    replicas: 2\n    release: {strategy: blue-green}\n"
            "    autoscaling: {min_replicas: 1, max_replicas: 2, target_cpu_utilization: 70}\n"
            "    availability: {survives: node-loss}\n",
            [
                "child.yaml:4:15 workloads[7].replicas: a per-node workload runs one pod on each of its nodes: "
                "no replicas",
                "child.yaml:5:14 workloads[7].release: a per-node workload runs one pod on each of its nodes: "
                "only rolling",
                "child.yaml:6:18 workloads[7].autoscaling: a per-node workload runs one pod on each of its nodes: "
                "nothing to scale or spread",
                "child.yaml:7:19 workloads[7].availability: a per-node workload runs one pod on each of its nodes: "
                "nothing to scale or spread",
            ],
        ),
        (
            "workloads:\n  - name: node-exporter\n    volumes:\n"
            "      - {name: data, path: /data, persistent: {size: 1Gi}}\n"
            "    ports:\n      - {name: metrics, node_port: 30910, node_port_from: [vm0]}\n",
            [
                "child.yaml:5:47 workloads[7].volumes[3].persistent: a per-node workload runs one pod on each of "
                "its nodes, and a claim cannot follow it to every node: use scratch or a host_path",
                "child.yaml:7:59 workloads[7].ports[0].node_port_from: a per-node workload runs one pod on each of "
                "its nodes, not on one node: drop node_port_from",
            ],
        ),
        (
            _workload("redis", "kind: per-node"),
            ["child.yaml:4:11 workloads[4].kind: per-node is a DaemonSet, in the cluster only"],
        ),
        (  # a host path some nodes lack: the kubelet's check dropped, which compose cannot do
            "workloads:\n  - name: notifier\n    volumes:\n      - {name: logs, host_path: {optional: true}}\n",
            [
                "child.yaml:5:44 workloads[5].volumes[2].host_path.optional: only in the cluster (compose refuses "
                "a missing bind source)"
            ],
        ),
        (  # a use is checked as an env endpoint is, located at the use (a child's list replaces the parent's)
            _workload(
                "report-api",
                "uses:\n  - {workload: mysql, port: sql}\n  - {workload: postgresql, port: postgres}\n"
                "  - {workload: triton, port: http, env: DATABASE_PASSWORD}",
            ),
            [
                "child.yaml:5:20 workloads[8].uses[0].workload: 'mysql' is not another workload or seed service "
                "(defined: ai-detection, backend-api, camera-streams, database, evaluator, filter, grpc-gateway, "
                "node-exporter, "
                "notifier, postgresql, redis, resize, triton, vm1-exporter, web-ui)",
                "child.yaml:6:38 workloads[8].uses[1].port: workload 'postgresql' has no port 'postgres' "
                "(defined: sql)",
                "child.yaml:7:45 workloads[8].uses[2].env: duplicate env name 'DATABASE_PASSWORD' (also at "
                "workloads[8].env[0].name)",
            ],
        ),
        (
            _workload("report-api", "uses:\n  - {workload: triton, port: grpc, where: cluster}"),
            [
                "child.yaml:5:47 workloads[8].uses[0].where: only for an edge component, which may run in the "
                "cluster and on the edge VM; this runs in one place"
            ],
        ),
        (  # the generator's names are refused for a slot's uses as for its env
            "processing:\n  services:\n    - name: resize\n      uses:\n"
            "        - {workload: triton, port: grpc, env: GRPC_PORT}\n",
            [
                "child.yaml:6:47 processing.services[1].uses[0].env: GRPC_PORT is set by the generator for resize "
                "(GRPC_PORT, OTEL_*)"
            ],
        ),
        (  # a store's use names what the store declares, at most with the access it grants
            _workload(
                "report-api",
                "uses:\n  - {minio: {buckets: [processed-images, thumbnails], access: r}}\n"
                "  - {minio: {buckets: [system-logs], access: rw}}\n"
                "  - {kafka: {produce: [image-jobs], consume: [image-verdicts]}}",
            ),
            [
                "child.yaml:5:46 workloads[8].uses[0].minio.buckets[1]: bucket 'thumbnails' is not declared in "
                "storage.minio.buckets (defined: database-backups, processed-images, raw-images, system-logs)",
                "child.yaml:6:50 workloads[8].uses[1].minio.access: rw is wider than bucket 'system-logs' grants "
                "the platform (r)",
                "child.yaml:7:51 workloads[8].uses[2].kafka.consume[0]: topic 'image-verdicts' is not declared in "
                "messaging.kafka.topics (defined: image-jobs, image-results, system-logs)",
            ],
        ),
        (  # one target per use; a store's use has no port, scheme or variable name of its own
            _workload(
                "report-api",
                "uses:\n  - {workload: triton, port: http, minio: {buckets: [raw-images], access: r}}\n"
                "  - {kafka: {consume: [image-jobs]}, env: JOBS}\n  - {kafka: {}}",
            ),
            [
                "child.yaml:5:9 workloads[8].uses[0]: give exactly one of workload, minio, kafka, postgresql (got "
                "workload, minio)",
                "child.yaml:6:9 workloads[8].uses[1]: env: only for a workload's port",
                "child.yaml:7:17 workloads[8].uses[2].kafka: name the topics it produces to or consumes (produce, "
                "consume)",
            ],
        ),
        (  # the store's variables are the generator's where the workload uses the store
            _workload(
                "report-api",
                "uses:\n  - {minio: {buckets: [raw-images], access: r}}\n"
                'env:\n  - {name: MINIO_ENDPOINT, value: "http://elsewhere:9000"}',
            ),
            [
                "child.yaml:7:16 workloads[8].env[1].name: MINIO_ENDPOINT: MINIO_* is set by the generator for "
                "the workload's use of minio"
            ],
        ),
        (  # a use of PostgreSQL names a declared database, as a role it grants; one per workload
            _workload(
                "report-api",
                "uses:\n  - {postgresql: {database: reports, role: imageflow}}\n"
                "  - {postgresql: {database: imageflow, role: reader}}",
            ),
            [
                "child.yaml:5:33 workloads[8].uses[0].postgresql.database: database 'reports' is not declared in "
                "storage.postgresql.databases (defined: imageflow)",
                "child.yaml:6:9 workloads[8].uses[1]: a second use of PostgreSQL: its PG* variables name one "
                "database and role (use another workload, or one role that the databases grant)",
                "child.yaml:6:50 workloads[8].uses[1].postgresql.role: database 'imageflow' grants no role 'reader' "
                "(defined: imageflow): add it to the database's grants",
            ],
        ),
        (  # the store's roles are the application's; its backups need a bucket they may write and prune
            "storage:\n  postgresql:\n    databases:\n      - {name: imageflow, owner: postgres}\n"
            "    backup: {bucket: system-logs}\n",
            [
                "base.yaml:336:50 edge.backend_api.uses[3].postgresql.role: database 'imageflow' grants no role "
                "'imageflow' (defined: postgres): add it to the database's grants",
                "child.yaml:5:34 storage.postgresql.databases[0].owner: 'postgres' is PostgreSQL's own (or the "
                "backup job's) role: name the application's role",
                "child.yaml:6:22 storage.postgresql.backup.bucket: the backups write and delete dumps: bucket "
                "'system-logs' must grant rw (it grants r)",
                "workloads.yaml:231:50 workloads[5].uses[2].postgresql.role: database 'imageflow' grants no role "
                "'imageflow' (defined: postgres): add it to the database's grants",
                "workloads.yaml:294:50 workloads[8].uses[5].postgresql.role: database 'imageflow' grants no role "
                "'imageflow' (defined: postgres): add it to the database's grants",
            ],
        ),
        (  # calls on one VM that go round: compose would start none of them
            _workload("redis", "uses:\n  - {workload: notifier, port: api}"),
            [
                "child.yaml:5:9 workloads[4].uses[0]: a start-up cycle on vm0: notifier -> redis -> notifier; "
                "compose starts each service after those it calls on its VM, so none of these would start: drop "
                "one of the calls"
            ],
        ),
        (  # a VM reaches Kafka over its network's listener: the edge VM over the VPN
            "messaging:\n  kafka:\n    listeners:\n      - {name: VPN, network: private, purpose: moved}\n",
            [
                "base.yaml:335:17 edge.backend_api.uses[2].kafka: backend-api on VM vm0 reaches Kafka over the vpn "
                "network: declare a listener with network vpn in messaging.kafka.listeners",
                "workloads.yaml:230:17 workloads[5].uses[1].kafka: notifier on VM vm0 reaches Kafka over the vpn "
                "network: declare a listener with network vpn in messaging.kafka.listeners",
            ],
        ),
        (  # the API gateway is reached by its public host name, not by an endpoint
            _workload("redis", "env:\n  - {name: GATEWAY, endpoint: {workload: api-gateway, port: http}}"),
            [
                "child.yaml:5:46 workloads[4].env[0].endpoint.workload: 'api-gateway' is not another workload or "
                "seed service (defined: ai-detection, backend-api, camera-streams, database, evaluator, filter, "
                "grpc-gateway, "
                "node-exporter, notifier, postgresql, report-api, resize, triton, vm1-exporter, web-ui)"
            ],
        ),
    ],
)
def test_a_bad_value_is_refused_where_it_is_written(
    features: Path, tmp_path: Path, text: str, expected: list[str]
) -> None:
    assert _problems(features, tmp_path, text) == expected


def test_a_workload_without_an_exception_stays_out_of_a_privileged_namespace(features: Path, tmp_path: Path) -> None:
    problems = _problems(features, tmp_path, _workload("evaluator", "namespace: imageflow-inference"))
    assert problems == [
        "child.yaml:4:16 workloads[3].namespace: imageflow-inference is Pod Security 'privileged' for what runs "
        "there; a workload that needs no exception (no hostPath, not root) belongs in a restricted namespace"
    ]


def test_every_example_in_the_workload_docs_is_valid(features: Path, tmp_path: Path) -> None:
    """docs/workloads.md: each YAML example, laid over a minimal workload, passes the model; an
    example of a seed service's keys passes as a child of the feature profile."""
    import re
    import textwrap

    from imageflow_gen.model.workloads import Workload

    text = (REPO / "docs" / "workloads.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    minimal = {
        "name": "example",
        "namespace": "imageflow-backend",
        "image": "example/image:1.0",
        "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
    }
    for block in blocks:
        data = YAML(typ="safe", pure=True).load(textwrap.dedent(block))  # YAML 1.2, as profiles are read
        if "edge" in data or "processing" in data:
            assert _problems(features, tmp_path, textwrap.dedent(block)) == []
            continue
        if "storage" in data:  # a store, as prod has it
            prod = tmp_path / "prod-child"
            prod.mkdir(exist_ok=True)
            for profile in PROFILES.glob("*.yaml"):
                shutil.copy(profile, prod)
            (prod / "child.yaml").write_text("extends: prod\n" + textwrap.dedent(block))
            topology(load_profile(prod, "child"))
            continue
        item = data["workloads"][0] if "workloads" in data else data
        Workload.model_validate({**minimal, **item})


def _renamed(features: Path, tmp_path: Path, old: str, new: str) -> list[str]:
    """The problems of the feature profile with one workload renamed."""
    for profile in features.glob("*.yaml"):
        shutil.copy(profile, tmp_path)
    text = (tmp_path / "workloads.yaml").read_text()
    (tmp_path / "child.yaml").write_text(text.replace(f"  - name: {old}\n", f"  - name: {new}\n"))
    with pytest.raises(ValidationFailed) as caught:
        validated(tmp_path, "child")
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def test_a_workload_named_like_a_seed_service_is_refused(features: Path, tmp_path: Path) -> None:
    """An endpoint names a workload or a seed service: one name for both would be ambiguous."""
    assert _renamed(features, tmp_path, "camera-streams", "resize") == [
        "child.yaml:130:11 workloads[2].name: 'resize' is the name of processing.services[1]; an endpoint naming "
        "it would be ambiguous: rename the workload"
    ]


def test_a_workload_whose_objects_clash_with_the_seeds_is_refused(features: Path, tmp_path: Path) -> None:
    """Two objects of one kind and name in one namespace: camera-streams renamed `kafka`, whose
    Service the seed's Kafka has in imageflow-backend."""
    assert _renamed(features, tmp_path, "camera-streams", "kafka") == [
        "base.yaml:180:5 messaging.kafka: emits the Service imageflow-backend/kafka, which workloads[2].ports "
        "emits too: rename one"
    ]


def test_availability_is_checked_for_workloads_as_for_the_seed_services(features: Path, tmp_path: Path) -> None:
    for profile in features.glob("*.yaml"):
        shutil.copy(profile, tmp_path)
    (tmp_path / "child.yaml").write_text(
        "extends: workloads\n" + _workload("camera-streams", "availability: {survives: node-loss}")
    )
    with pytest.raises(ValidationFailed) as caught:
        build(tmp_path, "child", CRDS)
    assert [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems] == [
        f"child.yaml:4:19 workloads[2].availability: Deployment camera-streams-{colour} must survive the loss of "
        f"a node (availability: node-loss), but {why}"
        for colour in ("blue", "green")  # each colour of its blue-green release
        for why in (
            "it has 1 replica; it needs two or more",
            "only k3s-worker-01 may run it (node-type=cpu-intensive (k3s-worker-01))",
        )
    ]


def test_a_seed_slot_renders_as_the_typed_workload_that_says_the_same(tmp_path: Path) -> None:
    """One code path: prod's grpc-gateway (a processing service) and a typed workload written
    with the same image, port, uses, probes, resources, placement and replicas get the same pod,
    but for the telemetry the slot adds after the rest (OTEL_* env); the same for prod's web-ui
    (an edge component in the cluster)."""
    for profile in PROFILES.glob("*.yaml"):
        shutil.copy(profile, tmp_path)
    probes = (
        "probes:\n"
        "  liveness: {{{check}: {{port: {port}{path}}}, initial_delay: 10}}\n"
        "  readiness: {{{check}: {{port: {port}{path}}}, initial_delay: 5}}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "extends: prod\n"
        + _workload(
            "gateway-twin",
            "namespace: imageflow-processing\n"
            "image: ghcr.io/imageflowcanvas/grpc-gateway:1.0.0\n"
            "replicas: 2\n"
            "node_type: cpu-intensive\n"
            "ports: [{name: grpc, port: 8080, protocol: grpc}]\n"
            "env: [{name: GRPC_PORT, value: '8080'}]\n"
            "uses: [{kafka: {consume: [image-jobs], produce: [image-results]}}]\n"
            + probes.format(check="grpc", port="grpc", path="")
            + "resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}\n"
            + "availability: {survives: nothing, reason: one node}\n",
        )
        + _workload(
            "web-twin",
            "namespace: imageflow-web\n"
            "image: ghcr.io/imageflowcanvas/web-ui:1.0.0\n"
            "replicas: 2\n"
            "ports: [{name: http, port: 8080, protocol: http}]\n"
            + probes.format(check="http", port="http", path=", path: /")
            + "resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {cpu: 200m, memory: 64Mi}}\n"
            + "availability: {survives: node-loss}\n",
        )[len("workloads:\n") :]
    )
    found = {(o["kind"], o["metadata"]["name"]): o for o in objects(validated(tmp_path, "child")[2])}
    for slot, twin, wiring in (("grpc-gateway", "gateway-twin", True), ("web-ui", "web-twin", False)):
        pods = [found["Deployment", name]["spec"]["template"]["spec"] for name in (slot, twin)]
        slot_pod, twin_pod = pods
        (slot_container,), (twin_container,) = slot_pod.pop("containers"), twin_pod.pop("containers")
        assert slot_container.pop("name") == slot and twin_container.pop("name") == twin
        if wiring:
            typed_env = len(twin_container["env"])
            assert any(e["name"] == "KAFKA_BOOTSTRAP_SERVERS" for e in twin_container["env"])
            assert [e["name"] for e in slot_container["env"][typed_env:]] == ["OTEL_EXPORTER_OTLP_ENDPOINT"]
            slot_container["env"] = slot_container["env"][:typed_env]
            for e in twin_container["env"]:
                if e["name"] == "KAFKA_GROUP_ID":  # each is its own Kafka user, by its name
                    assert e["value"] == twin
                    e["value"] = slot
        spread = slot_pod.get("topologySpreadConstraints")
        if spread:  # selects each one's own pods
            assert spread[0]["labelSelector"] == {"matchLabels": {"app": slot}}
            twin_pod["topologySpreadConstraints"][0]["labelSelector"] = spread[0]["labelSelector"]
        assert (slot_container, slot_pod) == (twin_container, twin_pod)
        services = [found["Service", name]["spec"] for name in (slot, twin)]
        assert services[0]["ports"] == services[1]["ports"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "edge:\n  backend_api:\n    env:\n"
            "      - {name: INFERENCE_URL, endpoint: {workload: triton, port: http, scheme: http}}\n",
            "child.yaml:5:66 edge.backend_api.env[3].endpoint.port: backend-api runs on VM vm0 and triton in the "
            "cluster: give port 'http' a node_port",
        ),
        (
            "processing:\n  services:\n    - name: resize\n      env:\n"
            "        - {name: MINIO_ENDPOINT, value: 'http://elsewhere:9000'}\n",
            "child.yaml:6:18 processing.services[1].env[0].name: MINIO_ENDPOINT: MINIO_* is set by the generator "
            "for the workload's use of minio",
        ),
        (
            "processing:\n  services:\n    - name: ai-detection\n      env:\n"
            "        - {name: MODEL_TOKEN, secret: {name: model-store, key: token}}\n",
            "child.yaml:6:46 processing.services[2].env[1].secret.name: Secret 'model-store' is not declared in "
            "secrets.workload_secrets (defined: backend-session, notifier-token, postgresql-credentials)",
        ),
    ],
    ids=["vm-side-endpoint-needs-a-node-port", "wired-name", "unknown-secret"],
)
def test_a_seed_service_env_is_checked_as_a_workloads(features: Path, tmp_path: Path, text: str, expected: str) -> None:
    """The seed's services' own env: checked where each placement runs, and never over the names
    the generator sets for them."""
    assert _problems(features, tmp_path, text) == [expected]
