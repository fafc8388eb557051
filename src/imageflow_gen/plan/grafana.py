"""Grafana beside Prometheus (seed 8.1.2: imageflow-monitoring holds "Prometheus, Grafana"):
its datasources (Prometheus, and Tempo when Tempo admits Grafana's pods among its query
clients, traces linked from the metrics' exemplars), and dashboards generated from the
topology, each panel's query reading only metrics that a scraped exporter serves
(plan/catalogue.py). Admin credentials come from a Secret as files; anonymous access and
sign-up are off; it is exposed only through the gateway host the profile names."""

from __future__ import annotations

from typing import Any

from ..model import Topology
from ..model.observability import Grafana
from .common import Spec, service_dns
from .observability import config_text
from .workloads import Rendering, render, single

COMPONENT = "monitoring"
SOURCE = ("observability", "prometheus", "grafana")
PROVISIONING = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/var/lib/grafana-dashboards"
DATA_DIR = "/var/lib/grafana"
ADMIN_DIR = "/etc/grafana/admin"
PROMETHEUS_UID = "prometheus"
TEMPO_UID = "tempo"


def grafana(topo: Topology) -> Grafana | None:
    prom = topo.observability.prometheus
    return prom.grafana if prom is not None else None


def reads_tempo(topo: Topology) -> bool:
    """Whether Tempo admits Grafana's pods (its `query_clients`): then Tempo is a datasource."""
    prom, g = topo.observability.prometheus, grafana(topo)
    if prom is None or g is None:
        return False
    return any(
        c.namespace == prom.namespace and c.pods == {"app": g.name} for c in topo.observability.tempo.query_clients
    )


def datasources(topo: Topology) -> str:
    prom = topo.observability.prometheus
    assert prom is not None
    tempo = topo.observability.tempo
    prometheus: dict[str, Any] = {
        "name": "Prometheus",
        "type": "prometheus",
        "uid": PROMETHEUS_UID,
        "access": "proxy",
        "url": f"http://{service_dns(prom.name, prom.namespace)}:{prom.port}",
        "isDefault": True,
        "editable": False,
    }
    result = [prometheus]
    if reads_tempo(topo):
        # An exemplar's trace_id opens its trace in Tempo.
        prometheus["jsonData"] = {"exemplarTraceIdDestinations": [{"name": "trace_id", "datasourceUid": TEMPO_UID}]}
        result.append(
            {
                "name": "Tempo",
                "type": "tempo",
                "uid": TEMPO_UID,
                "access": "proxy",
                "url": f"http://{service_dns(tempo.name, tempo.namespace)}:{tempo.ports.http}",
                "editable": False,
                "jsonData": {"serviceMap": {"datasourceUid": PROMETHEUS_UID}},
            }
        )
    return config_text({"apiVersion": 1, "datasources": result})


def providers() -> str:
    """The dashboards provider: the generated files, read-only in Grafana."""
    return config_text(
        {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "imageflow",
                    "folder": "ImageFlowCanvas",
                    "type": "file",
                    "disableDeletion": True,
                    "allowUiUpdates": False,
                    "options": {"path": DASHBOARDS_DIR},
                }
            ],
        }
    )


def grafana_workload(topo: Topology) -> tuple[Any, Rendering]:
    """Grafana as a Deployment: its data (sqlite, sessions) on a scratch volume, its settings as
    environment (no anonymous access, no sign-up, no calls home), the admin's user and password
    as files from the Secret, its provisioning (datasources, the dashboards' provider, the
    dashboards) as the workload's files: a change of any restarts it, as Grafana reads them at
    start."""
    from ..model.workloads import Workload
    from .dashboards import dashboards

    prom = topo.observability.prometheus
    g = grafana(topo)
    assert prom is not None and g is not None
    admin = g.admin
    env = {
        "GF_SERVER_HTTP_PORT": str(g.port),
        "GF_PATHS_DATA": DATA_DIR,
        "GF_PATHS_PROVISIONING": PROVISIONING,
        "GF_SECURITY_ADMIN_USER__FILE": f"{ADMIN_DIR}/{admin.keys['user']}",
        "GF_SECURITY_ADMIN_PASSWORD__FILE": f"{ADMIN_DIR}/{admin.keys['password']}",
        "GF_SECURITY_DISABLE_GRAVATAR": "true",
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
        "GF_LOG_MODE": "console",
    }
    if g.host is not None:  # behind the gateway's TLS
        env |= {"GF_SERVER_ROOT_URL": f"https://{g.host}/", "GF_SECURITY_COOKIE_SECURE": "true"}
    files = [
        {
            "name": "datasources.yaml",
            "path": f"{PROVISIONING}/datasources/imageflow.yaml",
            "content": datasources(topo),
        },
        {"name": "providers.yaml", "path": f"{PROVISIONING}/dashboards/imageflow.yaml", "content": providers()},
        *[
            {"name": f"{name}.json", "path": f"{DASHBOARDS_DIR}/{name}.json", "content": text}
            for name, text in dashboards(topo).items()
        ],
    ]
    workload = Workload.model_validate(
        {
            "name": g.name,
            "namespace": prom.namespace,
            "image": g.image,
            "ports": [{"name": "http", "port": g.port, "protocol": "http"}],
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "files": files,
            "volumes": [{"name": "data", "path": DATA_DIR, "scratch": {"size_limit": "1Gi"}}],
            "probes": {
                "readiness": {"http": {"path": "/api/health", "port": "http"}, "initial_delay": 10},
                "liveness": {"http": {"path": "/api/health", "port": "http"}, "initial_delay": 30, "period": 30},
            },
            "resources": g.resources,
            "node_type": prom.node_type,
            "availability": {"survives": "nothing", "reason": "one Grafana; its dashboards are provisioned"},
        }
    )
    rendering = single(
        COMPONENT,
        SOURCE,
        g.name,
        g.image,
        Grafana,
        volumes=[{"name": "admin", "secret": {"secretName": admin.name}}],
        mounts=[{"name": "admin", "mountPath": ADMIN_DIR, "readOnly": True}],
    )
    return workload, rendering


def specs(topo: Topology) -> list[Spec]:
    if grafana(topo) is None:
        return []
    workload, how = grafana_workload(topo)
    return render(topo, workload, SOURCE, how)
