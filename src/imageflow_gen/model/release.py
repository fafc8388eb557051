"""How a new version of a workload replaces the running one (seed 8.0.6): rolling, blue-green
or canary; shared by the processing services and the typed workloads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from .types import Count, Image, Strict


Colour = Literal["blue", "green"]
Percent = Annotated[int, Field(ge=0, le=100)]


class RollingRelease(Strict):
    """One Deployment updated in place."""

    strategy: Literal["rolling"] = "rolling"
    """rolling (the default), blue-green or canary; the other settings are those of the strategy."""


class BlueGreenRelease(Strict):
    """Two Deployments (`<name>-blue`, `<name>-green`) and a Service that selects the active one."""

    strategy: Literal["blue-green"]
    """rolling (the default), blue-green or canary; the other settings are those of the strategy."""
    active: Colour = "blue"
    """blue-green: the colour the Service sends traffic to; switching is this one line."""
    blue_image: Image | None = None
    """blue-green: image of the blue Deployment (default: the service's image)."""
    green_image: Image | None = None
    """blue-green: image of the green Deployment (default: the service's image)."""


class CanaryRelease(Strict):
    """A stable Deployment and `<name>-canary`, with Istio splitting the traffic by weight."""

    strategy: Literal["canary"]
    """rolling (the default), blue-green or canary; the other settings are those of the strategy."""
    canary_weight: Percent = 0
    """canary: percent of the requests routed to the canary (0 to 100; the rest go to stable)."""
    canary_image: Image | None = None
    """canary: image of the canary Deployment (default: the service's image)."""
    canary_replicas: Count = 1
    """canary: replicas of the canary Deployment."""


STRATEGIES = {"rolling": RollingRelease, "blue-green": BlueGreenRelease, "canary": CanaryRelease}


def _strategy(value: Any) -> str | None:
    """The tag of a release: its `strategy`, rolling when none is written."""
    if isinstance(value, dict):
        strategy = value.get("strategy", "rolling")
        return strategy if isinstance(strategy, str) else None
    return getattr(value, "strategy", None)


# How a new version of the service replaces the running one (seed 8.0.6): the fields a
# strategy does not use are unknown keys under it, so a setting of another strategy is an error.
Release = Annotated[
    Annotated[RollingRelease, Tag("rolling")]
    | Annotated[BlueGreenRelease, Tag("blue-green")]
    | Annotated[CanaryRelease, Tag("canary")],
    Discriminator(
        _strategy,
        custom_error_type="release_strategy",
        custom_error_message="strategy must be one of rolling, blue-green, canary",
    ),
]
