"""Kustomize: one base rendered from the root profile, and per-profile overlays of differences.

The base depends only on the root of the `extends` chain, so it is byte-identical whichever
profile renders it. An overlay holds exactly what its profile changes: objects the base lacks
(resources), objects it drops (delete patches) and field changes (JSON 6902 patches).
"""

from __future__ import annotations

from typing import Any

from ..plan.common import apply_order
from ..rendering import render as render_template
from ..yamlio import dump, parse_all
from . import Context, Rendered, jsonpatch
from .kubernetes import file_name, identity, objects


def render(ctx: Context) -> Rendered:
    """Files of the base and of the profile's overlay; objects as the overlay builds them."""
    base_objects = objects(ctx.base)
    profile_objects = base_objects if ctx.plan is ctx.base else objects(ctx.plan)
    base_files = {file_name(obj): dump(obj) for obj in base_objects}
    result = Rendered(files={f"kustomize/base/{name}": text for name, text in base_files.items()})
    result.files["kustomize/base/kustomization.yaml"] = _kustomization(sorted(base_files), [])
    result.objects.extend((f"kustomize/base/{file_name(obj)}", obj) for obj in base_objects)
    result.update(_overlay(ctx.plan.profile, base_objects, profile_objects))
    return result


def _kustomization(resources: list[str], patches: list[dict[str, Any]]) -> str:
    text = render_template("kustomize/kustomization.yaml.j2", resources=resources, patches=patches, order=apply_order())
    return dump(parse_all(text)[0])


def _target(obj: dict[str, Any]) -> dict[str, str]:
    group, kind, namespace, name = identity(obj)
    version = obj["apiVersion"].rpartition("/")[2]
    target = {"group": group, "version": version, "kind": kind, "name": name}
    if namespace:
        target["namespace"] = namespace
    return target


def _overlay(profile: str, base: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> Rendered:
    """The overlay's files; its objects are those it adds or changes, named by their file."""
    root = f"kustomize/overlays/{profile}"
    result = Rendered()
    files = result.files
    resources, patches = ["../../base"], []
    old = {identity(obj): obj for obj in base}
    new = {identity(obj): obj for obj in wanted}
    for key in sorted(new):
        name = file_name(new[key])
        if key not in old:
            files[f"{root}/resources/{name}"] = dump(new[key])
            resources.append(f"resources/{name}")
            result.objects.append((f"{root}/resources/{name}", new[key]))
        elif ops := jsonpatch.diff(old[key], new[key]):
            files[f"{root}/patches/{name}"] = dump(ops)
            patches.append({"path": f"patches/{name}", "target": _target(new[key])})
            result.objects.append((f"{root}/patches/{name}", new[key]))
    for key in sorted(set(old) - set(new)):
        name = file_name(old[key])
        files[f"{root}/patches/delete-{name.replace('/', '-')}"] = dump(
            {
                "$patch": "delete",
                "apiVersion": old[key]["apiVersion"],
                "kind": old[key]["kind"],
                "metadata": {k: v for k, v in old[key]["metadata"].items() if k in ("name", "namespace")},
            }
        )
        patches.append({"path": f"patches/delete-{name.replace('/', '-')}"})
    files[f"{root}/kustomization.yaml"] = _kustomization(resources, patches)
    return result
