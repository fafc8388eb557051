"""GitOps wiring (seed 8.0.6: a Git repository is the source of truth): Argo CD."""

from __future__ import annotations

from typing import Literal

from .types import Name, Strict, _pattern_type

GitUrl = _pattern_type(r"(https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)+|"
                       r"(ssh://)?[A-Za-z0-9._-]+@[A-Za-z0-9.-]+[:/][A-Za-z0-9._~/-]+)",
                       "a Git repository URL (https://host/org/repo.git or git@host:org/repo.git)", 2048,
                       {"description": "A Git repository URL, https or ssh."})
GitRevision = _pattern_type(r"[A-Za-z0-9._/-]+", "a branch, tag or commit", 255,
                            {"description": "A Git branch, tag or commit."})
RepoPath = _pattern_type(r"([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?", "a relative path inside the repository "
                         "(no leading '/', no '..')", 1024,
                         {"description": "A relative path in the repository; empty for its root."})
ApiServer = _pattern_type(r"https://[A-Za-z0-9.-]+(:[0-9]+)?", "an API server URL such as "
                          "https://kubernetes.default.svc", 2048, {"description": "A Kubernetes API server URL."})


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
