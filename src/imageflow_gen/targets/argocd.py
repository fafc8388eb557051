"""Argo CD wiring: one Application per profile, pointing at the profile's overlay (or its chart)
in the GitOps repository that holds the output."""

from __future__ import annotations

from ..rendering import render
from ..yamlio import dump, order_object, parse_all
from . import Context, Rendered
from .helm import chart_dir


def render_argocd(ctx: Context) -> Rendered:
    argo = ctx.plan.topology.gitops.argocd
    profile = ctx.plan.profile
    prefix = f"{argo.path}/" if argo.path else ""
    source = {"repoURL": argo.repo_url, "targetRevision": argo.revision}
    if argo.source == "helm":
        source["path"] = f"{prefix}{chart_dir(profile)}"
    else:
        source["path"] = f"{prefix}kustomize/overlays/{profile}"
    application = order_object(parse_all(render(
        "argocd/application.yaml.j2", name=f"imageflow-{profile}", argo=argo, source=source,
        labels={"app.kubernetes.io/part-of": "imageflow", "app.kubernetes.io/managed-by": "imageflow-gen",
                "imageflow.io/profile": profile}))[0])
    path = f"argocd/{profile}.yaml"
    return Rendered(files={path: dump(application)}, objects=[(path, application)])
