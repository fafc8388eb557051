"""The metric names each well-known exporter serves (schemas/metrics/, written by
tools/metrics.py from the exporter's own module at a pinned version): what the generated alert
rules and dashboards may name, so that none asks for a metric no declared target exposes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache

from ..resources import data_dir

# What Prometheus itself gives every scrape job, whatever the target serves.
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# A selector's metric name: an identifier right before its `{`.
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")


@dataclass(frozen=True)
class Catalogue:
    exporter: str
    version: str
    names: frozenset[str]


@cache
def catalogue(exporter: str) -> Catalogue:
    data = json.loads((data_dir("schemas") / "metrics" / f"{exporter}.json").read_text())
    return Catalogue(data["exporter"], data["version"], frozenset(data["names"]))


def selected(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (every selector carries its braces)."""
    return set(_SELECTOR.findall(expr))
