"""docs/<profile>/README.md: what the output holds, the diagram, how to apply and validate it.

Everything it lists comes from the plan (the stacks, the secrets, the clients' Kafka settings);
the diagram is the Mermaid of `imageflow-gen graph`, which Git hosts render.
"""

from __future__ import annotations

import json

from typing import Any

from ..errors import dotted
from ..graph import build_graph, mermaid
from ..plan.clients import dependents, topic_uses
from ..plan.messaging import kafka_security
from ..plan.dashboards import dashboards
from ..plan.grafana import grafana, reads_tempo
from ..plan.monitoring import (
    DOWN_AFTER,
    certificate_rules,
    MISSING_AFTER,
    kafka_rules,
    storage_rules,
    target_text,
    targets,
    workload_rules,
)
from ..changes import state
from ..plan import gateway
from ..plan.common import meshed_namespaces
from ..plan.network import cluster_prerequisites, flows
from ..plan.processing import callers
from ..plan.slots import load_balancing
from ..availability import floating, impacts, survivors
from ..plan.storage import tls_names, vm_endpoints
from ..plan.workloads import exceptions, transport
from ..rendering import render
from . import Context, Rendered
from .kubernetes import objects

# Output paths and what they hold; "{p}" is the profile.
_FOLDERS = [
    ("kustomize/base/", "the Kustomize base: every object, from the root profile `{root}`"),
    ("kustomize/overlays/{p}/", "the `{p}` overlay: JSON 6902 patches from the base, plus objects only `{p}` has"),
    ("helm/{p}/", "the Helm chart of `{p}`: the overlay's objects, with the install-time tunables as values"),
    ("compose/{p}/", "docker compose stacks for the VMs outside the cluster, one folder per VM"),
    ("k3s/{p}/", "K3s configuration per node (/etc/rancher/k3s/config.yaml)"),
    ("argocd/{p}.yaml", "the Argo CD Application that syncs `{p}` from the GitOps repository"),
    ("ci/", "`ci/validate.sh`: validates the committed output of every profile with the real tools"),
    (".github/workflows/", "a GitHub Actions workflow running `ci/validate.sh`"),
    (".imageflow-gen/{p}.lock.json", "what `imageflow-gen render` wrote for `{p}` (do not edit)"),
]


def render_docs(ctx: Context) -> Rendered:
    plan, topo = ctx.plan, ctx.plan.topology
    profile = plan.profile
    folders = [(pattern.format(p=profile), text.format(p=profile, root=ctx.base.profile)) for pattern, text in _FOLDERS]
    stacks = [stack.vm for stack in plan.stacks]
    vm_order = [vm.name for vm in topo.vms]
    secrets = [
        {"namespace": ns, "name": ref.name, "key_names": sorted(ref.keys.values()), "purpose": purpose}
        for ns, purpose, ref, _ in plan.secret_refs
    ]
    # The current colour or weight is not repeated here: switching changes only the selector
    # (or the route), not this file.
    releases = []
    for svc in topo.processing.services:
        if svc.release.strategy == "rolling":
            continue
        who = callers(topo, svc)
        releases.append(
            {
                "name": svc.name,
                "strategy": svc.release.strategy,
                "setting": (
                    "`release.active`: the colour the Service selects"
                    if svc.release.strategy == "blue-green"
                    else "`release.canary_weight`: percent of requests to the canary"
                ),
                "honoured": ", ".join(f"`{name}`" for name, _, mesh in who if mesh) or "none",
                "ignored": ", ".join(f"`{name}` (`{ns}`)" for name, ns, mesh in who if not mesh) or "none",
            }
        )
    balancing = [(s.name, load_balancing(s), s.port) for s in topo.processing.services]
    flow_rows = [
        {
            "name": f.name,
            "source": _where(f.source_ns, f.source_pods, f.source_cidrs),
            "dest": _where(f.dest_ns, f.dest_pods, f.dest_cidrs),
            "ports": ", ".join(str(p) if f.protocol == "TCP" else f"{p}/{f.protocol}" for p in f.ports),
        }
        for f in flows(topo)
    ]
    minio_users = [
        {
            "name": c.name,
            "where": f"`{c.namespace}`" if c.namespace else "",
            "vm": c.vm or "",
            "buckets": ", ".join(f"`{b}` ({mode})" for b, mode in c.buckets),
            "secret": c.secret,
        }
        for c in plan.minio_clients
    ]
    text = render(
        "docs/README.md.j2",
        workloads=[_workload_row(topo, w) for w in topo.workloads],
        dependencies=_dependency_rows(topo),
        topics=[
            {
                "name": t.name,
                "partitions": t.partitions,
                "replication_factor": t.replication_factor,
                "producers": ", ".join(f"`{n}`" for n in t.producers) or "nobody",
                "consumers": ", ".join(f"`{n}`" for n in t.consumers) or "nobody",
            }
            for t in topic_uses(topo)
        ],
        exceptions=[(w.name, what, reason) for w, what, reason in exceptions(topo)],
        balancing=balancing,
        flows=flow_rows,
        minio_users=minio_users,
        vm_endpoints=vm_endpoints(topo),
        minio_tls_names=tls_names(topo.storage.minio),
        impacts=impacts(plan),
        floating=floating(plan),
        survivors=[f"`{name}`" for name in survivors(plan)],
        releases=releases,
        **kafka_security(topo),
        scrapes=[
            {
                "job": t.job,
                "what": target_text(t, "`"),
                "path": f"{t.scheme}, `{t.path}`",
                "source": f"`{dotted(t.source)}`",
            }
            for t in targets(topo)
        ],
        workload_alerts=[
            {
                "alert": r["alert"],
                "labels": "".join(f", `{k}={v}`" for k, v in r["labels"].items() if k != "severity"),
                "severity": r["labels"]["severity"],
                "after": r["for"],
                "summary": r["annotations"]["summary"],
            }
            for r in [*workload_rules(topo), *storage_rules(topo), *kafka_rules(topo), *certificate_rules(topo)]
        ],
        grafana_sources=[
            "Prometheus",
            *(["Tempo (traces, linked from the metrics' exemplars)"] if reads_tempo(topo) else []),
        ],
        grafana_dashboards=[
            f"{json.loads(text)['title']} (`{name}`)"
            for name, text in (dashboards(topo) if grafana(topo) else {}).items()
        ],
        alert_down=DOWN_AFTER,
        alert_missing=MISSING_AFTER,
        profile=profile,
        topo=topo,
        folders=folders,
        diagram=mermaid(build_graph(plan)),
        stacks=stacks,
        vm_order=vm_order,
        secrets=secrets,
        provider=topo.secrets.provider,
        external=topo.secrets.external_secrets,
        kubernetes_minor=plan.kubernetes_minor,
        argo=topo.gitops.argocd,
        nodes=[n.name for n in topo.cluster.master_nodes + topo.cluster.worker_nodes],
        meshed=meshed_namespaces(topo),
        prerequisites=cluster_prerequisites(topo),
        gateway=_gateway_doc(topo),
        data_holders=[k for k, e in state(objects(plan))["objects"].items() if e.get("data")],
    )
    return Rendered(files={f"docs/{profile}/README.md": text})


def _gateway_doc(topo: Any) -> dict[str, Any] | None:
    """The edge gateway's chain, as plan/gateway.py builds it (None: not on the edge VM)."""
    gw = topo.edge.api_gateway
    if "vm" not in gw.runs_on:
        return None
    rows = []
    for loc in gateway.locations(topo):
        rate = getattr(gw.limits, loc.zone)
        route = loc.route
        waf = []
        if route is not None:
            waf += [f"without rule {e.rule} ({e.reason})" for e in route.waf.exclusions]
            if not route.waf.inspect_body:
                waf.append("body not inspected")
        rows.append(
            {
                "path": loc.path,
                "exact": loc.modifier == "=",
                "what": "declared in `edge.api_gateway.routes`" if route is not None else loc.comment,
                "zone": loc.zone,
                "rate": f"{rate.requests_per_second}/s (burst {rate.burst})",
                "body": loc.body_limit,
                "auth": "verified" if loc.auth else "public",
                "waf": "; ".join(waf) or "all rules",
            }
        )
    return {
        "gw": gw,
        "controls": [claim for claim, _ in gateway.controls(topo)],
        "rows": rows,
        "audit_volume": f"{gw.name}-audit",
        "backups": [f"{b.address}:{b.port}" for b in gw.load_balancing.backups],
    }


def _workload_row(topo: Any, w: Any) -> dict[str, str]:
    """A workload as the README's table shows it: where it runs and how it is reached."""
    ports = []
    for p in w.ports:
        text = f"`{p.name}` {p.port}/{transport(p)}"
        if p.node_port is not None:
            text += f", node port {p.node_port}"
            if p.node_port_from:
                text += f" (from {', '.join(p.node_port_from)} only)"
        if p.publish is not None:
            text += f", published on {p.publish.address}:{p.publish.port}"
        ports.append(text)
    if w.route is not None:
        ports.append(f"route `{w.route.host}{w.route.path_prefix}` -> `{w.route.port}`")
    return {
        "name": w.name,
        "where": f"namespace `{w.namespace}`" if w.namespace else f"VM `{w.vm}` (compose)",
        "kind": w.kind
        + (f", {w.release.strategy}" if w.release.strategy != "rolling" else "")
        + (f", {w.gpu} GPU" if w.gpu else ""),
        "image": w.image,
        "ports": "; ".join(ports) or "none",
        "description": w.description,
    }


def _dependency_rows(topo: Any) -> list[dict[str, str]]:
    """One row per dependency of each workload where it runs (a workload without any: one row)."""
    rows = []
    for d in dependents(topo):
        where = f"`{d.namespace}`" if d.namespace else f"VM `{d.vm}`"
        for dep in d.dependencies:
            store = dep.target in ("MinIO", "Kafka", "PostgreSQL")
            rows.append(
                {
                    "name": d.name,
                    "where": where,
                    "target": dep.target if store else f"`{dep.target}`",
                    "detail": ", ".join(f"`{x}`" for x in dep.detail) if store else f"port `{dep.detail[0]}`",
                    "variables": ", ".join(f"`{v}`" for v in dep.variables) or "none",
                    "source": f"`{dotted(dep.source)}`",
                }
            )
        if not d.dependencies:
            rows.append(
                {"name": d.name, "where": where, "target": "nothing", "detail": "", "variables": "", "source": ""}
            )
    return rows


def _where(namespace: str | None, pods: dict[str, str], cidrs: tuple[str, ...]) -> str:
    """'`app=minio` in `imageflow-storage`', 'every pod in ...', or the addresses."""
    if cidrs:
        return ", ".join(f"`{c}`" for c in cidrs)
    if namespace is None:
        return "outside the cluster"
    selected = ", ".join(f"`{k}={v}`" for k, v in sorted(pods.items())) or "every pod"
    return f"{selected} in `{namespace}`"
