"""The writer under faults: kill -9 at any step, concurrent writers, forged and malformed locks,
full and read-only file systems, files in the way, and two roots in one output folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import PROFILES, REPO, run_cli
from imageflow_gen.pipeline import build
from imageflow_gen.errors import ValidationFailed
from imageflow_gen.writing import LOCK_DIR, compare, exclusive, recover

sys.path.insert(0, str(REPO / "bench"))
from gen_topology import synthetic  # noqa: E402

CRASH = str(REPO / "tests" / "crash_writer.py")
SERVICES = 1000
KILL_POINTS = 24


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` with its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(root: Path) -> list[str]:
    """Anything in the lock folder that is not a profile's lock."""
    lock_dir = root / LOCK_DIR
    return sorted(p.name for p in lock_dir.iterdir() if not p.name.endswith(".lock.json")) if lock_dir.is_dir() else []


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 1,000-service profile rendered twice: `old` and `new` differ in every image tag, and
    `new` drops a tenth of the services (so files are changed, created and removed)."""
    work = tmp_path_factory.mktemp("crash")
    profiles = work / "profiles"
    profiles.mkdir()
    data = synthetic(SERVICES)
    (profiles / "big.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    old = build(profiles, "big").owned()
    data["processing"]["services"] = [
        {**s, "image": s["image"].replace(":1.0.", ":1.1.")}
        for s in data["processing"]["services"][: SERVICES * 9 // 10]
    ]
    data["processing"]["services"].append({**data["processing"]["services"][0], "name": "brand-new"})
    (profiles / "big.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    new = build(profiles, "big").owned()
    paths = {}
    for name, files in (("old", old), ("new", new)):
        (work / f"{name}.json").write_text(json.dumps(files))
        paths[name] = work / f"{name}.json"
        out = work / f"{name}-out"
        assert crash(0, out, paths[name]).returncode == 0
        paths[f"{name}-out"] = out
    paths["profiles"] = profiles
    return paths


def crash(kill_at: int, out: Path, files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, CRASH, str(kill_at), str(out), "big", str(files)], capture_output=True, text=True, timeout=300
    )


def test_kill_9_at_any_step_leaves_one_complete_version(versions: dict[str, Path], tmp_path: Path) -> None:
    old, new = tree(versions["old-out"]), tree(versions["new-out"])
    assert len(old) > 2400 and old != new
    start = tmp_path / "start"
    shutil.copytree(versions["old-out"], start)
    steps = int(crash(0, start, versions["new"]).stdout)
    assert tree(start) == new
    points = sorted({1 + (steps - 1) * i // (KILL_POINTS - 1) for i in range(KILL_POINTS)})
    new_files = json.loads(versions["new"].read_text())
    outcomes = set()
    for number, point in enumerate(points):
        out = tmp_path / f"out-{number}"
        shutil.copytree(versions["old-out"], out)
        proc = crash(point, out, versions["new"])
        assert proc.returncode == -9, (point, proc.stderr)
        if tree(out) != old:
            # Half-applied or with leftovers: what check runs must not call it up to date.
            with pytest.raises(ValidationFailed, match="an interrupted render left"):
                compare(out, "big", new_files)
        with exclusive(out):
            recover(out)
        after = tree(out)
        assert after in (old, new), f"kill at step {point} of {steps}: neither version after recovery"
        assert leftovers(out) == [], point
        outcomes.add("new" if after == new else "old")
        # Nothing written before the crash is orphaned: the next render takes it all over.
        assert crash(0, out, versions["new"]).returncode == 0
        assert tree(out) == new and leftovers(out) == []
    assert outcomes == {"old", "new"}  # the sweep reached both sides of the commit


def test_a_render_finishes_what_a_killed_one_committed(versions: dict[str, Path], tmp_path: Path) -> None:
    out, count = tmp_path / "out", tmp_path / "count"
    shutil.copytree(versions["old-out"], out)
    shutil.copytree(versions["old-out"], count)
    steps = int(crash(0, count, versions["new"]).stdout)
    assert crash(steps - 3, out, versions["new"]).returncode == -9  # after the commit, before the cleanup
    assert (out / LOCK_DIR / "journal.json").exists()
    result = run_cli(
        "render", "--profile", "big", "--out", str(out), "--profiles-dir", str(versions["profiles"]), "--quiet"
    )
    assert result.code == 0, result.stderr
    assert tree(out) == tree(versions["new-out"]) and leftovers(out) == []


def render(out: Path, profile: str = "prod", profiles: Path = PROFILES):
    return run_cli("render", "--profile", profile, "--out", str(out), "--profiles-dir", str(profiles), "--quiet")


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    import os

    out = tmp_path / "out"
    assert render(out).code == 0
    before = tree(out)
    with exclusive(out):
        result = render(out, "dev")
        check = run_cli("check", "--profile", "prod", "--out", str(out))
    for refused in (result, check):
        assert refused.code == 2, refused.stderr
        assert f"another imageflow-gen (pid {os.getpid()}) is writing this output folder" in refused.stderr
    assert tree(out) == before


def test_two_renders_at_once_leave_one_complete_result(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "imageflow_gen", "render", "--out", str(out), "--quiet", "--profile"]
    procs = [
        subprocess.Popen(command + [p], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in ("prod", "prod", "dev", "dev")
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, stderr in results:
        assert code == 0 or (code == 2 and "is writing this output folder" in stderr), stderr
    assert any(code == 0 for code, _ in results)
    for profile in {p for (code, _), p in zip(results, ("prod", "prod", "dev", "dev"), strict=True) if code == 0}:
        assert run_cli("check", "--profile", profile, "--out", str(out)).code == 0
    assert leftovers(out) == []


SHA = "0" * 64


@pytest.mark.parametrize(
    "text, key, message",
    [
        ("null", "", "a lock must be a JSON object"),
        ("[[1, 2]]", "", "a lock must be a JSON object"),
        ('{"files": null}', "files", "must map each owned file's path to its sha256"),
        ('{"files": [["ci/validate.sh", "x"]]}', "files", "must map each owned file's path to its sha256"),
        ('{"format": 7, "files": {}}', "format", "unknown lock format 7"),
        ('{"format": "1", "files": {}}', "format", "unknown lock format '1'"),
        ('{"profile": "dev", "files": {}}', "profile", "names profile 'dev'"),
        ('{"files": {"../../etc/passwd": "' + SHA + '"}}', "files['../../etc/passwd']", "not a path inside the output"),
        ('{"files": {"/etc/passwd": "' + SHA + '"}}', "files['/etc/passwd']", "not a path inside the output"),
        ('{"files": {"ci/validate.sh": ["x"]}}', "files['ci/validate.sh']", "is not a sha256"),
        ('{"files": {"ci/validate.sh": "x"}}', "files['ci/validate.sh']", "is not a sha256"),
        ('{"files": {', "", "unreadable lock file"),
        ("\udcff", "", "unreadable lock file"),
    ],
)
def test_a_malformed_lock_is_a_located_error_and_deletes_nothing(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    out = tmp_path / "out"
    assert render(out).code == 0
    lock = out / LOCK_DIR / "prod.lock.json"
    lock.write_bytes(text.encode("utf-8", "surrogateescape"))
    before = tree(out)
    for command in ("render", "check", "diff"):
        result = run_cli(command, "--profile", "prod", "--out", str(out))
        assert result.code == 1, (command, result.stderr)
        (line,) = [line for line in result.stderr.splitlines() if line.startswith(str(lock))]
        assert line.startswith(f"{lock}{' ' + key + ':' if key else ''} ") and message in line, line
        assert "internal error" not in result.stderr
        assert tree(out) == before


def test_removal_needs_the_bytes_the_lock_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(out).code == 0
    mine = out / "kustomize/notes.md"
    mine.write_text("my notes\n")
    lock_file = out / LOCK_DIR / "prod.lock.json"
    lock = json.loads(lock_file.read_text())
    # A forged entry: the lock claims a file the tool never wrote, with other bytes.
    lock["files"]["kustomize/notes.md"] = hashlib.sha256(b"something else\n").hexdigest()
    # An edited generated file that the next render no longer produces.
    edited = "ci/validate.sh"
    lock["files"][edited + ".old"] = lock["files"][edited]
    shutil.copy(out / edited, out / (edited + ".old"))
    (out / (edited + ".old")).write_text("# edited by hand\n")
    # A generated file the next render no longer produces, unedited: removed.
    lock["files"]["ci/gone.sh"] = hashlib.sha256(b"gone\n").hexdigest()
    (out / "ci/gone.sh").write_text("gone\n")
    lock_file.write_text(json.dumps(lock))
    result = run_cli("render", "--profile", "prod", "--out", str(out))
    assert result.code == 0, result.stderr
    assert mine.read_text() == "my notes\n" and (out / (edited + ".old")).exists()
    assert not (out / "ci/gone.sh").exists()
    assert f"kept      {out / 'kustomize/notes.md'}" in result.stdout and ", 1 removed, 2 kept in" in result.stdout
    assert run_cli("check", "--profile", "prod", "--out", str(out)).code == 0  # kept files are not drift


def in_namespace(script: str) -> subprocess.CompletedProcess:
    """`script` in a private mount namespace (its mounts vanish with it)."""
    return subprocess.run(["unshare", "--mount", "sh", "-euc", script], capture_output=True, text=True, timeout=600)


def cli_line(*args: str) -> str:
    return " ".join([sys.executable, "-m", "imageflow_gen", *args, "--profiles-dir", str(PROFILES), "--quiet"])


def prod_over_dev_on_tmpfs(tmp_path: Path, size: str, between: str) -> tuple[str, str]:
    """Render dev onto a fresh tmpfs, run the shell lines `between`, then render prod there;
    prod's exit code and stderr. Hashes of the output before and after prod's render are in
    tmp_path/before and tmp_path/after, the lock folder's listing in tmp_path/lockdir."""
    disk = tmp_path / "disk"
    disk.mkdir()
    hashes = f"(cd {disk} && find out -type f -exec sha256sum {{}} + | sort)"
    script = f"""
mount -t tmpfs -o size={size} tmpfs {disk}
cd {REPO}
{cli_line("render", "--profile", "dev", "--out", f"{disk}/out")} >/dev/null 2>&1
{hashes} > {tmp_path}/before
{between}
set +e
{cli_line("render", "--profile", "prod", "--out", f"{disk}/out")} 2> {tmp_path}/stderr
echo $? > {tmp_path}/code
{hashes} > {tmp_path}/after
ls -a {disk}/out/{LOCK_DIR} > {tmp_path}/lockdir
"""
    proc = in_namespace(script)
    assert proc.returncode == 0, proc.stderr
    return (tmp_path / "code").read_text().strip(), (tmp_path / "stderr").read_text()


def test_a_full_disk_is_a_located_error_and_changes_nothing(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    fill = f"head -c $(( $(df --output=avail -B1 {disk} | tail -1) - 40000 )) /dev/zero > {disk}/filler || true"
    code, stderr = prod_over_dev_on_tmpfs(tmp_path, "2m", fill)
    assert code == "2", stderr
    assert "no space left on device; nothing was changed" in stderr and str(disk) in stderr
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()
    assert (tmp_path / "lockdir").read_text().split() == [".", "..", "dev.lock.json"]


def test_a_read_only_output_is_a_located_error(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    code, stderr = prod_over_dev_on_tmpfs(tmp_path, "8m", f"mount -o remount,ro {disk}")
    assert code == "2", stderr
    assert "read-only file system" in stderr and str(disk / "out") in stderr and "internal error" not in stderr
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()


def test_a_file_where_a_folder_goes_is_a_located_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "kustomize").write_text("mine\n")
    result = render(out)
    assert result.code == 1 and f"{out / 'kustomize'} is a file where a generated folder goes" in result.stderr
    assert tree(out) == {"kustomize": hashlib.sha256(b"mine\n").hexdigest()} and not (out / LOCK_DIR).exists()
    (tmp_path / "file").write_text("x\n")
    result = render(tmp_path / "file")
    assert result.code == 2 and "is not a folder" in result.stderr
    result = render(tmp_path / "file" / "below")
    assert result.code == 2 and "not a directory" in result.stderr and "internal error" not in result.stderr


def test_an_empty_out_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("render", "--profile", "prod", "--out", "", cwd=tmp_path)
    assert result.code == 2 and "must name a folder" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_profile_of_another_root_cannot_rewrite_the_shared_base(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    # A standalone profile: base's content, one value changed, no `extends`.
    text = (profiles / "base.yaml").read_text()
    (profiles / "solo.yaml").write_text(
        text.replace("requests: {cpu: 50m, memory: 32Mi}", "requests: {cpu: 60m, memory: 32Mi}", 1)
    )
    out = tmp_path / "out"
    assert render(out, "prod", profiles).code == 0
    before = tree(out)
    result = render(out, "solo", profiles)
    assert result.code == 1
    assert "belongs to profile 'prod', whose root profile is 'base'; profile 'solo' has root 'solo'" in result.stderr
    assert tree(out) == before
    assert render(tmp_path / "elsewhere", "solo", profiles).code == 0
