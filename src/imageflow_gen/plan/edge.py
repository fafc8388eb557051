"""Edge components the topology places in the cluster (backend API, web UI, the gateway): each a
workload (plan/slots.py) rendered as every workload is."""

from __future__ import annotations

from ..model import Topology
from ..model.edge import EdgeComponent
from .common import Spec
from .slots import edge_workload
from .workloads import render

_COMPONENTS = ("api_gateway", "backend_api", "web_ui")


def specs(topo: Topology) -> list[Spec]:
    result = []
    for key in _COMPONENTS:
        component: EdgeComponent = getattr(topo.edge, key)
        if "cluster" in component.runs_on:
            source = ("edge", key)
            workload, how = edge_workload(topo, component, source)
            result += render(topo, workload, source, how)
    return result
