"""Output targets. Each module turns plans into files; one registry lists them.

A target returns `Rendered`: its files ({relative path: text}) and the Kubernetes objects
those files deploy, each with the file that defines (or last changes) it, for validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..plan import Plan


@dataclass(frozen=True)
class Context:
    """What a target renders from: the profile's plan and the plan of its root (the base)."""

    plan: Plan
    base: Plan


@dataclass
class Rendered:
    """Files of a target and the Kubernetes objects they deploy."""

    files: dict[str, str] = field(default_factory=dict)
    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def update(self, other: Rendered) -> None:
        self.files.update(other.files)
        self.objects.extend(other.objects)


Target = Callable[[Context], Rendered]


def registry() -> dict[str, Target]:
    """Every target by name."""
    from . import argocd, ci, compose, docs, helm, k3s, kustomize, state

    return {
        "argocd": argocd.render_argocd,
        "ci": ci.render_ci,
        "compose": compose.render_compose,
        "docs": docs.render_docs,
        "helm": helm.render_helm,
        "k3s": k3s.render_k3s,
        "kustomize": kustomize.render,
        "state": state.render_state,
    }
