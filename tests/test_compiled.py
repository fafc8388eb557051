"""The compiled schema check agrees with jsonschema, on real objects and on mutations of them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CRDS, REPO
from imageflow_gen.validate.compiled import Compiler, Unsupported, equal
from imageflow_gen.validate.kubernetes import SchemaStore

GOLDEN = REPO / "tests/golden/render-prod/out"


def _objects() -> list[dict[str, Any]]:
    found = []
    for path in sorted(GOLDEN.rglob("*.yaml")):
        # Whole objects only: not the overlays' patches (partial objects, delete markers).
        if "kustomize/" in str(path) and path.name != "kustomization.yaml" and "/patches/" not in str(path):
            found.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and "kind" in d)
    return found


OBJECTS = _objects()
STORE = SchemaStore("1.28", CRDS)


def verdicts(obj: Any) -> tuple[bool, bool]:
    """(compiled, jsonschema) verdicts on one object."""
    fast = STORE.fast(obj["apiVersion"], obj["kind"])
    assert fast is not None, f"{obj['kind']} fell back to jsonschema alone"
    return fast(obj), STORE.validator(obj["apiVersion"], obj["kind"]).is_valid(obj)


def test_real_objects_cover_builtin_and_custom_kinds_and_all_pass():
    kinds = {o["kind"] for o in OBJECTS}
    assert {"Deployment", "Service", "NetworkPolicy", "VirtualService", "ExternalSecret"} <= kinds
    for obj in OBJECTS:
        assert verdicts(obj) == (True, True), obj["kind"]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _paths(sub, prefix + (key,))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _paths(sub, prefix + (i,))
    return found


REPLACEMENTS = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.5,
    2.0,
    "",
    "x",
    "80",
    "UDP",
    "Always",
    [],
    [1],
    {},
    {"x": 1},
    {"name": "a"},
    2**40,
]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_get_the_same_verdict(data):
    obj = copy.deepcopy(data.draw(st.sampled_from(OBJECTS)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(obj)[1:] or [()]))
        parent = obj
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(REPLACEMENTS)))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["unknownField", "name", "port", "spec"]))] = copy.deepcopy(
                data.draw(st.sampled_from(REPLACEMENTS))
            )
    if (
        not isinstance(obj.get("apiVersion"), str)
        or not isinstance(obj.get("kind"), str)
        or STORE.schema(obj["apiVersion"], obj["kind"]) is None
    ):
        return
    fast, slow = verdicts(obj)
    assert fast == slow, obj


def test_messages_still_come_from_jsonschema():
    service = copy.deepcopy(next(o for o in OBJECTS if o["kind"] == "Service"))
    service["spec"]["ports"][0]["port"] = "eighty"
    errors = STORE.check(service)
    assert [e.field for e in errors] == ["spec.ports[0].port"]
    assert "'eighty' is not of type 'integer'" in errors[0].message


@pytest.mark.parametrize(
    "schema, good, bad",
    [
        ({"type": "integer"}, [1, 2.0], [True, 1.5, "1"]),
        ({"type": ["string", "null"]}, ["a", None], [1, []]),
        ({"enum": [1, "a"]}, [1, 1.0, "a"], [True, "b"]),
        ({"const": False}, [False], [0, None]),
        ({"pattern": "^a+$"}, ["aa", 3], ["ab"]),
        ({"minLength": 2, "maxLength": 3}, ["ab", "abc", 7], ["a", "abcd"]),
        ({"minimum": 1, "maximum": 3}, [1, 3, "9"], [0, 3.5]),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, [1.5], [1, "x"]),
        ({"not": {"type": "string"}}, [1], ["s"]),
        (
            {"properties": {"a": {"type": "string"}}, "additionalProperties": False, "required": ["a"]},
            [{"a": "x"}, "not an object"],
            [{}, {"a": 1}, {"a": "x", "b": 1}],
        ),
        ({"additionalProperties": {"type": "integer"}, "minProperties": 1}, [{"a": 1}], [{}, {"a": "x"}]),
        ({"items": {"type": "integer"}, "maxItems": 2}, [[1, 2]], [[1, "a"], [1, 2, 3]]),
    ],
)
def test_keywords_mean_what_jsonschema_means(schema, good, bad):
    import jsonschema

    check = Compiler(lambda base, ref: (base, {})).compile(schema, "urn:test")
    for value in good:
        assert check(value) and jsonschema.Draft202012Validator(schema).is_valid(value), value
    for value in bad:
        assert not check(value) and not jsonschema.Draft202012Validator(schema).is_valid(value), value


def test_self_reference_compiles_and_unknown_keywords_are_refused():
    tree = {"properties": {"child": {"$ref": "#"}}, "additionalProperties": False}
    check = Compiler(lambda base, ref: (base, tree)).compile(tree, "urn:tree")
    assert check({"child": {"child": {}}})
    assert not check({"child": {"other": 1}})
    with pytest.raises(Unsupported, match="uniqueItems"):
        Compiler(lambda base, ref: (base, {})).compile({"uniqueItems": True}, "urn:x")


def test_equal_is_json_equality():
    assert equal([1, {"a": 2.0}], [1.0, {"a": 2}])
    assert not equal(True, 1) and not equal(0, False) and not equal("1", 1)
