"""Argo CD wiring: the plan's Application of the profile (plan/gitops.py); formatting only."""

from __future__ import annotations

from ..rendering import render
from ..yamlio import dump, order_object, parse_all
from . import Context, Rendered


def render_argocd(ctx: Context) -> Rendered:
    app = ctx.plan.application
    obj = order_object(
        parse_all(
            render("argocd/application.yaml.j2", name=app.name, argo=app.argo, source=app.source, labels=app.labels)
        )[0]
    )
    path = f"argocd/{ctx.plan.profile}.yaml"
    return Rendered(files={path: dump(obj)}, objects=[(path, obj)])
