"""Prometheus in imageflow-monitoring: what it scrapes is what the topology declares (the OTel
agent's metrics, each workload's `metrics`), its discovery may read exactly those namespaces'
pods, the policies admit exactly those scrapes, and promtool accepts its configuration."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CRDS, PROFILES, feature_profiles
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, validated
from imageflow_gen.plan.catalogue import SYNTHETIC, catalogue, selected
from imageflow_gen.plan.dashboards import dashboards
from imageflow_gen.plan.monitoring import alert_rules, targets
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate.tools import _named_files, find

PROFILE_NAMES = ("dev", "staging", "prod")


def _objects(profiles: Path, profile: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objects(validated(profiles, profile)[2])
    }


def _config(objs: dict[tuple[str, str, str], dict[str, Any]]) -> dict[str, Any]:
    return json.loads(objs["ConfigMap", "imageflow-monitoring", "prometheus-config"]["data"]["prometheus.yml"])


@pytest.fixture(scope="module")
def features() -> Path:
    return feature_profiles()


def test_it_scrapes_what_the_topology_declares(features: Path) -> None:
    objs = _objects(features, "workloads")
    jobs = {j["job_name"]: j for j in _config(objs)["scrape_configs"]}
    assert list(jobs) == [
        "prometheus",
        "otel-agent-metrics",
        "otel-agent-prometheus",
        "kube-state-metrics",
        "kubelet-cadvisor",
        "gateway-certificate",
        "minio-cluster",
        "minio-node",
        "minio-bucket",
        "triton",
        "vm1-exporter",
        "node-exporter",
    ]
    # In the cluster: the workload's pods, by its app label and the port's name, in its namespace.
    triton = jobs["triton"]
    assert triton["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["imageflow-inference"]}}]
    keep = [r for r in triton["relabel_configs"] if r.get("action") == "keep"]
    assert [(r["source_labels"][0], r["regex"]) for r in keep] == [
        ("__meta_kubernetes_pod_label_app", "triton"),
        ("__meta_kubernetes_pod_container_port_name", "metrics"),
    ]
    # On a VM: the address the port is published on.
    assert jobs["vm1-exporter"]["static_configs"] == [{"targets": ["10.0.2.10:9308"]}]
    # The workloads without `metrics` are not scraped, whatever their ports are called.
    assert "camera-streams" not in jobs and "evaluator" not in jobs


def test_discovery_reads_only_the_scraped_namespaces_pods(features: Path) -> None:
    objs = _objects(features, "workloads")
    roles = {
        ns: o for (kind, ns, _), o in objs.items() if kind == "Role" and o["metadata"]["name"] == "prometheus-discovery"
    }
    assert sorted(roles) == [
        "imageflow-inference",
        "imageflow-monitoring",
        "imageflow-observability",
        "imageflow-storage",
    ]
    for ns, role in roles.items():
        assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
        binding = objs["RoleBinding", ns, "prometheus-discovery"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "prometheus", "namespace": "imageflow-monitoring"}
        ]
    # Cluster-wide: the nodes (node discovery) and their kubelets' metrics, nothing else.
    cluster = {name: o for (kind, _, name), o in objs.items() if kind.startswith("Cluster") and "prometheus" in name}
    assert set(cluster) == {"prometheus-kubelets"}
    role = objs["ClusterRole", "", "prometheus-kubelets"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
    ]
    assert {k for k, _, n in objs if n == "prometheus-kubelets"} == {"ClusterRole", "ClusterRoleBinding"}
    pod = objs["StatefulSet", "imageflow-monitoring", "prometheus"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "prometheus" and pod["automountServiceAccountToken"] is True


def test_the_policies_admit_exactly_the_scrapes(features: Path) -> None:
    objs = _objects(features, "workloads")
    policies = {
        name: o
        for (kind, _, name), o in objs.items()
        if kind == "NetworkPolicy" and name.startswith("allow-prometheus")
    }
    assert sorted(policies) == [
        "allow-prometheus-to-api-server-egress",
        "allow-prometheus-to-blackbox-exporter-egress",
        "allow-prometheus-to-blackbox-exporter-ingress",
        "allow-prometheus-to-kube-state-metrics-egress",
        "allow-prometheus-to-kube-state-metrics-ingress",
        "allow-prometheus-to-kubelet-cadvisor-egress",
        "allow-prometheus-to-minio-egress",
        "allow-prometheus-to-minio-ingress",
        "allow-prometheus-to-node-exporter-egress",
        "allow-prometheus-to-node-exporter-ingress",
        "allow-prometheus-to-triton-egress",
        "allow-prometheus-to-triton-ingress",
        "allow-prometheus-to-vm1-exporter-egress",
    ]
    ingress = policies["allow-prometheus-to-triton-ingress"]["spec"]
    assert ingress["podSelector"] == {"matchLabels": {"app": "triton"}}
    assert ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8002}]
    vm = policies["allow-prometheus-to-vm1-exporter-egress"]["spec"]["egress"][0]
    assert vm["to"] == [{"ipBlock": {"cidr": "10.0.2.10/32"}}] and vm["ports"] == [{"protocol": "TCP", "port": 9308}]


def _promtool() -> str:
    promtool = find("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make tools` builds it")
    return str(promtool)


def _prometheus_files(features: Path, profile: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The Prometheus ConfigMap's files, written into a folder of `tmp_path`; the Secrets' files
    it names, as mounted beside it, as empty stand-ins."""
    folder = tmp_path / "config"
    folder.mkdir()
    data: dict[str, str] = _objects(features, profile)["ConfigMap", "imageflow-monitoring", "prometheus-config"]["data"]
    for name, content in data.items():
        (folder / name).write_text(content)
    for path in _named_files(json.loads(data["prometheus.yml"])):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).touch()
    return folder, data


@pytest.mark.parametrize("profile", [*PROFILE_NAMES, "workloads"])
def test_promtool_accepts_the_configuration_and_rules(features: Path, profile: str, tmp_path: Path) -> None:
    folder, data = _prometheus_files(features, profile, tmp_path)
    assert set(data) == {"prometheus.yml", "alerts.yml"}
    assert json.loads(data["prometheus.yml"])["rule_files"] == ["alerts.yml"]  # beside it, wherever it is
    result = subprocess.run(
        [_promtool(), "check", "config", "--lint-fatal", "prometheus.yml"], capture_output=True, text=True, cwd=folder
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def _test_rules(
    folder: Path, input_series: list[Any], alert_rule_test: list[Any], promql_expr_test: list[Any] | None = None
) -> str:
    """promtool test rules on the rule file in `folder`: one test, minutes apart (alerts, and
    expressions evaluated on the same series); its output."""
    test = {"interval": "1m", "input_series": input_series, "alert_rule_test": alert_rule_test}
    if promql_expr_test:
        test["promql_expr_test"] = promql_expr_test
    tests = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": [test]}
    (folder / "rules.test.yml").write_text(json.dumps(tests))
    result = subprocess.run(
        [_promtool(), "test", "rules", "rules.test.yml"], capture_output=True, text=True, cwd=folder
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_alert_rules_fire_as_promtool_evaluates_them(features: Path, tmp_path: Path) -> None:
    """promtool test rules: a pod of Triton that stops answering raises ScrapeTargetDown after
    five minutes (not before); a VM exporter with no series at all raises ScrapeTargetMissing
    after ten; the node exporters, answering, raise nothing."""
    folder, data = _prometheus_files(features, "workloads", tmp_path)
    rules = {(r["alert"], r["labels"]["job"]): r for r in json.loads(data["alerts.yml"])["groups"][0]["rules"]}
    assert {job for _, job in rules} == {
        "kube-state-metrics",
        "otel-agent-metrics",
        "otel-agent-prometheus",
        "triton",
        "vm1-exporter",
        "node-exporter",
        "kubelet-cadvisor",
        "gateway-certificate",
        "minio-cluster",
        "minio-node",
        "minio-bucket",
    }

    def expected(alert: str, job: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        rule = rules[alert, job]
        return {"exp_labels": {**rule["labels"], **(labels or {})}, "exp_annotations": rule["annotations"]}

    triton = {"job": "triton", "instance": "10.42.0.7:8002", "pod": "triton-7d9f"}
    series = ",".join(f'{k}="{v}"' for k, v in triton.items())
    stdout = _test_rules(
        folder,
        input_series=[
            {"series": f"up{{{series}}}", "values": "0x15"},
            {"series": 'up{job="node-exporter", instance="10.42.0.9:9100"}', "values": "1x15"},
        ],
        alert_rule_test=[
            {"eval_time": "4m", "alertname": "ScrapeTargetDown", "exp_alerts": []},
            {
                "eval_time": "6m",
                "alertname": "ScrapeTargetDown",
                "exp_alerts": [expected("ScrapeTargetDown", "triton", triton)],
            },
            {"eval_time": "9m", "alertname": "ScrapeTargetMissing", "exp_alerts": []},
            {
                "eval_time": "11m",
                "alertname": "ScrapeTargetMissing",
                "exp_alerts": [
                    expected("ScrapeTargetMissing", job)
                    for job in (
                        "kube-state-metrics",
                        "kubelet-cadvisor",
                        "gateway-certificate",
                        "minio-cluster",
                        "minio-node",
                        "minio-bucket",
                        "otel-agent-metrics",
                        "otel-agent-prometheus",
                        "vm1-exporter",
                    )
                ],
            },
        ],
    )
    assert "SUCCESS" in stdout


def test_the_workload_alerts_fire_on_kube_state_metrics_series(features: Path, tmp_path: Path) -> None:
    """promtool test rules on kube-state-metrics' series: a crash loop, a Deployment short of
    replicas, an autoscaler at its maximum, each for 15 minutes, and the GPU node not ready for
    5, raise their alerts; the same outside the topology's namespaces, or a node without a GPU,
    raise nothing."""
    folder, data = _prometheus_files(features, "workloads", tmp_path)
    groups = {g["name"]: g["rules"] for g in json.loads(data["alerts.yml"])["groups"]}
    rules = {(r["alert"], r["annotations"]["summary"]): r for r in groups["imageflow-workloads"]}
    assert sorted({alert for alert, _ in rules}) == [
        "AutoscalerAtMaximum",
        "ContainerCrashLooping",
        "GpuNodeNotReady",
        "WorkloadReplicasUnavailable",
    ]

    def alert(name: str, labels: dict[str, str], summary: str = "") -> dict[str, Any]:
        (rule,) = [r for (a, s), r in rules.items() if a == name and (not summary or s == summary)]
        exp = {**rule["labels"], **labels}
        annotations = {
            k: v.replace("{{ $labels.", "{").replace(" }}", "}").format(**labels)
            for k, v in rule["annotations"].items()
        }
        return {"exp_labels": exp, "exp_annotations": annotations}

    ksm = {"job": "kube-state-metrics", "instance": "10.42.0.5:8080"}

    def series(name: str, values: str, **labels: str) -> dict[str, str]:
        inner = ", ".join(f'{k}="{v}"' for k, v in {**labels, **ksm}.items())
        return {"series": f"{name}{{{inner}}}", "values": values}

    crash = {"namespace": "imageflow-processing", "pod": "evaluator-5f7c", "container": "evaluator"}
    evaluator = {"namespace": "imageflow-processing", "deployment": "evaluator"}
    hpa = {"namespace": "imageflow-processing", "horizontalpodautoscaler": "evaluator"}
    gpu = {"node": "k3s-worker-02", "condition": "Ready", "status": "true"}
    _test_rules(
        folder,
        input_series=[
            series("kube_pod_container_status_waiting_reason", "1x30", reason="CrashLoopBackOff", **crash),
            series(
                "kube_pod_container_status_waiting_reason",
                "1x30",
                reason="CrashLoopBackOff",
                namespace="kube-system",
                pod="coredns-1",
                container="coredns",
            ),
            series("kube_deployment_status_replicas_available", "1x30", **evaluator),
            series("kube_deployment_spec_replicas", "2x30", **evaluator),
            series("kube_horizontalpodautoscaler_status_current_replicas", "4x30", **hpa),
            series("kube_horizontalpodautoscaler_spec_max_replicas", "4x30", **hpa),
            series("kube_node_status_condition", "0x30", **gpu),
            series("kube_node_status_condition", "0x30", **{**gpu, "node": "k3s-worker-01"}),
        ],
        alert_rule_test=[
            {"eval_time": "4m", "alertname": "GpuNodeNotReady", "exp_alerts": []},
            {
                "eval_time": "6m",
                "alertname": "GpuNodeNotReady",
                "exp_alerts": [alert("GpuNodeNotReady", {**gpu, **ksm})],
            },
            *[{"eval_time": "14m", "alertname": a, "exp_alerts": []} for a in ("ContainerCrashLooping",)],
            {
                "eval_time": "16m",
                "alertname": "ContainerCrashLooping",
                "exp_alerts": [alert("ContainerCrashLooping", {**crash, "reason": "CrashLoopBackOff", **ksm})],
            },
            {
                "eval_time": "16m",
                "alertname": "WorkloadReplicasUnavailable",
                "exp_alerts": [
                    alert("WorkloadReplicasUnavailable", {**evaluator, **ksm}, "A Deployment is short of replicas")
                ],
            },
            {
                "eval_time": "16m",
                "alertname": "AutoscalerAtMaximum",
                "exp_alerts": [alert("AutoscalerAtMaximum", {**hpa, **ksm})],
            },
        ],
    )


def test_a_minio_drive_over_the_capacity_threshold_raises_an_alert(features: Path, tmp_path: Path) -> None:
    """promtool test rules: a drive 85% full for 15 minutes raises MinioDriveFull; one 79% full,
    or one of another job's series, does not."""
    folder, data = _prometheus_files(features, "workloads", tmp_path)
    groups = {g["name"]: g["rules"] for g in json.loads(data["alerts.yml"])["groups"]}
    (rule,) = groups["imageflow-storage"]
    full = {"job": "minio-node", "instance": "10.42.0.8:9000", "server": "minio-0:9000", "drive": "/data1"}
    calm = {**full, "drive": "/data2"}

    def series(name: str, values: str, labels: dict[str, str]) -> dict[str, str]:
        inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
        return {"series": f"{name}{{{inner}}}", "values": values}

    _test_rules(
        folder,
        input_series=[
            series("minio_node_drive_total_bytes", "100x30", full),
            series("minio_node_drive_used_bytes", "85x30", full),
            series("minio_node_drive_total_bytes", "100x30", calm),
            series("minio_node_drive_used_bytes", "79x30", calm),
            series("minio_node_drive_total_bytes", "100x30", {**full, "job": "elsewhere"}),
            series("minio_node_drive_used_bytes", "99x30", {**full, "job": "elsewhere"}),
        ],
        alert_rule_test=[
            {"eval_time": "14m", "alertname": "MinioDriveFull", "exp_alerts": []},
            {
                "eval_time": "16m",
                "alertname": "MinioDriveFull",
                "exp_alerts": [
                    {
                        "exp_labels": {**rule["labels"], **full},
                        "exp_annotations": {
                            "summary": "A MinIO drive is over 80% full",
                            "description": "Drive /data1 of MinIO server minio-0:9000 has been over 80% full "
                            "for 15m (the capacity check's threshold).",
                        },
                    }
                ],
            },
        ],
    )


def test_minio_is_scraped_with_its_token_and_checked_by_its_ca() -> None:
    objs = _objects(PROFILES, "prod")
    jobs = {j["job_name"]: j for j in _config(objs)["scrape_configs"]}
    for part in ("cluster", "node", "bucket"):
        job = jobs[f"minio-{part}"]
        assert job["metrics_path"] == f"/minio/v2/metrics/{part}" and job["scheme"] == "https"
        assert job["authorization"] == {"type": "Bearer", "credentials_file": "../secrets/minio-metrics-token/token"}
        assert job["tls_config"] == {
            "ca_file": "../secrets/minio-ca/ca.crt",
            "server_name": "minio.imageflow-storage.svc.cluster.local",
        }
    pod = objs["StatefulSet", "imageflow-monitoring", "prometheus"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/etc/prometheus/config"] == "config"
    assert mounts["/etc/prometheus/secrets/minio-metrics-token"] == "secret-minio-metrics-token"
    assert mounts["/etc/prometheus/secrets/minio-ca"] == "secret-minio-ca"
    # The token comes from the secret provider into Prometheus's namespace, like every Secret.
    assert ("ExternalSecret", "imageflow-monitoring", "minio-metrics-token") in objs
    assert ("ExternalSecret", "imageflow-monitoring", "minio-ca") in objs


def test_kube_state_metrics_reads_the_kinds_it_reports_and_nothing_else(features: Path) -> None:
    objs = _objects(features, "workloads")
    role = objs["ClusterRole", "", "kube-state-metrics"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "statefulsets"], "verbs": ["list", "watch"]},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["list", "watch"]},
    ]
    binding = objs["ClusterRoleBinding", "", "kube-state-metrics"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kube-state-metrics", "namespace": "imageflow-monitoring"}
    ]
    (container,) = objs["Deployment", "imageflow-monitoring", "kube-state-metrics"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert "--resources=daemonsets,deployments,horizontalpodautoscalers,nodes,pods,statefulsets" in container["args"]
    egress = objs["NetworkPolicy", "imageflow-monitoring", "allow-kube-state-metrics-to-api-server-egress"]["spec"]
    assert egress["egress"][0]["ports"] == [{"protocol": "TCP", "port": 6443}]


def test_monitoring_can_be_off(tmp_path: Path) -> None:
    """One line turns it off: Prometheus and everything there only for it (kube-state-metrics,
    the node exporters on the nodes and the VMs, the Secrets it reads) are gone."""
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "quiet.yaml").write_text("purpose: no metrics\nextends: prod\nobservability:\n  prometheus: null\n")
    objs = _objects(profiles, "quiet")
    assert not [key for key in objs if "prometheus" in key[2] or "exporter" in key[2] or "kube-state" in key[2]]
    assert not [key for key in objs if key[1] == "imageflow-monitoring" and key[0] != "NetworkPolicy"]
    files = build(profiles, "quiet", CRDS).files
    assert not [p for p, text in files.items() if p.startswith("compose/") and "node-exporter" in text]


def test_the_node_exporter_runs_on_every_node_and_both_vms() -> None:
    objs = _objects(PROFILES, "prod")
    daemon = objs["DaemonSet", "imageflow-observability", "node-exporter"]
    assert daemon["metadata"]["annotations"]["imageflow.io/pod-security-exemption"] == (
        "hostPath /proc: the node's kernel statistics; hostPath /sys: the node's hardware statistics; "
        "hostPath /: the node's file system usage"
    )
    pod = daemon["spec"]["template"]["spec"]
    assert [v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v] == ["/proc", "/sys", "/"]
    assert all(m["readOnly"] for m in pod["containers"][0]["volumeMounts"] if m["mountPath"].startswith("/host/"))
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    jobs = {j["job_name"]: j for j in _config(objs)["scrape_configs"]}
    assert jobs["node-exporter"]["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["imageflow-observability"]}
    files = build(PROFILES, "prod", CRDS).files
    for vm, address in (("vm0", "10.0.0.10"), ("vm1", "10.0.2.10")):
        assert jobs[f"{vm}-node-exporter"]["static_configs"] == [{"targets": [f"{address}:9100"]}]
        service = yaml.safe_load(files[f"compose/prod/{vm}/docker-compose.yaml"])["services"][f"{vm}-node-exporter"]
        assert service["ports"] == [f"{address}:9100:9100/tcp"]
        assert [(v["source"], v["target"], v["read_only"]) for v in service["volumes"]] == [
            ("/proc", "/host/proc", True),
            ("/sys", "/host/sys", True),
            ("/", "/host/root", True),
        ]
        assert service["healthcheck"]["test"][:2] == ["CMD", "wget"] and service["read_only"] is True
        egress = objs["NetworkPolicy", "imageflow-monitoring", f"allow-prometheus-to-{vm}-node-exporter-egress"]
        assert egress["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": f"{address}/32"}}]


def _refused(tmp_path: Path, child: str, key: str, parent: str = "dev") -> tuple[list[str], Any]:
    """The messages at `key` when a child of `parent` with the text `child` (profile c.yaml) is
    validated, and the first one's location."""
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "c.yaml").write_text(f"purpose: x\nextends: {parent}\n" + child)
    with pytest.raises(ImageflowError) as caught:
        validated(profiles, "c")
    found = [p for p in caught.value.problems if p.key == key]
    assert found, [(p.key, p.message) for p in caught.value.problems]
    return [p.message for p in found], found[0].location


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            "      namespace: imageflow-web\n",
            "observability.prometheus.node_exporter.namespace",
            "namespace imageflow-web is restricted: the node exporter mounts the node's /proc, /sys and /, which "
            "only the privileged level admits",
        ),
        (
            "      vms: [vm0, vm2]\n",
            "observability.prometheus.node_exporter.vms[1]",
            "VM 'vm2' has no compose stack (defined: vm0, vm1)",
        ),
        (
            "      port: 9092\n",
            "observability.prometheus.node_exporter.port",
            "port 9092 is published on vm1 by messaging.kafka.brokers[0].ports.VPN too",
        ),
    ],
)
def test_a_node_exporter_setting_is_checked_where_it_is_written(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    messages, where = _refused(tmp_path, "observability:\n  prometheus:\n    node_exporter:\n" + text, key)
    assert messages == [message]
    assert where.file.endswith("c.yaml") and where.line == 6


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            "    metrics: {port: nope}\n",
            "workloads[0].metrics.port",
            "no port named 'nope' (defined: metrics)",
        ),
        (
            "    vm: vm1\n    metrics: {port: metrics}\n",
            "workloads[0].metrics.port",
            "x runs on VM vm1: publish port 'metrics' on the VM's address (publish.address) for Prometheus "
            "to scrape it",
        ),
        (
            "    vm: vm1\n    metrics: {port: metrics}\n    ports: [{name: metrics, port: 9101, publish: {port: 9101, "
            "address: 10.8.0.11}}]\n",
            "workloads[0].ports[0].publish.address",
            "10.8.0.11 is not an address of vm1: 127.0.0.1, its address 10.0.2.10, or 0.0.0.0",
        ),
    ],
)
def test_a_metrics_declaration_is_checked_where_it_is_written(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    place = "" if "vm:" in text else "    namespace: imageflow-backend\n"
    child = (
        "workloads:\n  - name: x\n"
        + place
        + "    image: ghcr.io/imageflowcanvas/x:1.0.0\n"
        + ("" if "ports:" in text else "    ports: [{name: metrics, port: 9100, protocol: http}]\n")
        + text
        + "    resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}\n"
    )
    messages, where = _refused(tmp_path, child, key)
    assert messages == [message]
    assert where.file.endswith("c.yaml") and where.line > 0


def test_the_graphs_evaluator_finds_exactly_the_required_flows_with_the_scrapes(features: Path) -> None:
    """The independent NetworkPolicy evaluator of test_graph, on the feature profile whose
    workloads declare metrics: allowed == required, the scrapes included."""
    from test_graph import Cluster, _required_all

    _, topo, plan = validated(features, "workloads")
    allowed = Cluster(objects(plan)).allowed()
    required = _required_all(topo)
    assert ("imageflow-monitoring/prometheus", "imageflow-inference/triton", 8002) in required
    assert ("imageflow-monitoring/prometheus", "ip:10.0.2.10", 9308) in required
    assert required - allowed == set() and allowed - required == set()


def test_promtool_is_the_version_of_the_profiles_prometheus() -> None:
    version = subprocess.run([_promtool(), "--version"], capture_output=True, text=True).stdout.split()[2]
    topo = validated(PROFILES, "prod")[1]
    assert topo.observability.prometheus.image.endswith(f":v{version}")


def test_validate_runs_promtool_on_the_built_configuration(tmp_path: Path) -> None:
    from conftest import run_cli

    from imageflow_gen.validate.tools import promtool

    result = run_cli("validate", "--profile", "dev")
    assert result.code == 0 and "promtool: ok" in result.stdout, result.stdout + result.stderr
    # A configuration promtool refuses is reported at the ConfigMap it came from.
    built = "kind: ConfigMap\nmetadata: {name: prometheus-config}\ndata:\n  prometheus.yml: 'scrape_configs: [{}]'\n"
    checked = promtool(built, {"ConfigMap prometheus-config": "kustomize/base/x.yaml"})
    assert checked is not None and checked.problems
    assert checked.problems[0].location.file == "kustomize/base/x.yaml"
    assert promtool("kind: ConfigMap\nmetadata: {name: other}\ndata: {a: b}\n", {}) is None
    # Lint findings fail it too: two rules that would raise the same alert.
    rule = "{alert: A, expr: up == 0}"
    linted = promtool(
        "kind: ConfigMap\nmetadata: {name: p}\ndata:\n  prometheus.yml: 'rule_files: [r.yml]'\n"
        f"  r.yml: '{{groups: [{{name: g, rules: [{rule}, {rule}]}}]}}'\n",
        {},
    )
    assert linted is not None and any("duplicate rule" in p.message for p in linted.problems)


@pytest.mark.parametrize("profile", [*PROFILE_NAMES, "workloads"])
def test_every_alert_names_a_metric_a_scraped_exporter_serves(features: Path, profile: str) -> None:
    """The alert rules select only metrics that some scrape target's exporter serves (its list in
    schemas/metrics/), or that Prometheus gives every target (`up`)."""
    topo = validated(features, profile)[1]
    served = set(SYNTHETIC)
    for t in targets(topo):
        if t.exporter is not None:
            served |= catalogue(t.exporter).names
    groups = json.loads(alert_rules(topo))["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"]]
    assert exprs
    for expr in exprs:
        assert selected(expr) and selected(expr) <= served, expr


def test_selected_finds_every_selector_of_an_expression() -> None:
    expr = 'max_over_time(kube_a{x="{"}[5m]) >= 1 and on(node) kube_b {y="1"} unless absent(up{job="j"})'
    assert selected(expr) == {"kube_a", "kube_b", "up"}


def test_the_profiles_exporters_are_the_versions_their_metric_lists_are_of(features: Path) -> None:
    """A metric list is of one exporter version: the profiles pin that version's image."""
    for profile in [*PROFILE_NAMES, "workloads"]:
        topo = validated(features, profile)[1]
        ksm = topo.observability.prometheus.kube_state_metrics
        images = [(w.metrics.exporter, w.image) for w in topo.workloads if w.metrics and w.metrics.exporter]
        minio = ("minio", topo.storage.minio.image)
        own = [("kube-state-metrics", ksm.image), minio]
        if topo.observability.prometheus.blackbox_exporter is not None:
            own.append(("blackbox-exporter", topo.observability.prometheus.blackbox_exporter.image))
        if topo.observability.prometheus.kafka_exporter is not None:
            own.append(("kafka-exporter", topo.observability.prometheus.kafka_exporter.image))
        if topo.observability.prometheus.node_exporter is not None:
            own.append(("node-exporter", topo.observability.prometheus.node_exporter.image))
        if topo.observability.prometheus.gpu_exporter is not None:
            own.append(("dcgm-exporter", topo.observability.prometheus.gpu_exporter.image))
        for exporter, image in [*own, *images]:
            assert image.rsplit(":", 1)[1] == catalogue(exporter).version, (profile, image)


def test_the_metric_lists_say_where_they_come_from() -> None:
    for path in sorted((Path(__file__).parent.parent / "schemas" / "metrics").glob("*.json")):
        data = json.loads(path.read_text())
        assert path.stem == data["exporter"]
        assert data["module"] and data["version"] and data["license"] and data["how"]
        assert data["names"] == sorted(set(data["names"]))
        if data["sum"]:  # derived from the module the sum pins
            assert data["sum"].startswith("h1:") and len(data["names"]) > 20
        else:  # listed by hand, or what the output configures: says so, and why
            assert ("by hand" in data["how"] or "configures" in data["how"]) and "not served" in data["how"]


def _grafana_files(objs: dict[tuple[str, str, str], dict[str, Any]]) -> dict[str, str]:
    return objs["ConfigMap", "imageflow-monitoring", "grafana-files"]["data"]


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_grafana_provisions_both_datasources_and_the_generated_dashboards(profile: str) -> None:
    objs = _objects(PROFILES, profile)
    files = _grafana_files(objs)
    sources = yaml.safe_load(files["datasources.yaml"])["datasources"]
    assert [(s["name"], s["type"], s["uid"]) for s in sources] == [
        ("Prometheus", "prometheus", "prometheus"),
        ("Tempo", "tempo", "tempo"),
    ]
    assert sources[0]["url"] == "http://prometheus.imageflow-monitoring.svc.cluster.local:9090"
    assert sources[1]["url"] == "http://tempo.imageflow-observability.svc.cluster.local:3200"
    assert sources[0]["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "tempo"}]
    (provider,) = yaml.safe_load(files["providers.yaml"])["providers"]
    dashboards = sorted(name for name in files if name.endswith(".json"))
    assert dashboards == [
        "imageflow-kafka.json",
        "imageflow-minio.json",
        "imageflow-nodes.json",
        "imageflow-pipeline.json",
    ]
    pod = objs["Deployment", "imageflow-monitoring", "grafana"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m.get("subPath") for m in pod["containers"][0]["volumeMounts"]}
    for name in dashboards:  # each where the provider reads them
        assert mounts[f"{provider['options']['path']}/{name}"] == name
    assert mounts["/etc/grafana/provisioning/datasources/imageflow.yaml"] == "datasources.yaml"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/etc/grafana/admin/password"
    assert ("ExternalSecret", "imageflow-monitoring", "grafana-admin") in objs


@pytest.mark.parametrize("profile", [*PROFILE_NAMES, "workloads"])
def test_every_panel_names_a_metric_a_scraped_exporter_serves(features: Path, profile: str) -> None:
    """The dashboards are valid JSON; every panel's every query selects only metrics that some
    scrape target's exporter serves (its list in schemas/metrics/)."""
    topo = validated(features, profile)[1]
    served = set(SYNTHETIC)
    for t in targets(topo):
        if t.exporter is not None:
            served |= catalogue(t.exporter).names
    boards = {name: json.loads(text) for name, text in dashboards(topo).items()}
    assert boards
    for name, board in boards.items():
        assert board["uid"] == name and board["panels"]
        for panel in board["panels"]:
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "prometheus"
                assert selected(target["expr"]) and selected(target["expr"]) <= served, (name, target["expr"])


def test_grafana_is_reached_through_its_gateway_host_only() -> None:
    objs = _objects(PROFILES, "prod")
    service = objs["VirtualService", "imageflow-monitoring", "grafana"]
    assert service["spec"]["hosts"] == ["grafana.imageflow.com"]
    ingress = objs["NetworkPolicy", "imageflow-monitoring", "allow-gateway-to-grafana-ingress"]["spec"]
    assert ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 3000}]
    assert "NodePort" not in json.dumps(objs["Service", "imageflow-monitoring", "grafana"])
    egress = objs["NetworkPolicy", "imageflow-monitoring", "allow-grafana-to-prometheus-egress"]["spec"]
    assert egress["egress"][0]["ports"] == [{"protocol": "TCP", "port": 9090}]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            "      host: dashboards.example.com\n",
            "observability.prometheus.grafana.host",
            "'dashboards.example.com' is not one of the gateway's hosts (defined: api.imageflow.com, "
            "app.imageflow.com)",
        ),
        (
            "      host: api.imageflow.com\n",
            "observability.prometheus.grafana.host",
            "'api.imageflow.com' is network.routes[0]'s host too; two routes on one host and gateway are merged in "
            "no defined order: give Grafana its own host",
        ),
    ],
)
def test_a_grafana_setting_is_checked_where_it_is_written(tmp_path: Path, text: str, key: str, message: str) -> None:
    messages, where = _refused(tmp_path, "observability:\n  prometheus:\n    grafana:\n" + text, key)
    assert messages == [message]
    assert where.file.endswith("c.yaml") and where.line == 6


def test_the_kafka_exporter_reads_the_brokers_beside_them_and_is_scraped_on_the_vm() -> None:
    objs = _objects(PROFILES, "prod")
    jobs = {j["job_name"]: j for j in _config(objs)["scrape_configs"]}
    assert jobs["kafka-exporter"]["static_configs"] == [{"targets": ["10.0.2.10:9308"]}]
    files = build(PROFILES, "prod", CRDS).files
    service = yaml.safe_load(files["compose/prod/vm1/docker-compose.yaml"])["services"]["kafka-exporter"]
    assert service["command"] == [
        "--kafka.server=kafka-1:39092",
        "--kafka.server=kafka-2:39092",
        "--kafka.server=kafka-3:39092",
        "--kafka.version=3.7.0",
        "--web.listen-address=:9308",
    ]
    assert service["ports"] == ["10.0.2.10:9308:9308/tcp"] and service["networks"] == ["kafka"]
    assert "environment" not in service and "secrets" not in service  # no credentials: the INTERNAL listener
    egress = objs["NetworkPolicy", "imageflow-monitoring", "allow-prometheus-to-kafka-exporter-egress"]["spec"]
    assert egress["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.0.2.10/32"}}]


def test_kafka_alerts_fire_for_a_lagging_declared_group_and_under_replicated_topics(tmp_path: Path) -> None:
    """promtool test rules on prod: the evaluator (which consumes image-results) 1500 behind
    for 15 minutes raises KafkaConsumerLag; 500 behind, or a group no workload declares, or a
    topic the evaluator does not read, does not; an under-replicated partition for 10 minutes
    raises KafkaUnderReplicatedPartitions."""
    folder, data = _prometheus_files(PROFILES, "prod", tmp_path)
    groups = {g["name"]: g["rules"] for g in json.loads(data["alerts.yml"])["groups"]}
    lag = {r["labels"]["consumergroup"]: r for r in groups["imageflow-kafka"] if r["alert"] == "KafkaConsumerLag"}
    assert "evaluator" in lag and "backend-api" in lag

    def series(name: str, values: str, **labels: str) -> dict[str, str]:
        inner = ", ".join(f'{k}="{v}"' for k, v in {"job": "kafka-exporter", **labels}.items())
        return {"series": f"{name}{{{inner}}}", "values": values}

    evaluator = {"consumergroup": "evaluator", "topic": "image-results"}
    _test_rules(
        folder,
        input_series=[
            series("kafka_consumergroup_lag", "1000x30", partition="0", **evaluator),
            series("kafka_consumergroup_lag", "500x30", partition="1", **evaluator),
            series(
                "kafka_consumergroup_lag",
                "900x30",
                partition="0",
                consumergroup="backend-api",
                topic="image-results",
            ),
            series(
                "kafka_consumergroup_lag",
                "9000x30",
                partition="0",
                consumergroup="stranger",
                topic="image-results",
            ),
            series(
                "kafka_consumergroup_lag",
                "9000x30",
                partition="0",
                consumergroup="evaluator",
                topic="image-jobs",
            ),
            series("kafka_topic_partition_under_replicated_partition", "1x30", topic="image-jobs", partition="3"),
        ],
        alert_rule_test=[
            {"eval_time": "14m", "alertname": "KafkaConsumerLag", "exp_alerts": []},
            {
                "eval_time": "16m",
                "alertname": "KafkaConsumerLag",
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "warning", **evaluator},
                        "exp_annotations": {
                            "summary": "evaluator falls behind on Kafka",
                            "description": "Consumer group evaluator has been more than 1000 messages "
                            "behind on image-results for 15m.",
                        },
                    }
                ],
            },
            {"eval_time": "9m", "alertname": "KafkaUnderReplicatedPartitions", "exp_alerts": []},
            {
                "eval_time": "11m",
                "alertname": "KafkaUnderReplicatedPartitions",
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "warning", "topic": "image-jobs"},
                        "exp_annotations": {
                            "summary": "A Kafka topic has under-replicated partitions",
                            "description": "Topic image-jobs has had 1 under-replicated partitions for 10m: "
                            "a broker is down or behind.",
                        },
                    }
                ],
            },
        ],
    )


def test_the_kubelets_are_scraped_with_a_projected_token_on_every_node() -> None:
    """cAdvisor on each node's kubelet: node discovery, https checked by the cluster's CA, a bound
    token of Prometheus's account (projected beside the Secrets, so promtool finds it where the
    configuration says), the policy open to every node's port 10250 and nothing else."""
    objs = _objects(PROFILES, "prod")
    job = {j["job_name"]: j for j in _config(objs)["scrape_configs"]}["kubelet-cadvisor"]
    assert job["kubernetes_sd_configs"] == [{"role": "node"}] and job["scheme"] == "https"
    assert job["metrics_path"] == "/metrics/cadvisor"
    assert job["authorization"]["credentials_file"] == "../secrets/kubelet/token"
    assert job["tls_config"] == {"ca_file": "../secrets/kubelet/ca.crt"}
    pod = objs["StatefulSet", "imageflow-monitoring", "prometheus"]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secret-kubelet"]
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["secret-kubelet"] == "/etc/prometheus/secrets/kubelet"
    egress = objs["NetworkPolicy", "imageflow-monitoring", "allow-prometheus-to-kubelet-cadvisor-egress"]["spec"]
    (rule,) = egress["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 10250}]
    assert sorted(b["ipBlock"]["cidr"] for b in rule["to"]) == [
        "10.0.1.10/32",
        "10.0.1.11/32",
        "10.0.1.12/32",
        "10.0.1.13/32",
    ]


def test_the_kubelets_can_be_left_alone(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "k.yaml").write_text("purpose: x\nextends: prod\nobservability:\n  prometheus:\n    kubelets: false\n")
    objs = _objects(profiles, "k")
    assert "kubelet-cadvisor" not in {j["job_name"] for j in _config(objs)["scrape_configs"]}
    assert not [key for key in objs if "kubelet" in key[2]]


def test_the_gateway_certificate_alerts_fire_before_it_expires(tmp_path: Path) -> None:
    """promtool test rules on prod: a certificate 10 days from expiry warns after an hour, 2
    days from it is critical too; one 30 days away raises nothing; a failed probe for 10
    minutes raises GatewayProbeFailing. The prober may only reach the edge gateway's HTTPS."""
    folder, data = _prometheus_files(PROFILES, "prod", tmp_path)
    groups = {g["name"]: g["rules"] for g in json.loads(data["alerts.yml"])["groups"]}
    assert [r["alert"] for r in groups["imageflow-certificates"]] == [
        "GatewayCertificateExpiring",
        "GatewayCertificateExpiring",
        "GatewayProbeFailing",
    ]
    day = 86400
    # promtool's clock starts at 0: an expiry timestamp is the seconds from then.
    soon = {"job": "gateway-certificate", "instance": "10.0.0.10:443"}
    series = [
        {
            "series": 'probe_ssl_earliest_cert_expiry{job="gateway-certificate", instance="a:443"}',
            "values": f"{10 * day}x90",
        },
        {
            "series": 'probe_ssl_earliest_cert_expiry{job="gateway-certificate", instance="b:443"}',
            "values": f"{2 * day}x90",
        },
        {
            "series": 'probe_ssl_earliest_cert_expiry{job="gateway-certificate", instance="c:443"}',
            "values": f"{30 * day}x90",
        },
        {"series": 'probe_success{job="gateway-certificate", instance="10.0.0.10:443"}', "values": "0x90"},
    ]

    def expiring(instance: str, severity: str, days: int, left: str) -> dict[str, Any]:
        return {
            "exp_labels": {"severity": severity, "job": "gateway-certificate", "instance": instance},
            "exp_annotations": {
                "summary": f"The edge gateway's certificate expires within {days} days",
                "description": f"The certificate api.imageflow.com serves at {instance} expires in {left}: renew it.",
            },
        }

    _test_rules(
        folder,
        input_series=series,
        alert_rule_test=[
            {"eval_time": "50m", "alertname": "GatewayCertificateExpiring", "exp_alerts": []},
            {
                "eval_time": "61m",
                "alertname": "GatewayCertificateExpiring",
                "exp_alerts": [
                    expiring("a:443", "warning", 14, "9d 22h 59m 0s"),
                    expiring("b:443", "warning", 14, "1d 22h 59m 0s"),
                    expiring("b:443", "critical", 3, "1d 22h 59m 0s"),
                ],
            },
            {"eval_time": "9m", "alertname": "GatewayProbeFailing", "exp_alerts": []},
            {
                "eval_time": "11m",
                "alertname": "GatewayProbeFailing",
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "warning", **soon},
                        "exp_annotations": {
                            "summary": "The edge gateway's TLS cannot be probed",
                            "description": "No TLS handshake with api.imageflow.com at 10.0.0.10:443 for "
                            "10m: the gateway is down or unreachable, and its certificate unread.",
                        },
                    }
                ],
            },
        ],
    )
    objs = _objects(PROFILES, "prod")
    egress = objs["NetworkPolicy", "imageflow-monitoring", "allow-blackbox-exporter-to-edge-gateway-egress"]["spec"]
    assert egress["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]


def test_the_meshed_namespaces_sidecars_are_scraped_on_their_statistics_port() -> None:
    """prod meshes imageflow-backend and imageflow-processing: a job per namespace finds every
    pod's sidecar by its port's name (whatever the pod's app), the policies open 15090 from
    Prometheus to those namespaces and nothing else, and its discovery may read their pods."""
    objs = _objects(PROFILES, "prod")
    jobs = {j["job_name"]: j for j in _config(objs)["scrape_configs"]}
    meshed = ["imageflow-backend", "imageflow-processing"]
    assert sorted(name for name in jobs if name.startswith("sidecars-")) == [f"sidecars-{ns}" for ns in meshed]
    for ns in meshed:
        job = jobs[f"sidecars-{ns}"]
        assert job["metrics_path"] == "/stats/prometheus" and job["scheme"] == "http"
        assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [ns]}}]
        keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
        assert keep == [
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": "http-envoy-prom",
                "action": "keep",
            }
        ]
        ingress = objs["NetworkPolicy", ns, f"allow-prometheus-to-sidecars-{ns}-ingress"]["spec"]
        assert ingress["podSelector"] == {} and ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 15090}]
        assert ("Role", ns, "prometheus-discovery") in objs
    opened = {
        (key[1], p["port"])
        for key, o in objs.items()
        if key[0] == "NetworkPolicy"
        for rule in o["spec"].get("ingress", [])
        for p in rule.get("ports", [])
        if p["port"] == 15090
    }
    assert opened == {(ns, 15090) for ns in meshed}


def test_the_pipeline_dashboard_counts_requests_failures_and_latency_as_promtool_evaluates_them(
    tmp_path: Path,
) -> None:
    """The request panels' queries, evaluated by promtool on sidecar series: per Deployment, as
    its server's sidecar reports them (the callers' reports and other namespaces' are not
    counted); a request failed by HTTP 5xx or a gRPC status other than OK counts once, even
    when it is both; latency from the duration histogram."""
    folder, _ = _prometheus_files(PROFILES, "prod", tmp_path)
    board = json.loads(dashboards(validated(PROFILES, "prod")[1])["imageflow-pipeline"])
    panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in board["panels"]}
    (requests,) = panels["Requests per Deployment"]
    (failed,) = panels["Failed requests per Deployment (HTTP 5xx, gRPC not OK)"]
    p50, p95 = panels["Latency per Deployment"]

    def series(labels: dict[str, str], per_minute: int, name: str = "istio_requests_total") -> dict[str, str]:
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return {"series": f"{name}{{{text}}}", "values": f"0+{per_minute}x20"}

    server = {"reporter": "destination", "destination_workload_namespace": "imageflow-processing"}
    resize = {**server, "destination_workload": "resize-blue"}
    input_series = [
        # Rates that are binary fractions: the sums are exact in any order.
        series({**resize, "response_code": "200", "grpc_response_status": "0"}, 60),  # 1/s, OK
        series({**resize, "response_code": "200", "grpc_response_status": "14"}, 30),  # gRPC UNAVAILABLE
        series({**resize, "response_code": "503", "grpc_response_status": "14"}, 15),  # both: once
        series({**resize, "response_code": "503"}, 15),  # plain HTTP 5xx
        series({**resize, "response_code": "404"}, 60),  # a client's error: not a failure
        series({**resize, "reporter": "source", "response_code": "503"}, 600),  # the caller's report
        series({**resize, "destination_workload_namespace": "imageflow-backend", "response_code": "503"}, 600),
    ]
    # Durations: half within 50 ms, all within 100 ms.
    for le, per_minute in (("50", 30), ("100", 60), ("+Inf", 60)):
        input_series.append(series({**resize, "le": le}, per_minute, "istio_request_duration_milliseconds_bucket"))
    at = {"destination_workload": "resize-blue"}

    def expect(expr: str, value: float) -> dict[str, Any]:
        labels = ",".join(f'{k}="{v}"' for k, v in at.items())
        return {"expr": expr, "eval_time": "10m", "exp_samples": [{"labels": f"{{{labels}}}", "value": value}]}

    _test_rules(
        folder,
        input_series,
        [],
        [expect(requests, 3), expect(failed, 1), expect(p50, 50), expect(p95, 95)],
    )


def test_the_sidecars_can_be_left_alone(tmp_path: Path) -> None:
    """`sidecars: false`: no sidecar job, nothing open on 15090, no request panels."""
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "s.yaml").write_text("purpose: x\nextends: prod\nobservability:\n  prometheus:\n    sidecars: false\n")
    _, topo, plan = validated(profiles, "s")
    assert not [t for t in targets(topo) if t.exporter == "istio-proxy"]
    assert "15090" not in json.dumps(objects(plan))
    board = json.loads(dashboards(topo)["imageflow-pipeline"])
    assert not [p for p in board["panels"] if "istio_" in json.dumps(p)]
    assert board["panels"][0]["title"] == "CPU per pod"


def test_the_sidecar_metrics_are_of_the_istio_the_gates_check_against() -> None:
    """The Istio metric list is of the Istio whose CRDs the output is checked against."""
    sources = json.loads((Path(__file__).parent.parent / "schemas" / "crds" / "sources.json").read_text())
    (istio,) = [m for m in sources["modules"] if m["project"] == "istio"]
    assert istio["version"] == f"v{catalogue('istio-proxy').version}"


def test_the_gpu_exporter_reads_every_gpu_node_in_the_nvidia_runtime_holding_no_gpu() -> None:
    """prod: a DaemonSet on the GPU nodes (their node type, tolerating their taint) in the NVIDIA
    runtime, asking for no GPU (the GPU stays the processing services'); root, with the
    kubelet's pod-resources folder read-only, both stated; it serves exactly its counters file's
    fields, the metric list's names; Prometheus scrapes it, and only it, on its port."""
    objs = _objects(PROFILES, "prod")
    ds = objs["DaemonSet", "imageflow-observability", "dcgm-exporter"]
    pod = ds["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia" and ("RuntimeClass", "", "nvidia") in objs
    assert pod["nodeSelector"] == {"node-type": "gpu-enabled"}
    assert [t["key"] for t in pod["tolerations"]] == ["nvidia.com/gpu"]
    (container,) = pod["containers"]
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"} in container["env"]
    assert pod["securityContext"]["runAsUser"] == 0 and container["securityContext"]["capabilities"] == {
        "drop": ["ALL"]
    }
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "pod-resources"]
    assert mount == {"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": True}
    exemption = ds["metadata"]["annotations"]["imageflow.io/pod-security-exemption"]
    assert "hostPath /var/lib/kubelet/pod-resources" in exemption and "runs as root" in exemption
    assert "--kubernetes" in container["args"] and "--collectors=/etc/dcgm-exporter/counters.csv" in container["args"]
    counters = objs["ConfigMap", "imageflow-observability", "dcgm-exporter-files"]["data"]["counters.csv"]
    fields = {line.split(",")[0] for line in counters.splitlines() if not line.startswith("#")}
    assert fields == catalogue("dcgm-exporter").names
    job = {j["job_name"]: j for j in _config(objs)["scrape_configs"]}["dcgm-exporter"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["imageflow-observability"]}}]
    # Discovery's `pod` label is the exporter's: the holder's, on its series, is kept as exported_pod.
    assert {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"} in job["relabel_configs"]
    assert "honor_labels" not in job
    ingress = objs["NetworkPolicy", "imageflow-observability", "allow-prometheus-to-dcgm-exporter-ingress"]["spec"]
    assert ingress["podSelector"] == {"matchLabels": {"app": "dcgm-exporter"}}
    assert ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9400}]
    board = json.loads(dashboards(validated(PROFILES, "prod")[1])["imageflow-pipeline"])
    gpu_panels = [p for p in board["panels"] if "DCGM_" in json.dumps(p)]
    assert [p["title"] for p in gpu_panels] == ["GPU utilisation per pod", "GPU memory used per pod"]
    assert all('namespace=~"imageflow-inference"' in p["targets"][0]["expr"] for p in gpu_panels)  # Triton's


def test_without_the_gpu_exporter_gpus_are_counted_as_held() -> None:
    """dev has no GPU node and no GPU exporter: no DaemonSet, no GPU panels but what
    kube-state-metrics says."""
    topo = validated(PROFILES, "dev")[1]
    assert topo.observability.prometheus.gpu_exporter is None
    assert not [t for t in targets(topo) if t.exporter == "dcgm-exporter"]


@pytest.mark.parametrize(
    ("parent", "text", "key", "message"),
    [
        (
            "staging",
            "      namespace: imageflow-web\n",
            "observability.prometheus.gpu_exporter.namespace",
            "namespace imageflow-web is restricted: the GPU exporter runs as root and mounts the kubelet's "
            "pod-resources folder, which only the privileged level admits",
        ),
        (
            "dev",
            "      namespace: imageflow-observability\n"
            "      image: nvcr.io/nvidia/k8s/dcgm-exporter:3.3.7-3.4.2-ubuntu22.04\n"
            "      resources: {requests: {cpu: 50m, memory: 128Mi}, limits: {cpu: 250m, memory: 512Mi}}\n",
            "observability.prometheus.gpu_exporter",
            "no cluster node has GPUs: the GPU exporter would have nothing to read (set it to null)",
        ),
    ],
)
def test_a_gpu_exporter_setting_is_checked_where_it_is_written(
    tmp_path: Path, parent: str, text: str, key: str, message: str
) -> None:
    messages, where = _refused(tmp_path, "observability:\n  prometheus:\n    gpu_exporter:\n" + text, key, parent)
    assert messages == [message]
    assert where.file.endswith("c.yaml") and where.line in (5, 6)


def test_the_gpu_nodes_must_share_a_node_type(tmp_path: Path) -> None:
    child = (
        "cluster:\n  worker_nodes:\n    - name: k3s-worker-03\n      ip: 10.0.1.13\n"
        "      resources: {cpu: 8, memory: 32Gi, gpu: 1, storage: 1Ti}\n      labels: {node-type: gpu-big}\n"
        "      taints: [{key: nvidia.com/gpu, value: 'true', effect: NoSchedule}]\n"
    )
    messages, _ = _refused(tmp_path, child, "observability.prometheus.gpu_exporter", "staging")
    assert messages == [
        "the GPU nodes are not of one node type (k3s-worker-02 (gpu-enabled), k3s-worker-03 (gpu-big)): the GPU "
        "exporter runs on the nodes of one node-type"
    ]
