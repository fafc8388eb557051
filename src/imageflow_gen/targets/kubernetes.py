"""The cluster's Kubernetes objects for one plan, as plain data in a stable order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import Location, Problem, ValidationFailed
from ..plan import Plan
from ..plan.common import SYNC_WAVE_ANNOTATION, SYNC_WAVES, Spec
from ..rendering import render
from ..shared import SOURCE_ANNOTATION, identity, once_per_object
from ..yamlio import YamlParseError, order_object, parse_all

__all__ = ["SOURCE_ANNOTATION", "each_object", "file_name", "identity", "objects", "render_spec"]


def objects(plan: Plan) -> list[dict[str, Any]]:
    """Every object of `plan`, parsed back from its kind template, annotated with its Argo CD sync
    wave and its source. Rendered once per plan: the overlay, the state, the docs and the path
    check all read them; none may change them."""
    return _placed(plan)


@once_per_object
def _placed(plan: Plan) -> list[dict[str, Any]]:
    return list(each_object(plan, None))


def each_object(plan: Plan, values: Callable[[Spec], dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    """`objects`, one at a time, with `values` picking what each template places (the chart's
    marks): the caller keeps what it needs of each, not the whole list."""
    for spec in plan.specs:
        for obj in render_spec(spec, values(spec) if values else spec.values):
            meta = obj.setdefault("metadata", {})
            meta["annotations"] = {
                SYNC_WAVE_ANNOTATION: str(SYNC_WAVES[obj["kind"]]),
                **meta.get("annotations", {}),
                SOURCE_ANNOTATION: plan.source(spec.source),
            }
            yield order_object(obj)


def render_spec(spec: Spec, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects the kind template of `spec` renders with `values`."""
    return _render(spec.template, o=values)


def _render(template: str, **context: Any) -> list[dict[str, Any]]:
    text = render(template, **context)
    try:
        return [order_object(doc) for doc in parse_all(text)]
    except YamlParseError as exc:
        raise ValidationFailed(
            [
                Problem(
                    Location(f"templates/{template}"), "", f"template produced invalid YAML at line {exc.line}: {exc}"
                )
            ]
        ) from None


def file_name(obj: dict[str, Any]) -> str:
    """<namespace or 'cluster'>/<kind>-<name>.yaml, all lower case."""
    _, kind, namespace, name = identity(obj)
    return f"{namespace or 'cluster'}/{kind.lower()}-{name}.yaml"
