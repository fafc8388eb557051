"""K3s node configs: the plan's config of each node (plan/nodes.py) as
k3s/<profile>/<node>.yaml, under a comment header; formatting only."""

from __future__ import annotations

from ..rendering import render
from ..yamlio import dump, parse_all
from . import Context, Rendered


def render_k3s(ctx: Context) -> Rendered:
    files = {}
    for node in ctx.plan.nodes:
        header = render("k3s/header.j2", node=node.node, version=node.version, role=node.role)
        parse_all(header)  # the header is comments only: it must not add data
        files[f"k3s/{ctx.plan.profile}/{node.node.name}.yaml"] = header + dump(node.config)
    return Rendered(files=files)
