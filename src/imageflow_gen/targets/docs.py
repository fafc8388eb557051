"""docs/<profile>/README.md: what the output holds, the diagram, how to apply and validate it.

Rendered after every other target, from the files they produced, so the folder list is what
is really there. The diagram is the Mermaid of `imageflow-gen graph`, which Git hosts render.
"""

from __future__ import annotations

from typing import Any

from ..graph import build_graph, mermaid
from ..model import Topology
from ..model.messaging import SASL_PROTOCOLS, TLS_PROTOCOLS
from ..model.checks import secret_refs
from ..plan.messaging import K3S_NETWORK, VPN_NETWORK, client_env, cluster_client, listener_on, vm_client_paths
from ..rendering import render
from . import Context, Rendered

# Output paths and what they hold; "{p}" is the profile. Listed when the profile has them.
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


def render_docs(ctx: Context, files: dict[str, str]) -> Rendered:
    plan, topo = ctx.plan, ctx.plan.topology
    profile = plan.profile
    folders = []
    for pattern, text in _FOLDERS:
        path = pattern.format(p=profile)
        if path.startswith(".imageflow-gen/") or any(f == path or f.startswith(path) for f in files):
            folders.append((path, text.format(p=profile, root=ctx.base.profile)))
    stacks = sorted({f.split("/")[2] for f in files if f.startswith(f"compose/{profile}/") and
                     f.endswith("/docker-compose.yaml")})
    vm_order = [vm.name for vm in topo.vms]
    secrets = [{"namespace": ns, "name": ref.name, "key_names": sorted(ref.keys.values()), "purpose": purpose}
               for ns, purpose, ref, _ in secret_refs(topo)]
    # The current colour or weight is not repeated here: switching changes only the selector
    # (or the route), not this file.
    releases = [{"name": svc.name, "strategy": svc.release.strategy,
                 "setting": ("`release.active`: the colour the Service selects" if svc.release.strategy == "blue-green"
                             else "`release.canary_weight`: percent of requests to the canary")}
                for svc in topo.processing.services if svc.release.strategy != "rolling"]
    text = render("docs/README.md.j2", releases=releases, **_kafka(topo), profile=profile, topo=topo, folders=folders,
                  diagram=mermaid(build_graph(plan)), stacks=stacks, vm_order=vm_order, secrets=secrets,
                  provider=topo.secrets.provider, external=topo.secrets.external_secrets,
                  kubernetes_minor=plan.kubernetes_minor, argo=topo.gitops.argocd,
                  nodes=[n.name for n in topo.cluster.master_nodes + topo.cluster.worker_nodes])
    return Rendered(files={f"docs/{profile}/README.md": text})


def _kafka(topo: Topology) -> dict[str, Any]:
    """Who connects to which listener, and the settings they read (from the plan)."""
    kafka = topo.messaging.kafka
    protocols = {lst.protocol for lst in kafka.listeners}
    clients = []
    for network, who, user, env in (
            (VPN_NETWORK, f"The backend on {topo.edge.vm}", kafka.sasl.vm_user,
             lambda p: client_env(topo, p, kafka.sasl.vm_user, vm_client_paths(p))),
            (K3S_NETWORK, "The cluster's workloads", kafka.sasl.cluster_user,
             lambda p: {e["name"]: e["value"] for e in cluster_client(topo)[0]})):
        listener = listener_on(topo, network)
        if listener is None or listener.protocol == "PLAINTEXT":
            continue
        clients.append({"who": who, "who_one": network == VPN_NETWORK, "listener": listener.name,
                        "protocol": listener.protocol,
                        "username": user if listener.protocol in SASL_PROTOCOLS else None,
                        "mechanism": kafka.sasl.mechanism, "env": sorted(env(listener.protocol).items())})
    return {"kafka_clients": clients, "kafka_tls": bool(protocols & TLS_PROTOCOLS), "kafka_mtls": "SSL" in protocols,
            "kafka_sasl": bool(protocols & SASL_PROTOCOLS), "kafka_sasl_plaintext": "SASL_PLAINTEXT" in protocols}
