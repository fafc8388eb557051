"""Facts several stages share, kept below all of them so that no stage imports another's
module for them: what a secret value looks like (the model refuses one in a profile, the
output gates in a rendered file), the annotation naming an object's source, what makes
two Kubernetes objects the same object, computing a derivation once per object, and finding
what a label selector selects."""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

# Key material and cloud access keys, wherever they appear.
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
AWS_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")

# Use above this share of a capacity (a node's CPU, a VM's, a MinIO drive) is worth a warning.
WARN_PERCENT = 80

# The profile file and key an object comes from: `prod.yaml#storage.minio`.
SOURCE_ANNOTATION = "imageflow.io/source"


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion group, kind, namespace, name): what makes an object the same object."""
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj.get("metadata", {})
    return group, obj["kind"], meta.get("namespace", ""), meta["name"]


_Of = TypeVar("_Of")
_T = TypeVar("_T")


def once_per_object(function: Callable[[_Of], _T]) -> Callable[[_Of], _T]:
    """`function(x)` computed once per object `x` (a topology or a plan: neither changes once
    made), for the derivations every workload asks for; asked again each time, they make a
    render grow with the square of the workloads. Callers must not change what it returns.
    Keyed by identity (neither is hashable), forgotten when the object is."""
    results: dict[int, tuple[weakref.ref[Any], _T]] = {}

    @functools.wraps(function)
    def once(of: _Of) -> _T:
        key = id(of)
        found = results.get(key)
        if found is not None and found[0]() is of:
            return found[1]
        value = function(of)
        results[key] = (weakref.ref(of, lambda _, key=key: results.pop(key, None)), value)  # type: ignore[misc]
        return value

    return once


def has_labels(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Whether `labels` carry every label of `wanted` (a selector's matchLabels)."""
    return all(labels.get(k) == v for k, v in wanted.items())


class LabelIndex(Generic[_T]):
    """Items (pods, a diagram's workloads) by namespace and label: what a selector selects is
    found through its rarest label's items, not by scanning them all (a lookup per workload
    over every workload made a render grow with the square of the workloads)."""

    def __init__(self) -> None:
        self._by_label: dict[tuple[str, str, str], list[tuple[Mapping[str, str], _T]]] = {}

    def add(self, namespace: str, labels: Mapping[str, str], item: _T) -> None:
        for key, value in labels.items():
            self._by_label.setdefault((namespace, key, value), []).append((labels, item))

    def select(self, namespace: str, wanted: Mapping[str, str]) -> list[_T]:
        """The items of `namespace` whose labels carry all of `wanted` (not empty), in the order added."""
        fewest = min((self._by_label.get((namespace, k, v), []) for k, v in wanted.items()), key=len)
        return [item for labels, item in fewest if has_labels(labels, wanted)]
