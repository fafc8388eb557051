"""The loader: positions, merge rules, and input it must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageflow_gen.errors import ImageflowError, InputError, Location, ValidationFailed
from imageflow_gen.loading import MAX_FILE_BYTES, load_profile, read_file


def write(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def messages(exc: ImageflowError) -> list[str]:
    return [str(p) for p in exc.problems]


def test_maps_merge_named_lists_merge_by_name_other_lists_replace(tmp_path: Path) -> None:
    write(
        tmp_path,
        "parent",
        "a: {x: 1, y: 2}\nitems:\n  - {name: one, v: 1, w: 1}\n  - {name: two, v: 2}\nplain: [1, 2, 3]\n",
    )
    write(
        tmp_path,
        "child",
        "extends: parent\na: {y: 3, z: 4}\nitems:\n  - {name: two, v: 20}\n  - {name: three, v: 3}\nplain: [9]\n",
    )
    data = load_profile(tmp_path, "child").data
    assert data == {
        "a": {"x": 1, "y": 3, "z": 4},
        "items": [{"name": "one", "v": 1, "w": 1}, {"name": "two", "v": 20}, {"name": "three", "v": 3}],
        "plain": [9],
    }


def test_positions_name_the_file_a_value_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "parent", "a:\n  x: 1\n  y: 2\n")
    write(tmp_path, "child", "extends: parent\na:\n  y: 3\n")
    loaded = load_profile(Path("."), "child")
    assert loaded.locate(("a", "x")) == Location("parent.yaml", 2, 6)
    assert loaded.locate(("a", "y")) == Location("child.yaml", 3, 6)
    assert loaded.locate(("a", "y"), key=True) == Location("child.yaml", 3, 3)
    assert loaded.locate(("a", "nope", 3)) == Location("child.yaml", 2, 1)
    assert loaded.files == ["parent.yaml", "child.yaml"] and loaded.root == "parent"


def test_folded_scalars_read_as_yaml_says(tmp_path: Path) -> None:
    write(tmp_path, "p", "a: >-\n  one\n  two\nb: |\n  x\n  y\n")
    assert load_profile(tmp_path, "p").data == {"a": "one two", "b": "x\ny\n"}


def test_yaml_1_2_scalars_stay_strings(tmp_path: Path) -> None:
    write(tmp_path, "p", "a: yes\nb: on\nc: 'no'\nd: 1.10\ne: '0755'\nf: 0o17\ng: ~\n")
    assert load_profile(tmp_path, "p").data == {
        "a": "yes",
        "b": "on",
        "c": "no",
        "d": 1.1,
        "e": "0755",
        "f": 15,
        "g": None,
    }


def test_yaml_infinity_and_nan_read_as_floats(tmp_path: Path) -> None:
    # Python's float() does not read YAML's .inf; hypothesis found the crash (test_hostile).
    write(tmp_path, "p", "a: .inf\nb: -.Inf\nc: +.INF\nd: .NaN\ne: 1.5e3\n")
    data = load_profile(tmp_path, "p").data
    assert (data["a"], data["b"], data["c"], data["e"]) == (float("inf"), float("-inf"), float("inf"), 1500.0)
    assert data["d"] != data["d"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\na: 2\n", "p.yaml:2:1 a: duplicate key (first defined at line 1)"),
        (
            "a: !!python/object:os.system x\n",
            "p.yaml:1:4 a: tag tag:yaml.org,2002:python/object:os.system is not allowed",
        ),
        ("a: !custom x\n", "p.yaml:1:4 a: tag !custom is not allowed"),
        ("a: 0755\n", "p.yaml:1:4 a: ambiguous number 0755"),
        ("a:\n  <<: {b: 1}\n", "p.yaml:2:3 a: merge keys (<<) are not supported"),
        ("? [1]\n: x\n", "p.yaml:1:3 keys must be plain strings, not a list"),
        ('a: "x\u200by"\n', "p.yaml:1:4 a: contains the invisible character U+200B"),
        ("- 1\n", "p.yaml:1:1 a profile must be a YAML map at the top level"),
    ],
)
def test_refused_yaml_is_reported_with_its_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "p", text)
    with pytest.raises(ValidationFailed) as caught:
        load_profile(Path("."), "p")
    assert any(m.startswith(expected) for m in messages(caught.value)), messages(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"", "the file is empty"),
        (b"a: [1\n", "invalid YAML"),
        (b"a: \xff\xfe\n", "not valid UTF-8 (byte 0xff at offset 3)"),
        (b"a: 1\n---\nb: 2\n", "one YAML document, found several"),
        (b"a: " + b"[" * 100 + b"]" * 100 + b"\n", "nesting deeper than 64 levels"),
        (b"a: " + b"x" * (MAX_FILE_BYTES + 1), f"the limit is {MAX_FILE_BYTES}"),
    ],
)
def test_unreadable_input_is_an_input_error(tmp_path: Path, text: bytes, expected: str) -> None:
    write(tmp_path, "p", text)
    with pytest.raises(InputError) as caught:
        read_file(tmp_path / "p.yaml", "p.yaml")
    assert expected in str(caught.value)
    assert caught.value.exit_code == 2


def test_alias_bomb_is_refused_without_expanding(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    write(tmp_path, "p", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        read_file(tmp_path / "p.yaml", "p.yaml")
    assert "alias bomb" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"a: 1\x00\n", "p.yaml:1:5 invalid character U+0000: control characters are not allowed in YAML"),
        (b"a: 1\nb: \x07\n", "p.yaml:2:4 invalid character U+0007"),
        (b'a: "1\\0"\n', "p.yaml:1:4 a: contains a NUL character"),
        (b"a: " + b"9" * 5000 + b"\n", "p.yaml:1:4 a: a number of 5000 digits; the limit is 40"),
        (b"a: [" + b"1," * 1_000_000 + b"]\n", "p.yaml:1:200001 a[99998]: document has more than 100000 values"),
        (b'a: "' + b"x" * 15_000_000 + b'"\n', f"p.yaml file is 15000006 bytes; the limit is {MAX_FILE_BYTES}"),
    ],
)
def test_hostile_bytes_are_located_errors(tmp_path: Path, text: bytes, expected: str) -> None:
    write(tmp_path, "p", text)
    with pytest.raises((InputError, ValidationFailed)) as caught:
        read_file(tmp_path / "p.yaml", "p.yaml")
    assert any(expected in m for m in messages(caught.value)), messages(caught.value)


def test_a_huge_profile_is_refused_early_in_little_memory(tmp_path: Path) -> None:
    """A million-item list stops at the limit: the process stays small (time: `make bench`)."""
    import os
    import subprocess
    import sys

    write(tmp_path, "huge", b"a:\n" + b"- 1\n" * 1_000_000)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imageflow_gen",
            "validate",
            "--profile",
            "huge",
            "--profiles-dir",
            str(tmp_path),
            "--no-tools",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    # This child's own peak (RUSAGE_CHILDREN would be the largest of every child the tests ran).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 2 and "huge.yaml:100000:3 a[99998]: document has more than 100000 values" in stderr
    assert usage.ru_maxrss < 200 * 1024, f"{usage.ru_maxrss} KiB"


@pytest.mark.parametrize(
    ("kind", "expected"), [("fifo", "not a regular file (a FIFO, socket or device)"), ("folder", "Is a directory")]
)
def test_a_profile_that_is_not_a_regular_file_is_not_read(tmp_path: Path, kind: str, expected: str) -> None:
    import os

    target = tmp_path / "p.yaml"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    with pytest.raises(InputError) as caught:
        read_file(target, "p.yaml")  # a FIFO would block forever if it were opened for reading
    assert f"p.yaml cannot read: {expected}" in str(caught.value)


@pytest.mark.parametrize("name", ["prod\n", "prod\r", "pr\x00od", "../prod", "prod/x", "Prod", "p" * 64])
def test_profile_names_with_control_characters_or_paths_are_refused(name: str) -> None:
    with pytest.raises(InputError) as caught:
        load_profile(Path("profiles"), name)
    assert "is not a profile name" in str(caught.value)


def test_an_extends_outside_the_folder_is_blamed_on_its_line(tmp_path: Path) -> None:
    write(tmp_path, "p", "purpose: x\nextends: ../etc/passwd\n")
    with pytest.raises(InputError) as caught:
        load_profile(tmp_path, "p")
    (message,) = messages(caught.value)
    assert message.startswith(
        f"{tmp_path / 'p.yaml'}:2:10 extends: '../etc/passwd' is not a profile name"
    ) or message.startswith("p.yaml:2:10 extends: '../etc/passwd' is not a profile name"), message


# ---- removal: `$remove` and `$unset` ----------------------------------------------------


def test_a_child_removes_inherited_items_and_unsets_inherited_keys(tmp_path: Path) -> None:
    write(tmp_path, "parent", "a: {x: 1, y: {p: 1, q: 1}}\nitems:\n  - {name: one, v: 1}\n  - {name: two, v: 2}\n")
    write(
        tmp_path,
        "child",
        "extends: parent\na:\n  $unset: [x]\n  y: {$unset: [p], r: 2}\nitems:\n"
        "  - {name: two, v: 20}\n  - {name: one, $remove: true}\n  - {name: three, v: 3}\n",
    )
    loaded = load_profile(tmp_path, "child")
    assert loaded.data == {"a": {"y": {"q": 1, "r": 2}}, "items": [{"name": "two", "v": 20}, {"name": "three", "v": 3}]}
    child = str(tmp_path / "child.yaml")
    assert loaded.removed == {
        (("a", "x"), None): Location(child, 3, 3),
        (("a", "y", "p"), None): Location(child, 4, 7),
        (("items",), "one"): Location(child, 7, 17),
    }


def test_a_grandchild_can_put_back_what_a_child_removed(tmp_path: Path) -> None:
    write(tmp_path, "a", "items:\n  - {name: one, v: 1}\n  - {name: two, v: 2}\n")
    write(tmp_path, "b", "extends: a\nitems:\n  - {name: one, $remove: true}\n")
    write(tmp_path, "c", "extends: b\nitems:\n  - {name: one, v: 10}\n")
    assert load_profile(tmp_path, "c").data == {"items": [{"name": "two", "v": 2}, {"name": "one", "v": 10}]}


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    [
        (
            "items:\n  - {name: one}\n",
            "items:\n  - {name: two, $remove: true}\n",
            "child.yaml:3:17 items[0].$remove: nothing inherited to remove: "
            "the parent profiles have no items item named 'two'",
        ),
        (
            "items:\n  - {name: one, v: 1}\n",
            "items:\n  - {name: one, v: 2, $remove: true}\n",
            "child.yaml:3:23 items[0].$remove: write `$remove: true` beside the item's name and nothing else",
        ),
        (
            "items:\n  - {name: one, v: 1}\n",
            "items:\n  - {name: one, $remove: yes}\n",
            "child.yaml:3:17 items[0].$remove: write `$remove: true` beside the item's name and nothing else",
        ),
        (
            "a: {x: 1}\n",
            "a: {$unset: [y]}\n",
            "child.yaml:2:5 a.$unset: nothing inherited to unset: a.y is not set by the parent profiles",
        ),
        ("a: {x: 1}\n", "a: {$unset: x}\n", "child.yaml:2:13 a.$unset: must be a list of the inherited keys to unset"),
        ("a: {x: 1}\n", "a: {$unset: [x], x: 2}\n", "child.yaml:2:5 a.$unset: 'x' is both unset and set here"),
        (
            "a: {x: 1}\n",
            "b: {$unset: [x]}\n",
            "child.yaml:2:5 b.$unset: $unset only applies to what a profile inherits through `extends`; "
            "there is nothing inherited here",
        ),
    ],
)
def test_a_removal_that_removes_nothing_is_a_located_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parent: str, child: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "parent", parent)
    write(tmp_path, "child", "extends: parent\n" + child)
    with pytest.raises(ValidationFailed) as caught:
        load_profile(Path("."), "child")
    assert messages(caught.value) == [expected]


def test_directives_in_a_root_profile_are_located_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "root", "items:\n  - {name: one, $remove: true}\n")
    with pytest.raises(ValidationFailed) as caught:
        load_profile(Path("."), "root")
    assert messages(caught.value) == [
        "root.yaml:2:17 items[0].$remove: $remove only applies to what a profile inherits through `extends`; "
        "there is nothing inherited here"
    ]


def test_a_name_twice_in_a_child_list_stays_twice_for_the_model_to_refuse(tmp_path: Path) -> None:
    write(tmp_path, "parent", "items:\n  - {name: one, v: 1}\n")
    write(tmp_path, "child", "extends: parent\nitems:\n  - {name: two, v: 2}\n  - {name: two, v: 3}\n")
    assert load_profile(tmp_path, "child").data["items"] == [
        {"name": "one", "v": 1},
        {"name": "two", "v": 2},
        {"name": "two", "v": 3},
    ]
