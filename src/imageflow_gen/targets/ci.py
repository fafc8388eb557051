"""CI for the GitOps repository that receives the output: a plain script and a GitHub workflow.

Both validate the committed output of every profile with kubeconform -strict (and a CRD
schema location), helm lint and kustomize build. The script and the workflow are the same
for every profile; what differs per profile (its Kubernetes version) is in ci/profiles/.
"""

from __future__ import annotations

from ..rendering import render
from ..yamlio import dump, parse_all
from . import Context, Rendered

# The versions of the tools the workflow installs: the ones this project's tests run.
TOOLS = {"helm": "v4.1.4", "kubectl": "v1.35.2", "kubeconform": "v0.7.0"}


def render_ci(ctx: Context) -> Rendered:
    """ci/validate.sh, ci/profiles/<profile>.env and .github/workflows/validate-imageflow-output.yaml."""
    workflow = parse_all(render("ci/github-workflow.yaml.j2", tools=TOOLS))[0]
    return Rendered(
        files={
            "ci/validate.sh": render("ci/validate.sh.j2"),
            f"ci/profiles/{ctx.plan.profile}.env": render(
                "ci/profile.env.j2", profile=ctx.plan.profile, kubernetes_version=f"{ctx.plan.kubernetes_minor}.0"
            ),
            ".github/workflows/validate-imageflow-output.yaml": dump(workflow),
        }
    )
