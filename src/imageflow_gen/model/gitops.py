"""GitOps wiring (seed 8.0.6: a Git repository is the source of truth): Argo CD."""

from __future__ import annotations

from typing import Literal

from .types import ApiServer, GitRevision, GitUrl, Name, RepoPath, Strict


class ArgoCd(Strict):
    """An Argo CD Application per profile, deploying the rendered output from the GitOps repository."""

    repo_url: GitUrl
    """The Git repository that receives the rendered output."""
    revision: GitRevision = "main"
    """Branch, tag or commit Argo CD follows."""
    path: RepoPath = ""
    """Where the output (what `render --out` writes) sits in the repository; empty for its root."""
    source: Literal["kustomize", "helm"] = "kustomize"
    """Deploy the profile's Kustomize overlay, or the Helm chart with the profile's values."""
    project: Name = "default"
    """Argo CD project."""
    namespace: Name = "argocd"
    """Namespace Argo CD runs in (where the Application object lives)."""
    destination_server: ApiServer = "https://kubernetes.default.svc"
    """The cluster to deploy to, as Argo CD knows it."""
    automated: bool = True
    """Sync automatically on every commit, pruning what the output no longer has and undoing drift."""


class GitOps(Strict):
    """How the output reaches the cluster."""

    argocd: ArgoCd
    """Argo CD."""
