"""Edge components the topology places in the cluster: backend API, web UI (and the gateway)."""

from __future__ import annotations

from ..model import Topology
from ..model.edge import EdgeComponent
from .common import (
    Spec,
    container_security,
    disruption_budget,
    spread_required,
    survives_node_loss,
    http_probe,
    labels,
    pod_security,
    resources,
    spec,
    tmp_volume,
    tunable,
)
from .processing import service_env, service_files
from .storage import client_of

_COMPONENTS = ("api_gateway", "backend_api", "web_ui")


def specs(topo: Topology) -> list[Spec]:
    result = []
    for key in _COMPONENTS:
        component: EdgeComponent = getattr(topo.edge, key)
        if "cluster" in component.runs_on:
            result += _component(topo, component, ("edge", key))
    return result


def _component(topo: Topology, component: EdgeComponent, source: tuple[str, str]) -> list[Spec]:
    volume, mount = tmp_volume()
    backend = component is topo.edge.backend_api
    env = service_env(topo) if backend else []
    volumes, mounts = service_files(topo, client_of(topo, component.name)) if backend else ([], [])
    container = {
        "name": component.name,
        "image": tunable(source + ("image",), component.image, EdgeComponent, "image"),
        "ports": [{"name": "http", "containerPort": component.port, "protocol": "TCP"}],
        **({"env": env} if env else {}),
        "resources": resources(component.resources, source),
        "volumeMounts": [mount, *mounts],
        "livenessProbe": http_probe(component.health_path, "http", delay=10),
        "readinessProbe": http_probe(component.health_path, "http"),
        "securityContext": container_security(),
    }
    pod_labels = labels(component.name, "edge")
    return [
        spec(
            "Deployment",
            "deployment",
            source,
            name=component.name,
            namespace=component.namespace,
            labels=pod_labels,
            selector={"app": component.name},
            pod_labels=pod_labels,
            replicas=tunable(source + ("replicas",), component.replicas, EdgeComponent, "replicas"),
            pod={
                "securityContext": pod_security(),
                "automountServiceAccountToken": False,
                "containers": [container],
                "volumes": [volume, *volumes],
                **(
                    {"topologySpreadConstraints": spread_required({"app": component.name})}
                    if survives_node_loss(component)
                    else {}
                ),
            },
        ),
        spec(
            "Service",
            "service",
            source,
            name=component.name,
            namespace=component.namespace,
            labels=pod_labels,
            selector={"app": component.name},
            headless=False,
            ports=[{"name": "http", "port": component.port, "targetPort": "http", "protocol": "TCP"}],
        ),
        *([disruption_budget(component.name, component.namespace, source, "edge")] if component.replicas > 1 else []),
    ]
