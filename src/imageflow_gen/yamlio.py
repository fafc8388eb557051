"""The only YAML emitter: rendered text is parsed back, normalised and written here.

Output rules, so every reader (kubectl and Helm use a YAML 1.1 parser) sees the same values:
- a string is written plain only when no YAML 1.1 or 1.2 reader could take it for anything
  else; otherwise it is double-quoted (JSON escaping, which is valid YAML);
- a multi-line string is a literal block (`|`), unless it has characters a block cannot hold;
- Kubernetes objects start with apiVersion, kind, metadata, then the rest in template order;
  metadata with name, namespace, labels, annotations, and labels and annotations sorted;
- two-space indents, lists not indented under their key (kubectl's style), LF line endings.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any

import yaml

_TOP_ORDER = ("apiVersion", "kind", "metadata")
_META_ORDER = ("name", "generateName", "namespace", "labels", "annotations")

# Plain scalars that a YAML 1.1 or 1.2 reader resolves to something other than a string.
_SPECIAL = re.compile(
    r"""^(?:
        ~|null|Null|NULL|
        y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|
        [-+]?(?:0|[1-9][0-9_]*)|[-+]?0[0-7_]+|[-+]?0o[0-7]+|[-+]?0x[0-9a-fA-F_]+|[-+]?0b[01_]+|
        [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|
        [-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|
        [-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+|
        [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|
        [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?|
        <<|=
    )$""",
    re.VERBOSE,
)
_PLAIN = re.compile(r"^(?:[A-Za-z0-9_./]|-(?=[^ ]))[A-Za-z0-9 _./:@()$+=,*-]*$")


class YamlParseError(ValueError):
    """Rendered text is not the YAML the emitter expects; carries line and column."""

    def __init__(self, message: str, line: int = 0, column: int = 0):
        super().__init__(message)
        self.line, self.column = line, column


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):  # type: ignore[misc,valid-type]
    """PyYAML's safe loader (libyaml where present, for speed), refusing duplicate keys.

    It reads YAML 1.1, as kubectl and Helm do: reading our own output with it proves that a
    YAML 1.1 reader sees exactly the values that were written.
    """

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if len(mapping) != len(node.value):  # a key came twice: find it, for the message
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return mapping


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def _shared_string(loader: Any, node: Any) -> str:
    """A string scalar, one object per distinct short text: tens of thousands of parsed objects
    repeat the same keys, labels and values, and the plan keeps every object."""
    value: str = loader.construct_scalar(node)
    return sys.intern(value) if len(value) <= _SHARED_LENGTH else value


_SHARED_LENGTH = 128
_StrictLoader.add_constructor("tag:yaml.org,2002:str", _shared_string)


def parse_all(text: str) -> list[Any]:
    """Every document of `text` as plain data (read as YAML 1.1; duplicate keys rejected)."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlParseError(
            str(exc).strip(), (mark.line + 1) if mark else 0, (mark.column + 1) if mark else 0
        ) from None


def order_object(obj: Any) -> Any:
    """Kubernetes key order at the top level and in metadata; the rest keeps its order."""
    if not isinstance(obj, dict):
        return obj
    ordered = _ordered(obj, _TOP_ORDER)
    meta = ordered.get("metadata")
    if isinstance(meta, dict):
        meta = _ordered(meta, _META_ORDER)
        for key in ("labels", "annotations"):
            if isinstance(meta.get(key), dict):
                meta[key] = dict(sorted(meta[key].items()))
        ordered["metadata"] = meta
    return ordered


def _ordered(mapping: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    result = {key: mapping[key] for key in first if key in mapping}
    result.update((key, value) for key, value in mapping.items() if key not in result)
    return result


def dump_all(documents: list[Any]) -> str:
    """Documents separated by `---`, each in canonical form."""
    return "---\n".join(dump(doc) for doc in documents)


Comments = Callable[[tuple[Any, ...]], "str | None"]


def dump(value: Any, comments: Comments | None = None) -> str:
    """One document in canonical form, ending with a newline.

    `comments`, if given, maps the path of a map key (list positions as ints) to a comment
    written above the key.
    """
    lines: list[str] = []
    if isinstance(value, (dict, list)) and value:
        _block(value, 0, lines, (), comments)
    else:
        lines.append(_scalar(value, 0))
    return "\n".join(lines) + "\n"


def _block(value: Any, indent: int, lines: list[str], path: tuple[Any, ...], comments: Comments | None) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            note = comments(path + (key,)) if comments else None
            if note:
                lines.extend(f"{pad}# {line}".rstrip() for line in note.splitlines())
            _entry(
                f"{pad}{_key(key)}:",
                item,
                indent,
                lines,
                path + (key,),
                comments,
                nested_indent=indent + 2,
                list_indent=indent,
            )
    else:
        for i, item in enumerate(value):
            if isinstance(item, dict) and item:
                sub: list[str] = []
                _block(item, indent + 2, sub, path + (i,), comments)
                first = next(n for n, line in enumerate(sub) if not line.lstrip().startswith("#"))
                # Comments of the item's first key go above the dash.
                lines.extend(line[2:] if line.startswith(" " * (indent + 2)) else line for line in sub[:first])
                lines.append(f"{pad}- {sub[first][indent + 2 :]}")
                lines.extend(sub[first + 1 :])
            else:
                _entry(
                    f"{pad}-",
                    item,
                    indent,
                    lines,
                    path + (i,),
                    comments,
                    nested_indent=indent + 2,
                    list_indent=indent + 2,
                )


def _entry(
    head: str,
    item: Any,
    indent: int,
    lines: list[str],
    path: tuple[Any, ...],
    comments: Comments | None,
    *,
    nested_indent: int,
    list_indent: int,
) -> None:
    if isinstance(item, dict) and item:
        lines.append(head)
        _block(item, nested_indent, lines, path, comments)
    elif isinstance(item, list) and item:
        lines.append(head)
        _block(item, list_indent, lines, path, comments)
    else:
        lines.append(f"{head} {_scalar(item, nested_indent)}")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"map keys must be strings, got {key!r}")
    return _string(key, 0, allow_block=False)


def _scalar(value: Any, indent: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the number {value}")
        # YAML 1.1 readers need a dot in the mantissa to see a float: 1e+20 -> 1.0e+20.
        mantissa, e, exponent = repr(value).partition("e")
        return (mantissa if "." in mantissa else mantissa + ".0") + (e + exponent)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, str):
        return _string(value, indent, allow_block=True)
    raise TypeError(f"cannot write a {type(value).__name__}")


def _string(text: str, indent: int, *, allow_block: bool) -> str:
    if "\n" in text and allow_block and _block_ok(text):
        chomp = "" if text.endswith("\n") else "-"
        pad = " " * indent
        body = [f"{pad}{line}" if line else "" for line in text.removesuffix("\n").split("\n")]
        return f"|{chomp}\n" + "\n".join(body)
    if _PLAIN.match(text) and not _SPECIAL.match(text) and not _awkward(text):
        return text
    return _quoted(text)


# Characters YAML does not allow in a document, even inside quotes: escape them.
_UNPRINTABLE = re.compile(r"[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")


def _quoted(text: str) -> str:
    """A double-quoted scalar: JSON escaping, plus escapes for what YAML cannot carry raw."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _UNPRINTABLE.sub(
        lambda m: "\\u%04x" % ord(m.group()) if ord(m.group()) < 0x10000 else "\\U%08x" % ord(m.group()), quoted
    )


def _awkward(text: str) -> bool:
    """Plain text that YAML would still read differently: trailing spaces, ': ', ' #', '- ' starts."""
    return text != text.strip() or ": " in text or " #" in text or text.endswith(":") or text.startswith(("---", "..."))


def _block_ok(text: str) -> bool:
    """A literal block keeps the text exactly: one final newline at most, no odd characters."""
    if text.endswith("\n\n") or not text.strip():
        return False
    lines = text.removesuffix("\n").split("\n")
    return (
        not _UNPRINTABLE.search(text)
        and "\r" not in text
        and lines[0].strip() != ""
        and not lines[0].startswith((" ", "\t"))
        and all(line == line.rstrip(" \t") for line in lines)
    )
