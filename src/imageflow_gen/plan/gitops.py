"""GitOps wiring, derived once: the Argo CD Application of a profile and where it points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import Topology
from ..model.gitops import ArgoCd
from .common import common_labels


def chart_dir(profile: str) -> str:
    """Where a profile's Helm chart is written (relative to the output root)."""
    return f"helm/{profile}"


def overlay_dir(profile: str) -> str:
    return f"kustomize/overlays/{profile}"


@dataclass(frozen=True)
class Application:
    """The Application syncing one profile from the GitOps repository."""

    name: str
    argo: ArgoCd
    source: dict[str, Any]
    labels: dict[str, str]


def application(topo: Topology, profile: str) -> Application:
    """The profile's overlay (or its chart) in the repository that holds the output."""
    argo = topo.gitops.argocd
    prefix = f"{argo.path}/" if argo.path else ""
    folder = chart_dir(profile) if argo.source == "helm" else overlay_dir(profile)
    return Application(
        name=f"imageflow-{profile}",
        argo=argo,
        source={"repoURL": argo.repo_url, "targetRevision": argo.revision, "path": prefix + folder},
        labels={**common_labels(), "imageflow.io/profile": profile},
    )
