"""state/<profile>.json: what `imageflow-gen plan` compares a new render with (changes.py)."""

from __future__ import annotations

from ..changes import state_path, state_text
from . import Context, Rendered
from .kubernetes import objects


def render_state(context: Context) -> Rendered:
    plan = context.plan
    return Rendered(files={state_path(plan.profile): state_text(objects(plan))})
