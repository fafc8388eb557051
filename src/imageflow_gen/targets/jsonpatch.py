"""RFC 6902 JSON patches between two objects, and applying them (for tests and checks)."""

from __future__ import annotations

import copy
from typing import Any


def _pointer(path: tuple[str | int, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def diff(old: Any, new: Any, path: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Operations that turn `old` into `new`: maps key by key, equal-length lists item by item."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict[str, Any]] = []
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": _pointer(path + (key,))})
        for key, value in new.items():
            if key not in old:
                ops.append({"op": "add", "path": _pointer(path + (key,)), "value": value})
            else:
                ops.extend(diff(old[key], value, path + (key,)))
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [op for i, (a, b) in enumerate(zip(old, new, strict=True)) for op in diff(a, b, path + (i,))]
    return [{"op": "replace", "path": _pointer(path), "value": new}]


def _parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def apply(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Apply add, remove and replace operations (all `diff` emits) to a copy of `doc`."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _parts(op["path"])
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if op["op"] == "remove":
            del target[key]
        else:
            target[key] = op["value"]
    return doc
