"""The Jinja environments. Templates never build YAML structure out of input strings.

Every value enters a template through the `q` filter, which writes it as a JSON scalar or
flow collection: valid YAML whose structure no input can change. The rendered text is then
parsed back and re-emitted by `yamlio`, so quoting in the output is uniform.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from .errors import Location, Problem, ValidationFailed
from .resources import data_dir


def q(value: Any) -> str:
    """Any value as a JSON literal, which YAML reads back unchanged."""
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


_NGINX_UNSAFE = set(";{}\"'\\$#\n\r\t ")


def nginx_value(value: Any) -> str:
    """A value for an nginx directive; refuses anything that could end or extend the directive.

    The model's types already keep these characters out; this is the second line of defence.
    """
    text = str(value)
    if not text or _NGINX_UNSAFE & set(text):
        raise ValueError(f"{text!r} cannot be written into an nginx directive")
    return text


def nginx_comment(value: Any) -> str:
    """Text for an nginx (or ModSecurity) comment line: nothing that could end the line."""
    text = str(value)
    if set(text) & set("\n\r\u2028\u2029\x00"):
        raise ValueError(f"{text!r} cannot be written into a comment line")
    return text


_MARKDOWN_INLINE = set("\\`*_[]|!~")
_MARKDOWN_LINE_START = re.compile(r"[#>+=-]|[0-9]+[.)]")


def markdown_text(value: Any) -> str:
    """Text for a Markdown line or table cell: HTML characters as entities, Markdown's inline
    punctuation backslash-escaped and a leading block marker defused, so no input adds a link,
    an image, markup, a heading, a list or a table column."""
    text = str(value).replace("\n", " ").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = "".join(f"\\{c}" if c in _MARKDOWN_INLINE else c for c in text)
    start = _MARKDOWN_LINE_START.match(text)
    return f"{text[: start.end() - 1]}\\{text[start.end() - 1 :]}" if start else text


def go_text(value: Any) -> str:
    """A value as literal text of a Go template (a Helm chart file): each `{{` becomes an action
    that prints `{{`, so no input starts an action of its own."""
    return str(value).replace("{{", '{{ "{{" }}')


# Where the package keeps its templates compiled (hatch_build.py fills it when the package is
# built or installed): Jinja's bytecode, one file per template, keyed by the template's name.
PRECOMPILED = Path(__file__).resolve().parent / "_templates"


class _Precompiled(jinja2.BytecodeCache):
    """The templates compiled when the package was built, read-only.

    Each entry carries the sha1 of the source it was compiled from and the Jinja and Python
    versions that compiled it (Jinja checks both): an edited template, another Jinja or
    another Python is compiled from its source instead. Nothing is written at run time.
    """

    def __init__(self, folder: Path, *, writable: bool = False):
        self.folder, self.writable = folder, writable

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return hashlib.sha1(name.encode("utf-8")).hexdigest()  # by name: the same in a wheel and a checkout

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            with open(self.folder / f"{bucket.key}.cache", "rb") as handle:
                bucket.load_bytecode(handle)
        except OSError:
            pass

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if self.writable:
            with open(self.folder / f"{bucket.key}.cache", "wb") as handle:
                bucket.write_bytecode(handle)


def _environment(templates: Path, cache: jinja2.BytecodeCache) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        bytecode_cache=cache,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = q
    env.filters["shq"] = lambda value: shlex.quote(str(value))
    env.filters["nginx"] = nginx_value
    env.filters["nginx_comment"] = nginx_comment
    env.filters["md"] = markdown_text
    env.filters["go"] = go_text
    return env


@cache
def environment() -> jinja2.Environment:
    """Templates for YAML and text files: `{{ }}` and `{% %}`."""
    return _environment(data_dir("templates"), _Precompiled(PRECOMPILED))


def precompile(templates: Path, folder: Path) -> int:
    """Compile every template in `templates` into `folder` (emptied first); how many."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.cache"):
        stale.unlink()
    env = _environment(templates, _Precompiled(folder, writable=True))
    names = env.list_templates(filter_func=lambda name: name.endswith(".j2"))
    for name in names:
        env.get_template(name)
    return len(names)


def render(template: str, **context: Any) -> str:
    """Render `template`; a template bug is reported as a problem naming template:line."""
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise ValidationFailed(
            [
                Problem(
                    Location(f"templates/{exc.name or template}", exc.lineno or 0, 1),
                    "",
                    f"template error: {exc.message}",
                )
            ]
        ) from None
    except jinja2.UndefinedError as exc:
        raise ValidationFailed(
            [Problem(Location(f"templates/{template}"), "", f"template error: {exc.message}")]
        ) from None
    except ValueError as exc:  # a filter refused a value
        raise ValidationFailed([Problem(Location(f"templates/{template}"), "", str(exc))]) from None
