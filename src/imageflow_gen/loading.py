"""Read profile YAML with positions and merge the `extends` chain. No validation of meaning.

The YAML is composed into nodes by ruamel.yaml (YAML 1.2 rules, so `yes` and `on` stay
strings; libyaml's parser through ruamel.yaml.clib) and converted here, by hand, into plain
values. Doing the conversion ourselves
means: no constructor runs for any tag, duplicate keys are reported instead of silently
overwritten, aliases cannot expand without bound, and every value keeps the file, line and
column it came from, through the merge, so a later problem can point at it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.resolver import VersionedResolver

from .files import MAX_FILE_BYTES, read_capped
from .errors import InputError, Location, Path, Problem, ValidationFailed, display_path, dotted

# Limits against hostile input: above real topologies (the benchmark's largest profile, 8,000
# processing services, is about 1.2 MB and 99,600 values) and low enough that a hostile file
# is refused in well under two seconds: the size is checked before reading, the values while
# parsing (a million-item list stops at the 100,000th).
MAX_DEPTH = 64
MAX_VALUES = 100_000
MAX_NUMBER_DIGITS = 40
MAX_EXTENDS = 16

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null")}
_STR = f"{_TAG}str"
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9]+$")
# Zero-width and bidirectional-control characters: invisible, and able to make a name read
# differently from what it is.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


@dataclass
class LValue:
    """A value from a YAML file together with where it stands.

    `value` is a dict[str, LValue], a list[LValue] or a plain scalar. For a map,
    `key_locs` holds where each key is written.
    """

    value: Any
    loc: Location
    raw: str | None = None
    key_locs: dict[str, Location] = field(default_factory=dict)


@dataclass
class Loaded:
    """A merged profile: plain data plus, for every path in it, where it was written."""

    name: str
    files: list[str]
    data: dict[str, Any]
    value_locs: dict[Path, Location]
    key_locs: dict[Path, Location]
    raw: dict[Path, str]
    root: str = ""
    removed: dict[tuple[Path, str | None], Location] = field(default_factory=dict)
    """What a child profile removed: (path of the named list, item name) or (path of the unset
    key, None) -> where it said so."""

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """Where `path` was written; falls back to the nearest written ancestor."""
        if key and path in self.key_locs:
            return self.key_locs[path]
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.key_locs and end < len(path):
                return self.key_locs[prefix]
            if prefix in self.value_locs:
                return self.value_locs[prefix]
        return Location(self.files[-1] if self.files else self.name)

    def problem(self, path: Path, message: str, *, severity: str = "error", key: bool = False) -> Problem:
        """A finding about the key at `path`, located where that key was written: the one way
        findings of the model, the plan and the capacity check become problems."""
        return Problem(self.locate(path, key=key), dotted(path), message, severity=severity)


class _Reader:
    """Builds one file's LValue tree straight from the parser's events, collecting problems.

    No node tree is composed first: values are counted as they arrive (an alias adds the size
    of what it repeats), so an oversized or alias-bombed document is refused after reading
    only as much of it as the limit allows.
    """

    def __init__(self, display: str, events: Iterator[Any]):
        self.display = display
        self.events = events
        self.problems: list[Problem] = []
        self.count = 0
        self.anchors: dict[str, tuple[LValue, int]] = {}

    def loc(self, event: Any) -> Location:
        mark = event.start_mark
        return Location(self.display, mark.line + 1, mark.column + 1)

    def problem(self, event: Any, path: Path, message: str) -> None:
        self.problems.append(Problem(self.loc(event), dotted(path), message))

    def grow(self, event: Any, path: Path, size: int) -> None:
        self.count += size
        if self.count > MAX_VALUES:
            raise InputError(
                [
                    Problem(
                        self.loc(event),
                        dotted(path),
                        f"document has more than {MAX_VALUES} values (a huge list, or an alias "
                        "bomb?); refusing to read it",
                    )
                ]
            )

    def value(self, event: Any, path: Path, depth: int = 0) -> tuple[LValue, int]:
        """The value that starts with `event`, and how many values it holds."""
        if isinstance(event, AliasEvent):
            if event.anchor not in self.anchors:
                raise InputError([Problem(self.loc(event), dotted(path), f"unknown alias *{event.anchor}")])
            found, size = self.anchors[event.anchor]
            self.grow(event, path, size)
            return found, size
        self.grow(event, path, 1)
        if depth > MAX_DEPTH:
            raise InputError(
                [Problem(self.loc(event), dotted(path), f"nesting deeper than {MAX_DEPTH} levels; refusing to read it")]
            )
        if isinstance(event, MappingStartEvent):
            result, size = self.mapping(event, path, depth)
        elif isinstance(event, SequenceStartEvent):
            result, size = self.sequence(event, path, depth)
        else:
            result, size = self.scalar(event, path), 1
        if event.anchor is not None:
            self.anchors[event.anchor] = (result, size)
        return result, size

    def mapping(self, start: Any, path: Path, depth: int) -> tuple[LValue, int]:
        if start.tag not in (None, "!", f"{_TAG}map"):
            self.problem(start, path, f"tag {start.tag} is not allowed; only plain YAML maps, lists and scalars")
        items: dict[str, LValue] = {}
        key_locs: dict[str, Location] = {}
        size = 1
        while not isinstance(key_event := next(self.events), MappingEndEvent):
            key = self.key(key_event, path, depth)
            value, value_size = self.value(next(self.events), path + (key or "",), depth + 1)
            size += value_size
            if key is None:
                continue
            if key in items:
                first = key_locs[key]
                self.problem(key_event, path + (key,), f"duplicate key (first defined at line {first.line})")
                continue
            key_locs[key] = self.loc(key_event)
            items[key] = value
        return LValue(items, self.loc(start), key_locs=key_locs), size

    def key(self, event: Any, path: Path, depth: int) -> str | None:
        """A map's key, or None (with a problem) when it is not a plain string."""
        if isinstance(event, ScalarEvent) and event.value == "<<" and event.implicit[0]:
            self.problem(event, path, "merge keys (<<) are not supported; use `extends`")
            return None
        if not isinstance(event, ScalarEvent) or self.tag_of(event) != f"{_TAG}str":
            described = self.describe(event)
            if not isinstance(event, ScalarEvent):
                self.value(event, path, depth + 1)  # read past it
            self.problem(event, path, f"keys must be plain strings, not {described}")
            return None
        self.check_text(event, path + (event.value,), event.value)
        return str(event.value)

    def sequence(self, start: Any, path: Path, depth: int) -> tuple[LValue, int]:
        if start.tag not in (None, "!", f"{_TAG}seq"):
            self.problem(start, path, f"tag {start.tag} is not allowed; only plain YAML maps, lists and scalars")
        values: list[LValue] = []
        size = 1
        while not isinstance(event := next(self.events), SequenceEndEvent):
            value, value_size = self.value(event, path + (len(values),), depth + 1)
            values.append(value)
            size += value_size
        return LValue(values, self.loc(start)), size

    def tag_of(self, event: Any) -> str:
        if event.tag is None and event.implicit[0]:
            return _resolve_plain(event.value)
        return f"{_TAG}str" if event.tag in (None, "!") else str(event.tag)

    def scalar(self, event: Any, path: Path) -> LValue:
        tag, text = self.tag_of(event), event.value
        if tag not in _SCALAR_TAGS:
            self.problem(event, path, f"tag {tag} is not allowed; only plain YAML maps, lists and scalars")
            return LValue(text, self.loc(event), raw=text)
        self.check_text(event, path, text)
        return LValue(self.typed(event, path, tag, text), self.loc(event), raw=text)

    def typed(self, event: Any, path: Path, tag: str, text: str) -> Any:
        kind = tag[len(_TAG) :]
        if kind == "str":
            return text
        if kind == "null":
            return None
        if kind == "bool":
            return text.lower() == "true"
        if kind == "int":
            if len(text) > MAX_NUMBER_DIGITS:
                self.problem(event, path, f"a number of {len(text)} digits; the limit is {MAX_NUMBER_DIGITS}")
                return 0
            if _LEADING_ZERO.match(text):
                self.problem(
                    event,
                    path,
                    f"ambiguous number {text} (YAML 1.1 tools read it as octal); "
                    f"write it without the leading zero, or quote it if a string is meant",
                )
                return int(text, 10)
            return int(text.replace("_", ""), 0)
        special = text.lower().lstrip("+")
        if special in (".inf", "-.inf", ".nan"):  # YAML's spellings, which float() does not read
            return float(special.replace(".", ""))
        return float(text)

    def check_text(self, event: Any, path: Path, text: str) -> None:
        found = _INVISIBLE.search(text)
        if found:
            self.problem(
                event,
                path,
                f"contains the invisible character U+{ord(found.group()):04X} "
                "(zero-width or bidirectional control); remove it",
            )
        elif "\0" in text:
            self.problem(event, path, "contains a NUL character; remove it")

    @staticmethod
    def describe(event: Any) -> str:
        if isinstance(event, MappingStartEvent):
            return "a map"
        if isinstance(event, SequenceStartEvent):
            return "a list"
        if isinstance(event, AliasEvent):
            return f"the alias *{event.anchor}"
        return f"the {str(event.tag or 'str').removeprefix(_TAG)} {event.value!r}"


@cache
def _plain_resolvers() -> dict[str, list[tuple[str, Any]]]:
    """ruamel.yaml's YAML 1.2 implicit resolvers by first character ('' for the empty value),
    each list ending with those for any character."""
    table = VersionedResolver(version=(1, 2)).versioned_resolver
    compiled = {
        first: [(str(tag), re.compile(regexp.pattern, regexp.flags)) for tag, regexp in resolvers]
        for first, resolvers in table.items()
    }
    anywhere = compiled.pop(None, [])
    return {first: resolvers + anywhere for first, resolvers in compiled.items()}


_ANYWHERE: list[tuple[str, Any]] = []


def _resolve_plain(value: str) -> str:
    """The tag YAML 1.2 gives a plain scalar: ruamel.yaml's resolution, without its Tag objects."""
    for tag, regexp in _plain_resolvers().get(value[:1], _ANYWHERE):
        if regexp.match(value):
            return tag
    return _STR


def read_file(path: FsPath, display: str) -> LValue:
    """Read one YAML file into an LValue tree, or raise with every problem found."""
    location = Location(display)
    try:
        data, size = read_capped(path)
    except FileNotFoundError:
        raise InputError([Problem(location, "", "file not found")]) from None
    except OSError as exc:
        raise InputError([Problem(location, "", f"cannot read: {exc.strerror or exc}")]) from None
    if size > MAX_FILE_BYTES:
        raise InputError(
            [Problem(location, "", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}, refusing to read it")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            [
                Problem(
                    Location(display, line, 1),
                    "",
                    f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                )
            ]
        ) from None
    return _parse(text, display)


def _parse(text: str, display: str) -> LValue:
    # The safe loader's parser (libyaml's where ruamel.yaml.clib is installed) yields events;
    # _Reader builds the values from them with YAML 1.2 resolution. Nothing is constructed.
    events = YAML(typ="safe").parse(io.StringIO(text))
    try:
        tree = _document(events, display)
    except ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise InputError(
            [
                Problem(
                    Location(display, line, column),
                    "",
                    f"invalid character U+{_code_point(exc.character):04X}: control characters are not allowed in YAML",
                )
            ]
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise InputError([Problem(where, "", f"invalid YAML: {message}")]) from None
    return tree


def _code_point(character: int | str) -> int:
    return character if isinstance(character, int) else ord(character)


def _document(events: Iterator[Any], display: str) -> LValue:
    """The one document of a profile file, as an LValue tree."""
    reader = _Reader(display, events)
    tree = None
    for event in events:
        if isinstance(event, DocumentStartEvent):
            if tree is not None:
                raise InputError([Problem(Location(display), "", "a profile is one YAML document, found several")])
            tree, _ = reader.value(next(events), ())
            next(events)  # the document's end
    if tree is None or (tree.value is None and tree.raw == ""):
        raise InputError([Problem(Location(display), "", "the file is empty; a profile is a YAML map")])
    if not isinstance(tree.value, dict):
        reader.problems.append(Problem(tree.loc, "", "a profile must be a YAML map at the top level"))
    if reader.problems:
        raise ValidationFailed(reader.problems)
    return tree


# ---- merging ---------------------------------------------------------------------------


def _name_of(item: LValue) -> str | None:
    name = item.value.get("name") if isinstance(item.value, dict) else None
    return name.value if name is not None and isinstance(name.value, str) else None


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and all(_name_of(item) is not None for item in value)


# Merge directives: `$remove: true` on an item of a named list drops the inherited item of that
# name; `$unset: [key, ...]` in a map drops those inherited keys. Only a child can remove, and
# only what its parents wrote.
REMOVE = "$remove"
UNSET = "$unset"
DIRECTIVES = (REMOVE, UNSET)


@dataclass
class _Merge:
    """What one merge step found: problems, and what it removed (path of the named list and the
    item's name, or the path of the unset key -> where the child said so)."""

    problems: list[Problem] = field(default_factory=list)
    removed: dict[tuple[Path, str | None], Location] = field(default_factory=dict)


def merge(parent: LValue, child: LValue, path: Path = (), out: _Merge | None = None) -> LValue:
    """Child over parent: maps merge, lists of named maps merge by name, anything else replaces;
    the directives remove inherited items and keys."""
    out = out if out is not None else _Merge()
    if isinstance(parent.value, dict) and isinstance(child.value, dict):
        items = dict(parent.value)
        key_locs = dict(parent.key_locs)
        for key in _unset_keys(child, path, out):
            if key in child.value:
                out.problems.append(
                    Problem(child.key_locs[UNSET], dotted(path + (UNSET,)), f"{key!r} is both unset and set here")
                )
            elif key not in items:
                out.problems.append(
                    Problem(
                        child.key_locs[UNSET],
                        dotted(path + (UNSET,)),
                        f"nothing inherited to unset: {dotted(path + (key,))} is not set by the parent profiles",
                    )
                )
            else:
                del items[key]
                del key_locs[key]
                out.removed[(path + (key,), None)] = child.key_locs[UNSET]
        for key, value in child.value.items():
            if key == UNSET:
                continue
            items[key] = merge(items[key], value, path + (key,), out) if key in items else value
            key_locs[key] = child.key_locs[key]
        return LValue(items, child.loc, key_locs=key_locs)
    if _is_named_list(parent.value) and _is_named_list(child.value) and child.value:
        kept: list[LValue | None] = list(parent.value)
        index = {_name_of(item): i for i, item in enumerate(parent.value)}
        for i, item in enumerate(child.value):
            if REMOVE in item.value:
                _remove(kept, index, item, path, i, out)
        merged = [item for item in kept if item is not None]
        index = {_name_of(item): i for i, item in enumerate(merged)}
        written: set[str | None] = set()  # a name twice in the child stays twice: the model says so
        for item in child.value:
            name = _name_of(item)
            if REMOVE in item.value:
                continue
            if name in index and name not in written:
                merged[index[name]] = merge(merged[index[name]], item, path + (index[name],), out)
            else:
                index.setdefault(name, len(merged))
                merged.append(item)
            written.add(name)
        return LValue(merged, child.loc)
    return child


def _unset_keys(child: LValue, path: Path, out: _Merge) -> list[str]:
    """The keys a map's `$unset` names; a malformed one is a problem and unsets nothing."""
    directive = child.value.get(UNSET)
    if directive is None:
        return []
    keys = directive.value if isinstance(directive.value, list) else None
    if keys is None or not keys or not all(isinstance(k.value, str) for k in keys):
        out.problems.append(
            Problem(directive.loc, dotted(path + (UNSET,)), "must be a list of the inherited keys to unset")
        )
        return []
    return [k.value for k in keys]


def _remove(
    kept: list[LValue | None], index: dict[str | None, int], item: LValue, path: Path, i: int, out: _Merge
) -> None:
    """Drop the inherited item that `item` (`{name: ..., $remove: true}`, the child's i-th) names."""
    name, flag = _name_of(item), item.value[REMOVE]
    where, key = item.key_locs[REMOVE], dotted(path + (i, REMOVE))
    if flag.value is not True or set(item.value) != {"name", REMOVE}:
        out.problems.append(Problem(where, key, "write `$remove: true` beside the item's name and nothing else"))
    elif name not in index or kept[index[name]] is None:
        out.problems.append(
            Problem(
                where,
                key,
                f"nothing inherited to remove: the parent profiles have no {dotted(path)} item named {name!r}",
            )
        )
    else:
        kept[index[name]] = None
        out.removed[(path, name)] = where


def _stray_directives(node: LValue, path: Path, out: _Merge) -> None:
    """Directives that merged into nothing (in a profile's own new items, or in a root profile)."""
    if isinstance(node.value, dict):
        for key, value in node.value.items():
            if key in DIRECTIVES:
                out.problems.append(
                    Problem(
                        node.key_locs[key],
                        dotted(path + (key,)),
                        f"{key} only applies to what a profile inherits through `extends`; "
                        "there is nothing inherited here",
                    )
                )
            else:
                _stray_directives(value, path + (key,), out)
    elif isinstance(node.value, list):
        for i, item in enumerate(node.value):
            _stray_directives(item, path + (i,), out)


def _flatten(node: LValue, path: Path, out: Loaded) -> Any:
    out.value_locs[path] = node.loc
    if node.raw is not None:
        out.raw[path] = node.raw
    if isinstance(node.value, dict):
        result = {}
        for key, value in node.value.items():
            out.key_locs[path + (key,)] = node.key_locs[key]
            result[key] = _flatten(value, path + (key,), out)
        return result
    if isinstance(node.value, list):
        return [_flatten(item, path + (i,), out) for i, item in enumerate(node.value)]
    return node.value


def walk(node: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) of plain data, containers included, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, path + (i,))


# ---- profiles --------------------------------------------------------------------------

_PROFILE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")
_META_KEYS = ("extends",)


def profile_path(profiles_dir: FsPath, name: str, referrer: Location | None = None) -> FsPath:
    """The file of profile `name`; a name is a bare word, never a path. A bad name is blamed on
    `referrer` (the `extends` that names it) or else on --profile."""
    if not _PROFILE_NAME.fullmatch(name) or len(name) > 63:
        where, key = (referrer, "extends") if referrer is not None else (Location("--profile"), "")
        raise InputError(
            [
                Problem(
                    where,
                    key,
                    f"{name!r} is not a profile name (lower-case letters, digits, '-' and '_'; "
                    "no paths); `imageflow-gen profiles` lists them",
                )
            ]
        )
    return profiles_dir / f"{name}.yaml"


def _chain(profiles_dir: FsPath, name: str) -> list[tuple[str, LValue]]:
    """The profile and its ancestors, root first."""
    chain: list[tuple[str, LValue]] = []
    seen: list[str] = []
    current: str | None = name
    referrer: Location | None = None
    while current is not None:
        path = profile_path(profiles_dir, current, referrer)
        display = display_path(path)
        if current in seen:
            cycle = " -> ".join(seen + [current])
            raise InputError([Problem(referrer or Location(display), "extends", f"extends cycle: {cycle}")])
        if len(seen) >= MAX_EXTENDS:
            raise InputError(
                [Problem(referrer or Location(display), "extends", f"extends chain longer than {MAX_EXTENDS} profiles")]
            )
        if referrer is not None and not path.is_file():
            raise InputError(
                [Problem(referrer, "extends", f"parent profile {current!r} not found (looked for {display})")]
            )
        seen.append(current)
        tree = read_file(path, display)
        chain.append((current, tree))
        current, referrer = _parent(tree)
    return list(reversed(chain))


def _parent(tree: LValue) -> tuple[str | None, Location | None]:
    extends = tree.value.get("extends")
    if extends is None:
        return None, None
    if not isinstance(extends.value, str):
        raise ValidationFailed([Problem(extends.loc, "extends", "must be a profile name (a string)")])
    return extends.value.removesuffix(".yaml"), extends.loc


def load_profile(profiles_dir: FsPath, name: str) -> Loaded:
    """Load profile `name` from `profiles_dir`, merged over its `extends` chain."""
    chain = _chain(profiles_dir, name)
    merged = chain[0][1]
    out = _Merge()
    for _, tree in chain[1:]:
        merged = merge(merged, tree, (), out)
    _stray_directives(merged, (), out)
    if out.problems:
        raise ValidationFailed(out.problems)
    for key in _META_KEYS:
        merged.value.pop(key, None)
        merged.key_locs.pop(key, None)
    loaded = Loaded(
        name=name,
        files=[t.loc.file for _, t in chain],
        data={},
        value_locs={},
        key_locs={},
        raw={},
        root=chain[0][0],
        removed=out.removed,
    )
    loaded.data = _flatten(merged, (), loaded)
    return loaded


def missing_ancestors(profiles_dir: FsPath, name: str, shipped_dir: FsPath) -> list[FsPath]:
    """The shipped profiles that `name` and its ancestors would need in `profiles_dir` and that
    are missing there (nearest first); a name found in neither ends the chain."""
    missing: list[FsPath] = []
    current: str | None = name
    while current is not None and not profile_path(profiles_dir, current).is_file():
        shipped = profile_path(shipped_dir, current)
        if not shipped.is_file() or shipped in missing or len(missing) >= MAX_EXTENDS:
            break
        missing.append(shipped)
        current = _parent(read_file(shipped, display_path(shipped)))[0]
    return missing


def list_profiles(profiles_dir: FsPath) -> list[str]:
    """Every profile name in `profiles_dir`, sorted."""
    return sorted(p.stem for p in profiles_dir.glob("*.yaml") if _PROFILE_NAME.fullmatch(p.stem))
