"""The model stage: a loaded profile -> Topology, or every problem with its file, line, column
and key. (The output gates are validate/; this checks the input.)"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import ValidationError

from .errors import Location, Path, Problem, ValidationFailed, dotted
from .loading import Loaded, walk
from .model import Topology, is_model, model_in, union_key, union_members
from .model.checks import Finding, Reference, check
from .shared import AWS_ACCESS_KEY, PRIVATE_KEY

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a map",
    "list_type": "a list",
    "model_type": "a map",
    "int_from_float": "an integer",
}


_CREDENTIAL_NAME = re.compile(r"(?i)(password|passwd|secret|token|api[_.-]?key|private[_.-]?key)")
# Maps whose values name secrets or are ciphertext, never secret values themselves.
_REFERENCE_MAPS = {"keys", "sealed"}


def literal_secrets(loaded: Loaded) -> list[Problem]:
    """A secret value typed into a profile: key material anywhere, or a credential-named key."""
    problems = []
    for path, node in walk(loaded.data):
        if not isinstance(node, str) or not node:
            continue
        named = any(isinstance(p, str) and _CREDENTIAL_NAME.search(p) for p in path[-1:])
        reference = any(p in _REFERENCE_MAPS for p in path if isinstance(p, str))
        if PRIVATE_KEY.search(node) or AWS_ACCESS_KEY.search(node) or (named and not reference):
            problems.append(
                loaded.problem(
                    path,
                    "looks like a secret value; a profile only references Secrets "
                    "(see `secrets:` and the credentials' Secret names), never holds one",
                )
            )
    return problems


def topology(loaded: Loaded) -> Topology:
    """Validate `loaded` against the model and the cross-field checks; raise with all problems."""
    secrets = literal_secrets(loaded)
    if secrets:
        raise ValidationFailed(secrets)
    try:
        topo = Topology.model_validate(loaded.data)
    except ValidationError as exc:
        raise ValidationFailed([_problem(loaded, error) for error in exc.errors()]) from None
    findings = check(topo)
    if findings:
        raise ValidationFailed(_problems(loaded, findings))
    return topo


def _problems(loaded: Loaded, findings: list[Finding]) -> list[Problem]:
    """Findings, located; references to an item that a child profile removed are blamed on the
    `$remove` that removed it, one problem per removal naming every reference."""
    order: list[Problem | tuple[Location, Path, str]] = []
    references: dict[tuple[Location, Path, str], list[Path]] = {}
    for finding in findings:
        removed = _removal(loaded, finding)
        if removed is None:
            order.append(loaded.problem(*finding))
            continue
        if removed not in references:
            order.append(removed)
        references.setdefault(removed, []).append(finding[0])
    problems = []
    for item in order:
        if isinstance(item, Problem):
            problems.append(item)
            continue
        where, items, name = item
        paths = references[item]
        which = ", ".join(f"{dotted(p)} ({loaded.locate(p)})" for p in paths)
        problems.append(Problem(where, dotted(items), f"removes {name!r}, still referenced by {which}"))
    return problems


def _removal(loaded: Loaded, finding: Finding) -> tuple[Location, Path, str] | None:
    """(where, list, name) of the `$remove` that took away the item a Reference misses."""
    if isinstance(finding, Reference):
        for items in finding.lists:
            where = loaded.removed.get((items, finding.name))
            if where is not None:
                return where, items, finding.name
    return None


def _problem(loaded: Loaded, error: Any) -> Problem:
    path, tagged = _untagged(tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden" and tagged is not None:
        return loaded.problem(path, _not_of_tag(path[-1], *tagged), key=True)
    if kind == "extra_forbidden":
        return loaded.problem(path, _unknown_key(path), key=True)
    if kind == "missing" and (path, None) in loaded.removed:
        return Problem(loaded.removed[(path, None)], dotted(path), "is required: a child profile cannot unset it")
    if kind == "missing":
        parent = path[:-1]
        return Problem(loaded.locate(parent, key=True), dotted(path), "required key is missing")
    return loaded.problem(path, _message(loaded, path, error))


def _message(loaded: Loaded, path: Path, error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:  # a model's own rule: its message, without pydantic's prefix
        return str(ctx["error"])
    if kind == "literal_error":
        return "must be one of " + str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, got {_shown(loaded, path, error['input'])}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{error['input']!r} is out of range: {error['msg'].lower().removeprefix('input ')}"
    if kind in ("too_short", "too_long") and isinstance(error["input"], list):
        return f"{error['msg'].lower().removeprefix('list ')}".replace("should", "must")
    return str(error["msg"])


def _shown(loaded: Loaded, path: Path, value: Any) -> str:
    """How a wrong value was written, with a hint where YAML typed it by itself."""
    raw = loaded.raw.get(path)
    if isinstance(value, bool):
        return f"the boolean {raw or value}" + ("; quote it if a string is meant" if raw else "")
    if isinstance(value, (int, float)):
        return f"the number {raw or value}; quote it if a string is meant"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _untagged(loc: Path) -> tuple[Path, tuple[str, dict[str, Any]] | None]:
    """pydantic names a tagged union's member in an error's location (`release.canary.x`); the
    profile has no such key. The location without it, and (tag, members) of the last union."""
    model: Any = Topology
    path: list[str | int] = []
    members: dict[str, Any] = {}
    tagged = None
    for part in loc:
        if members and isinstance(part, str) and part in members:
            model, tagged, members = members[part], (part, members), {}
            continue
        path.append(part)
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if is_model(model) else None
        if field is None:
            model, members = None, {}
            continue
        members = union_members(field.annotation)
        model = model_in(field.annotation)
    return tuple(path), tagged


def _not_of_tag(field: Any, tag: str, members: dict[str, Any]) -> str:
    """An unknown key under one member of a tagged union: say which members have it."""
    key = union_key(members)
    owners = sorted(t for t, member in members.items() if field in member.model_fields)
    if owners:
        return f"only used with {key} {' or '.join(owners)} (here {key} is {tag})"
    return f"unknown key ({key} {tag} takes: {', '.join(members[tag].model_fields)})"


def _unknown_key(path: Path) -> str:
    allowed = _allowed_keys(path[:-1])
    message = "unknown key"
    if allowed:
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        message += f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(sorted(allowed))})"
    return message


def _allowed_keys(path: Path) -> list[str]:
    """The field names of the model class at `path`, walking the model by field types."""
    model: Any = Topology
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if is_model(model) else None
        if field is None:
            return []
        model = model_in(field.annotation)
    return list(model.model_fields) if is_model(model) else []
