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
from pathlib import Path as FsPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import InputError, Location, Path, Problem, ValidationFailed, dotted

# Limits against hostile input, sized well above real topologies (a profile with 8,000
# processing services is about 1.2 MB and 250,000 values).
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 1_000_000
MAX_EXTENDS = 16

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null")}
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


class _Reader:
    """Turns one file's node tree into LValues, collecting problems as it goes."""

    def __init__(self, display: str):
        self.display = display
        self.problems: list[Problem] = []
        self.count = 0

    def loc(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.display, mark.line + 1, mark.column + 1)

    def problem(self, node: Node, path: Path, message: str) -> None:
        self.problems.append(Problem(self.loc(node), dotted(path), message))

    def convert(self, node: Node, path: Path, depth: int = 0) -> LValue:
        self.count += 1
        if self.count > MAX_VALUES:
            raise InputError([Problem(self.loc(node), dotted(path),
                                      f"document expands to more than {MAX_VALUES} values "
                                      "(an alias bomb?); refusing to read it")])
        if depth > MAX_DEPTH:
            raise InputError([Problem(self.loc(node), dotted(path),
                                      f"nesting deeper than {MAX_DEPTH} levels; refusing to read it")])
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return self.sequence(node, path, depth)
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: Path, depth: int) -> LValue:
        if str(node.tag) != f"{_TAG}map":
            self.problem(node, path, f"tag {node.tag} is not allowed; only plain YAML maps, lists and scalars")
        items: dict[str, LValue] = {}
        key_locs: dict[str, Location] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == "<<":
                self.problem(key_node, path, "merge keys (<<) are not supported; use `extends`")
                continue
            if not isinstance(key_node, ScalarNode) or str(key_node.tag) != f"{_TAG}str":
                self.problem(key_node, path, f"keys must be plain strings, not {_describe(key_node)}")
                continue
            key = key_node.value
            self.check_text(key_node, path + (key,), key)
            if key in items:
                first = key_locs[key]
                self.problem(key_node, path + (key,), f"duplicate key (first defined at line {first.line})")
                continue
            key_locs[key] = self.loc(key_node)
            items[key] = self.convert(value_node, path + (key,), depth + 1)
        return LValue(items, self.loc(node), key_locs=key_locs)

    def sequence(self, node: SequenceNode, path: Path, depth: int) -> LValue:
        if str(node.tag) != f"{_TAG}seq":
            self.problem(node, path, f"tag {node.tag} is not allowed; only plain YAML maps, lists and scalars")
        values = [self.convert(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return LValue(values, self.loc(node))

    def scalar(self, node: ScalarNode, path: Path) -> LValue:
        tag, text = str(node.tag), node.value
        if tag not in _SCALAR_TAGS:
            self.problem(node, path, f"tag {tag} is not allowed; only plain YAML maps, lists and scalars")
            return LValue(text, self.loc(node), raw=text)
        self.check_text(node, path, text)
        return LValue(self.typed(node, path, tag, text), self.loc(node), raw=text)

    def typed(self, node: ScalarNode, path: Path, tag: str, text: str) -> Any:
        kind = tag[len(_TAG):]
        if kind == "str":
            return text
        if kind == "null":
            return None
        if kind == "bool":
            return text.lower() == "true"
        if kind == "int":
            if _LEADING_ZERO.match(text):
                self.problem(node, path, f"ambiguous number {text} (YAML 1.1 tools read it as octal); "
                             f"write it without the leading zero, or quote it if a string is meant")
                return int(text, 10)
            return int(text.replace("_", ""), 0)
        special = text.lower().lstrip("+")
        if special in (".inf", "-.inf", ".nan"):  # YAML's spellings, which float() does not read
            return float(special.replace(".", ""))
        return float(text)

    def check_text(self, node: Node, path: Path, text: str) -> None:
        found = _INVISIBLE.search(text)
        if found:
            self.problem(node, path, f"contains the invisible character U+{ord(found.group()):04X} "
                         "(zero-width or bidirectional control); remove it")


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a map"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the {str(node.tag).removeprefix(_TAG)} {node.value!r}"


def read_file(path: FsPath, display: str) -> LValue:
    """Read one YAML file into an LValue tree, or raise with every problem found."""
    location = Location(display)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError([Problem(location, "", "file not found")]) from None
    except OSError as exc:
        raise InputError([Problem(location, "", f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError([Problem(location, "", f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError([Problem(Location(display, line, 1), "",
                                  f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})")]) from None
    return _parse(text, display)


def _parse(text: str, display: str) -> LValue:
    # The safe loader's composer: libyaml's parser where ruamel.yaml.clib is installed, YAML 1.2
    # resolution, and nodes that keep their marks. Nothing is constructed.
    yaml = YAML(typ="safe")
    try:
        documents = list(yaml.compose_all(io.StringIO(text)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise InputError([Problem(where, "", f"invalid YAML: {message}")]) from None
    documents = [d for d in documents if d is not None]
    if not documents:
        raise InputError([Problem(Location(display), "", "the file is empty; a profile is a YAML map")])
    if len(documents) > 1:
        raise InputError([Problem(Location(display), "", "a profile is one YAML document, found several")])
    reader = _Reader(display)
    tree = reader.convert(documents[0], ())
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


def merge(parent: LValue, child: LValue) -> LValue:
    """Child over parent: maps merge, lists of named maps merge by name, anything else replaces."""
    if isinstance(parent.value, dict) and isinstance(child.value, dict):
        items = dict(parent.value)
        key_locs = dict(parent.key_locs)
        for key, value in child.value.items():
            items[key] = merge(items[key], value) if key in items else value
            key_locs[key] = child.key_locs[key]
        return LValue(items, child.loc, key_locs=key_locs)
    if _is_named_list(parent.value) and _is_named_list(child.value) and child.value:
        merged = list(parent.value)
        index = {_name_of(item): i for i, item in enumerate(merged)}
        for item in child.value:
            name = _name_of(item)
            if name in index:
                merged[index[name]] = merge(merged[index[name]], item)
            else:
                index[name] = len(merged)
                merged.append(item)
        return LValue(merged, child.loc)
    return child


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


def profile_path(profiles_dir: FsPath, name: str) -> FsPath:
    """The file of profile `name`; a name is a bare word, never a path."""
    if not _PROFILE_NAME.match(name) or len(name) > 63:
        raise InputError([Problem(Location("--profile"), "",
                                  f"{name!r} is not a profile name (lower-case letters, digits, '-' and '_'; "
                                  "no paths); `imageflow-gen profiles` lists them")])
    return profiles_dir / f"{name}.yaml"


def _display(path: FsPath) -> str:
    try:
        return str(path.resolve().relative_to(FsPath.cwd().resolve()))
    except ValueError:
        return str(path)


def _chain(profiles_dir: FsPath, name: str) -> list[tuple[str, LValue]]:
    """The profile and its ancestors, root first."""
    chain: list[tuple[str, LValue]] = []
    seen: list[str] = []
    current, referrer = name, None
    while current is not None:
        path = profile_path(profiles_dir, current)
        display = _display(path)
        if current in seen:
            cycle = " -> ".join(seen + [current])
            raise InputError([Problem(referrer or Location(display), "extends", f"extends cycle: {cycle}")])
        if len(seen) >= MAX_EXTENDS:
            raise InputError([Problem(referrer or Location(display), "extends",
                                      f"extends chain longer than {MAX_EXTENDS} profiles")])
        if referrer is not None and not path.is_file():
            raise InputError([Problem(referrer, "extends",
                                      f"parent profile {current!r} not found (looked for {display})")])
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
    for _, tree in chain[1:]:
        merged = merge(merged, tree)
    for key in _META_KEYS:
        merged.value.pop(key, None)
        merged.key_locs.pop(key, None)
    loaded = Loaded(name=name, files=[t.loc.file for _, t in chain], data={},
                    value_locs={}, key_locs={}, raw={}, root=chain[0][0])
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
        current = _parent(read_file(shipped, _display(shipped)))[0]
    return missing


def list_profiles(profiles_dir: FsPath) -> list[str]:
    """Every profile name in `profiles_dir`, sorted."""
    return sorted(p.stem for p in profiles_dir.glob("*.yaml") if _PROFILE_NAME.match(p.stem))
