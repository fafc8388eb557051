"""The Jinja environments. Templates never build YAML structure out of input strings.

Every value enters a template through the `q` filter, which writes it as a JSON scalar or
flow collection: valid YAML whose structure no input can change. The rendered text is then
parsed back and re-emitted by `yamlio`, so quoting in the output is uniform.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from functools import cache
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


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs, like Python's own .pyc files.

    In $IMAGEFLOW_CACHE_DIR, else $XDG_CACHE_HOME/imageflow-gen, else ~/.cache/imageflow-gen;
    IMAGEFLOW_CACHE_DIR=off turns it off. Entries are keyed by each template's source, so a
    changed template is compiled again; the output never depends on the cache.
    """
    configured = os.environ.get("IMAGEFLOW_CACHE_DIR", "")
    if configured == "off":
        return None
    base = configured or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imageflow-gen"
    )
    folder = os.path.join(base, f"jinja-{jinja2.__version__}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return _QuietCache(folder)


class _QuietCache(jinja2.FileSystemBytecodeCache):
    """A cache that is only ever a speed-up: a read-only or full disk is not an error."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


@cache
def environment() -> jinja2.Environment:
    """Templates for YAML and text files: `{{ }}` and `{% %}`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        bytecode_cache=_bytecode_cache(),
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
