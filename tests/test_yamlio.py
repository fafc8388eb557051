"""The emitter: whatever goes in comes back unchanged, and YAML 1.1 readers agree."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imageflow_gen.yamlio import dump, dump_all, order_object, parse_all

TRICKY = [
    "yes",
    "no",
    "on",
    "off",
    "y",
    "N",
    "true",
    "null",
    "~",
    "0755",
    "1.10",
    "1e3",
    "0x1F",
    "12:30",
    "2024-01-01",
    ".inf",
    "-",
    "---",
    "...",
    "a: b",
    "x #y",
    "#c",
    "*a",
    "&a",
    "!tag",
    "{{ x }}",
    "[1]",
    "'q'",
    '"q"',
    "",
    " lead",
    "trail ",
    "a\nb",
    "a\n",
    "\n",
    "tab\there",
    "é",
    "%x",
    "@x",
    "`x`",
    "|",
    ">",
    "?",
    ":",
    "-x",
    "- x",
    "=",
    "<<",
]

keys = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(TRICKY),
    st.text(max_size=30),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=6))
def test_round_trip(document: dict) -> None:
    assert parse_all(dump(document)) == [document]


@pytest.mark.parametrize("text", TRICKY)
def test_strings_that_look_like_something_else_are_quoted(text: str) -> None:
    assert parse_all(dump({"k": text})) == [{"k": text}]
    assert parse_all(dump({text: "v"})) == [{text: "v"}]


def test_yaml_1_1_specials_are_quoted() -> None:
    for text in ("yes", "no", "on", "off", "y", "n", "0755", "1.10", "1e3", "2024-01-01", "<<"):
        assert dump({"k": text}).startswith('k: "'), text


def test_floats_keep_a_dot_for_yaml_1_1() -> None:
    assert dump({"k": 1e20}) == "k: 1.0e+20\n"
    assert dump({"k": 2.0}) == "k: 2.0\n"
    with pytest.raises(ValueError):
        dump({"k": math.inf})


def test_kubernetes_key_order_and_sorted_labels() -> None:
    obj = order_object(
        {"spec": {}, "metadata": {"labels": {"b": "1", "a": "2"}, "name": "x"}, "kind": "K", "apiVersion": "v1"}
    )
    assert dump(obj) == ('apiVersion: v1\nkind: K\nmetadata:\n  name: x\n  labels:\n    a: "2"\n    b: "1"\nspec: {}\n')


def test_documents_are_separated() -> None:
    assert dump_all([{"a": 1}, {"b": 2}]) == "a: 1\n---\nb: 2\n"


def test_duplicate_keys_in_rendered_text_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_all("a: 1\na: 2\n")
