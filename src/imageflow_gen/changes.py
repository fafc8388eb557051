"""What a render does to the running cluster: the state of every Kubernetes object a render
deploys (written with the output as `state/<profile>.json`), and the classification of the
differences between the committed state and a new one.

A change is one of, from harmless to dangerous:

- added, removed: the object appears or goes;
- in place: applied as it is, no pod restarts;
- rollout: the pod template changes, so the workload's pods are replaced (how many, how);
- recreate: a field the API server refuses to change (schemas/immutable-fields.json, each
  rule quoting the Kubernetes 1.28 validation that enforces it) differs, so the object must
  be deleted and created again;
- data at risk: an object that holds persistent data (a PersistentVolume, a claim, a
  StatefulSet with volume claims, a namespace with any of these) is removed or must be
  recreated, or a volume would shrink.

The state holds hashes and the few values the classification reads, not the objects: it is
small, and holds nothing the output does not hold already.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ImageflowError, Location, OutputError, Problem
from .model.quantity import parse
from .resources import data_dir

STATE_FORMAT = 1
KINDS_WITH_PODS = ("Deployment", "StatefulSet", "DaemonSet")
DATA_KINDS = ("PersistentVolume", "PersistentVolumeClaim")
SEVERITY = ("unchanged", "added", "in-place", "rollout", "removed", "recreate", "data-at-risk")


def state_path(profile: str) -> str:
    return f"state/{profile}.json"


@cache
def rules() -> dict[str, list[dict[str, Any]]]:
    """The immutable fields per `apiVersion Kind` (schemas/immutable-fields.json)."""
    data = json.loads((data_dir("schemas") / "immutable-fields.json").read_text())
    return dict(data["kinds"])


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def key(obj: dict[str, Any]) -> str:
    """`apiVersion Kind namespace/name` (no namespace: `name`)."""
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    return f"{obj['apiVersion']} {obj['kind']} {where}"


def _immutable(obj: dict[str, Any]) -> dict[str, str]:
    """Each immutable field's digest (a field left out has the digest of null)."""
    result = {}
    for rule in rules().get(f"{obj['apiVersion']} {obj['kind']}", []):
        for path in rule.get("fields", []):
            result[path] = _digest(_get(obj, path))
        for parent, allowed in rule.get("all_but", {}).items():
            for name, value in sorted((_get(obj, parent) or {}).items()):
                if name not in allowed:
                    result[f"{parent}.{name}"] = _digest(value)
    return result


def _storage(obj: dict[str, Any]) -> dict[str, str]:
    """The sizes of the volumes the object claims, by claim."""
    if obj["kind"] == "PersistentVolumeClaim":
        size = _get(obj, "spec.resources.requests.storage")
        return {obj["metadata"]["name"]: str(size)} if size is not None else {}
    if obj["kind"] == "StatefulSet":
        sizes = {t["metadata"]["name"]: _get(t, "spec.resources.requests.storage") for t in _volume_claims(obj)}
        return {claim: str(size) for claim, size in sizes.items() if size is not None}
    return {}


def _volume_claims(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_get(obj, "spec.volumeClaimTemplates") or [])


def _holds_data(obj: dict[str, Any]) -> bool:
    return obj["kind"] in DATA_KINDS or bool(obj["kind"] == "StatefulSet" and _volume_claims(obj))


def _rollout(obj: dict[str, Any]) -> str:
    """How the workload's pods are replaced when its template changes."""
    spec = obj.get("spec", {})
    replicas = spec.get("replicas")
    if obj["kind"] == "Deployment":
        strategy = spec.get("strategy", {})
        rolling = strategy.get("rollingUpdate", {})
        how = strategy.get("type", "RollingUpdate")
        if how == "RollingUpdate":
            how += f" (surge {rolling.get('maxSurge', '25%')}, unavailable {rolling.get('maxUnavailable', '25%')})"
        count = f"{replicas} pods" if replicas is not None else "every pod (autoscaled)"
        return f"{count}, {how}"
    if obj["kind"] == "StatefulSet":
        return f"{replicas if replicas is not None else 1} pods, one at a time in reverse order"
    return "one pod per node, one node at a time"


def state(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """What the classification needs of each object."""
    result = {}
    for obj in objects:
        entry: dict[str, Any] = {"sha256": _digest(obj)}
        if obj["kind"] in KINDS_WITH_PODS:
            entry["template"] = _digest(_get(obj, "spec.template"))
            entry["rollout"] = _rollout(obj)
        if immutable := _immutable(obj):
            entry["immutable"] = immutable
        if storage := _storage(obj):
            entry["storage"] = storage
        if _holds_data(obj):
            entry["data"] = True
        result[key(obj)] = entry
    holding = {obj["metadata"].get("namespace") for obj in objects if _holds_data(obj)}
    for obj in objects:
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] in holding:
            result[key(obj)]["data"] = True  # deleting it deletes what holds the data
    return {"format": STATE_FORMAT, "objects": dict(sorted(result.items()))}


def state_text(objects: list[dict[str, Any]]) -> str:
    return json.dumps(state(objects), indent=1, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Change:
    key: str
    category: str  # one of SEVERITY but "unchanged"
    detail: str = ""
    fields: tuple[str, ...] = field(default=())


def _resized(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(the claims that would shrink, those that grow), each as `claim before -> after`."""
    shrunk: list[str] = []
    grown: list[str] = []
    for claim, size in new.get("storage", {}).items():
        before = old.get("storage", {}).get(claim)
        if before is None or parse(size) == parse(before):
            continue
        (shrunk if parse(size) < parse(before) else grown).append(f"{claim} {before} -> {size}")
    return shrunk, grown


def classify(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every object that differs between two states, classified; in key order."""
    before, after = old.get("objects", {}), new.get("objects", {})
    result = []
    for k in sorted(set(before) | set(after)):
        o, n = before.get(k), after.get(k)
        if o is None:
            result.append(Change(k, "added"))
        elif n is None:
            result.append(
                Change(
                    k, "data-at-risk" if o.get("data") else "removed", "deleted with its data" if o.get("data") else ""
                )
            )
        elif o["sha256"] != n["sha256"]:
            result.append(_changed(k, o, n))
    return result


def _changed(k: str, o: dict[str, Any], n: dict[str, Any]) -> Change:
    immutable = tuple(
        sorted(
            p
            for p in set(o.get("immutable", {})) | set(n.get("immutable", {}))
            if o.get("immutable", {}).get(p) != n.get("immutable", {}).get(p)
        )
    )
    shrunk, grown = _resized(o, n)
    if shrunk:
        return Change(k, "data-at-risk", "volume would shrink: " + ", ".join(shrunk), immutable)
    if immutable:
        category = "data-at-risk" if o.get("data") else "recreate"
        return Change(k, category, "immutable: " + ", ".join(immutable), immutable)
    if o.get("template") is not None and o.get("template") != n.get("template"):
        return Change(k, "rollout", n.get("rollout", ""))
    return Change(k, "in-place", ("volume grows: " + ", ".join(grown)) if grown else "")


def worst(changes: list[Change]) -> str:
    return max((c.category for c in changes), key=SEVERITY.index, default="unchanged")


EXIT_RECREATE = 3  # `plan`: an object must be recreated
EXIT_DATA_AT_RISK = 4  # `plan`: data would be lost; `render` refuses without --allow-data-loss


class DataAtRisk(ImageflowError):
    """A render would delete or recreate what holds persistent data."""

    exit_code = EXIT_DATA_AT_RISK


def committed_state(out: Path, profile: str) -> dict[str, Any]:
    """The state the output holds for `profile` (empty when it holds none: everything is new)."""
    path = out / state_path(profile)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # nothing rendered there (yet)
        return {"format": STATE_FORMAT, "objects": {}}
    except OSError as error:
        raise OutputError([Problem(Location(str(path)), "", f"cannot read it: {error.strerror}")]) from None
    try:
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != STATE_FORMAT or not isinstance(data.get("objects"), dict):
            raise ValueError("not a state of this format")
    except (ValueError, AttributeError) as error:
        raise OutputError(
            [Problem(Location(str(path)), "", f"is no state imageflow-gen wrote ({error}); render once more")]
        ) from None
    return data


def changes_of(out: Path, profile: str, files: dict[str, str]) -> list[Change]:
    """What applying `files` (a render of `profile`) changes from what `out` holds."""
    return classify(committed_state(out, profile), json.loads(files[state_path(profile)]))


def refuse_data_loss(out: Path, profile: str, changes: list[Change]) -> None:
    """Raise, naming each object, when a change puts data at risk."""
    risky = [c for c in changes if c.category == "data-at-risk"]
    if risky:
        where = Location(str(out / state_path(profile)))
        raise DataAtRisk(
            [
                Problem(where, c.key, f"{c.detail or 'holds persistent data'}; render with --allow-data-loss to go on")
                for c in risky
            ]
        )
