"""Output targets. Each module turns plans into {relative path: text}; one registry lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..plan import Plan
from . import kustomize


@dataclass(frozen=True)
class Context:
    """What a target renders from: the profile's plan and the plan of its root (the base)."""

    plan: Plan
    base: Plan


Target = Callable[[Context], dict[str, str]]

REGISTRY: dict[str, Target] = {
    "kustomize": lambda ctx: kustomize.render(ctx.plan, ctx.base),
}
