"""The only writer. Files are compared byte for byte; only changed ones are written.

Each profile's lock (`.imageflow-gen/<profile>.lock.json` in the output) records the lock
format, the generator version and the fingerprint of its code and data, the profile files of
the `extends` chain (root first) and a hash of them, the root profile, the render's warnings
and the sha256 of every file the profile owns. With it the writer:
- writes only files whose bytes changed, and says for each file what happened;
- removes a file the profile's previous lock listed and the new render no longer produces
  only while its bytes are the ones the lock recorded, and only when no other profile's lock
  lists it (shared files such as the Kustomize base); an edited file is kept;
- never touches a file no lock lists: a user's own file in the output survives, and a
  generated path that collides with one is an error;
- refuses to change a file that a profile of another root owns (the Kustomize base and the
  chart's defaults come from the root: two roots in one output would rewrite each other);
- never follows a symbolic link inside the output.

Crash safety (a journal, replayed forward):
1. Under an exclusive lock on `.imageflow-gen/` (flock; the holder's pid in `writer.pid`),
   every new file is staged in `.imageflow-gen/staging/` and every folder it needs is made.
2. The journal `.imageflow-gen/journal.json` is written and renamed into place: the commit
   point. It lists each rename (staged file -> target, with its sha256) and each removal.
3. The renames and removals run, the profile's lock last; then the journal and the staging
   folder are deleted.
A run killed before step 2 left only staged files: the next run deletes them (rolled back,
the old version stands). A run killed after it left a journal: the next run, before anything
else, finishes it (rolled forward, the new version stands). Every step of the replay is
idempotent. `check` and `diff` refuse to judge an output with a journal or staged files.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ImageflowError, Location, OutputError, Problem, ValidationFailed

LOCK_DIR = ".imageflow-gen"
LOCK_FORMAT = 2
# Formats this version reads: 0 (no format recorded), 1 (no inputs, warnings or fingerprint).
LOCK_FORMATS = (0, 1, LOCK_FORMAT)
JOURNAL = "journal.json"
STAGING = "staging"
PID_FILE = "writer.pid"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Change:
    """What happens to one file: created, changed, unchanged, removed, or kept (a file the
    previous render wrote and no longer produces, edited since: it is left in place)."""

    path: str
    status: str


@dataclass(frozen=True)
class Lock:
    """What one profile's lock says: the root of its `extends` chain and the files it owns."""

    profile: str
    root: str | None
    files: dict[str, str]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lock_path(profile: str) -> str:
    return f"{LOCK_DIR}/{profile}.lock.json"


@dataclass(frozen=True)
class Provenance:
    """What a render came from: the generator (version, fingerprint of its code and data), the
    profile files of the `extends` chain by name (root first) with their hash, the chain's
    root, and the warnings the render gave (each: file name, line, column, key, message)."""

    generator: str
    generator_sha256: str
    inputs: tuple[str, ...]
    input_sha256: str
    root: str
    warnings: tuple[tuple[str, int, int, str, str], ...] = ()


def lock_text(profile: str, provenance: Provenance, files: dict[str, str]) -> str:
    """The lock of a profile: what generated it, from what, and the hash of every file it owns."""
    return _lock_json(profile, provenance, {path: sha256(text.encode("utf-8")) for path, text in files.items()})


def _lock_json(profile: str, provenance: Provenance, hashes: dict[str, str]) -> str:
    lock = {
        "format": LOCK_FORMAT,
        "profile": profile,
        "root": provenance.root,
        "generator": provenance.generator,
        "generator_sha256": provenance.generator_sha256,
        "inputs": list(provenance.inputs),
        "input_sha256": provenance.input_sha256,
        "warnings": [
            {"file": file, "line": line, "column": column, "key": key, "message": message}
            for file, line, column, key, message in provenance.warnings
        ],
        "files": dict(sorted(hashes.items())),
    }
    return json.dumps(lock, indent=2, sort_keys=True) + "\n"


# ---- reading locks: evidence, checked field by field --------------------------------------


def _locks(out: Path) -> dict[str, Lock]:
    """Every profile's lock in `out`; a malformed one is a located error."""
    lock_dir = out / LOCK_DIR
    if not lock_dir.is_dir() or lock_dir.is_symlink():
        return {}
    locks, problems = {}, []
    for path in sorted(lock_dir.glob("*.lock.json")):
        profile = path.name.removesuffix(".lock.json")
        try:
            locks[profile] = _parse_lock(path, profile)
        except ValidationFailed as error:
            problems.extend(error.problems)
    if problems:
        raise ValidationFailed(problems)
    return locks


def _parse_lock(path: Path, profile: str) -> Lock:
    def bad(key: str, message: str) -> ValidationFailed:
        return ValidationFailed(
            [
                Problem(
                    Location(str(path)),
                    key,
                    f"{message}; fix or remove the lock (then imageflow-gen treats the profile's files as not its own)",
                )
            ]
        )

    try:
        data = json.loads(_read_regular(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise bad("", f"unreadable lock file ({_reason(error)})") from None
    if not isinstance(data, dict):
        raise bad("", "a lock must be a JSON object")
    version = data.get("format", 0)  # locks written before the format was recorded
    if type(version) is not int or version not in LOCK_FORMATS:
        known = ", ".join(map(str, LOCK_FORMATS[:-1])) + f" and {LOCK_FORMATS[-1]}"
        raise bad("format", f"unknown lock format {version!r} (this imageflow-gen reads {known})")
    if data.get("profile", profile) != profile:
        raise bad("profile", f"names profile {data.get('profile')!r}, but the file is the lock of {profile!r}")
    root = data.get("root")
    if root is not None and not isinstance(root, str):
        raise bad("root", "must be a profile name")
    files = data.get("files")
    if not isinstance(files, dict):
        raise bad("files", "must map each owned file's path to its sha256")
    for rel, digest in files.items():
        if not _safe_relative(rel):
            raise bad(f"files[{rel!r}]", "not a path inside the output")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise bad(f"files[{rel!r}]", f"{digest!r} is not a sha256 (64 lower-case hex digits)")
    return Lock(profile, root, dict(files))


def _safe_relative(rel: object, *, lock_dir: bool = False) -> bool:
    """A plain relative path inside the output (inside `.imageflow-gen/` only with `lock_dir`)."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel:
        return False
    parts = rel.split("/")
    return all(p not in ("", ".", "..") for p in parts) and (parts[0] != LOCK_DIR or lock_dir)


def _read_regular(path: Path) -> bytes:
    """A file's bytes; never through a symbolic link, never from a FIFO or a device."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return handle.read()


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def verified_lock(out: Path, profile: str) -> tuple[Provenance, dict[str, str]] | None:
    """The provenance and file hashes in `profile`'s lock, when the output holds exactly what
    that lock says: the lock in this version's format, byte for byte as it would be written;
    every file it lists a regular file with the recorded sha256, no symbolic link on the way;
    no interrupted render; every other lock readable. Otherwise None, and a full render (which
    reports whatever is wrong) must decide. Writes nothing."""
    lock_dir = out / LOCK_DIR
    try:
        if out.is_symlink() or lock_dir.is_symlink() or not lock_dir.is_dir() or _pending(out):
            return None
        with shared(out):
            if (lock_dir / PID_FILE).exists():  # a killed writer: the full path recovers first
                return None
            _locks(out)  # every lock must read: a full render refuses a malformed one
            text = _read_regular(out / lock_path(profile)).decode("utf-8")
            data = json.loads(text)
            provenance = _provenance(data)
            hashes = data["files"]
            if provenance is None or _lock_json(profile, provenance, hashes) != text:
                return None
            return (provenance, hashes) if _holds(out, hashes) else None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, ImageflowError):
        return None


def _provenance(data: dict[str, object]) -> Provenance | None:
    """The provenance fields of a lock, when each has its type."""
    texts = [data.get(key) for key in ("generator", "generator_sha256", "input_sha256", "root")]
    inputs, warnings = data.get("inputs"), data.get("warnings")
    if not all(isinstance(t, str) for t in texts) or not isinstance(inputs, list) or not isinstance(warnings, list):
        return None
    if not all(isinstance(name, str) for name in inputs):
        return None
    rows = []
    for warning in warnings:
        row = tuple(warning.get(key) for key in ("file", "line", "column", "key", "message"))
        kinds = (str, int, int, str, str)
        if not all(type(value) is kind for value, kind in zip(row, kinds, strict=True)):
            return None
        rows.append(row)
    generator, generator_sha256, input_sha256, root = (str(t) for t in texts)
    return Provenance(generator, generator_sha256, tuple(inputs), input_sha256, root, tuple(rows))


def _holds(out: Path, hashes: dict[str, str]) -> bool:
    """Whether every file in `hashes` is a regular file with that sha256, reached through real
    folders only."""
    folders: set[str] = set()
    for rel, digest in hashes.items():
        parts = rel.split("/")
        for end in range(1, len(parts)):
            folder = "/".join(parts[:end])
            if folder not in folders:
                if not stat.S_ISDIR(os.lstat(out / folder).st_mode):
                    return False
                folders.add(folder)
        if sha256(_read_regular(out / rel)) != digest:
            return False
    return True


# ---- where a generated file goes ----------------------------------------------------------


def _target(out: Path, rel: str) -> Path:
    """`out/rel`, refusing '..', absolute paths, symbolic links and files where folders go."""
    if not _safe_relative(rel, lock_dir=True):
        raise ValidationFailed([Problem(Location(rel), "", "a generated path must stay inside the output")])
    current = out
    parts = rel.split("/")
    for number, part in enumerate(parts):
        current = current / part
        if current.is_symlink():
            raise ValidationFailed(
                [
                    Problem(
                        Location(str(current)),
                        "",
                        "is a symbolic link inside the output; imageflow-gen never writes through one",
                    )
                ]
            )
        if number < len(parts) - 1 and current.exists() and not current.is_dir():
            raise ValidationFailed(
                [Problem(Location(str(current)), "", "is a file where a generated folder goes; move it away")]
            )
    return current


def _file_bytes(path: Path) -> bytes | None:
    """The bytes of a regular file at `path`, or None when there is none."""
    try:
        return _read_regular(path)
    except FileNotFoundError:
        return None


def plan_changes(out: Path, profile: str, files: dict[str, str]) -> list[Change]:
    """What writing `files` (the lock included) for `profile` into `out` would do; writes nothing.
    The caller has checked `out` itself (_check_out)."""
    if _pending(out):
        raise _interrupted(out)
    locks = _locks(out)
    previous = locks[profile].files if profile in locks else {}
    root = _root_of(files.get(lock_path(profile), ""))
    others = {rel: lock for lock in locks.values() if lock.profile != profile for rel in lock.files}
    changes, conflicts = [], []
    # The lock last: it summarises the rest, in the status list and in diffs alike.
    for rel, text in sorted(files.items(), key=lambda item: (item[0] == lock_path(profile), item[0])):
        found = _change(out, rel, text.encode("utf-8"), previous, others, root, profile)
        if isinstance(found, Problem):
            conflicts.append(found)
        else:
            changes.append(found)
    if conflicts:
        raise ValidationFailed(conflicts)
    for rel in sorted(set(previous) - set(files) - set(others)):
        current = _file_bytes(_target(out, rel))
        if current is not None:
            changes.append(Change(rel, "removed" if sha256(current) == previous[rel] else "kept"))
    return changes


def _change(
    out: Path, rel: str, data: bytes, previous: dict[str, str], others: dict[str, Lock], root: str | None, profile: str
) -> Change | Problem:
    """What writing `data` to `rel` does, or the conflict that forbids it."""
    target = _target(out, rel)
    if not target.exists():
        return Change(rel, "created")
    if not target.is_file():
        return Problem(Location(str(target)), "", "is in the way of a generated file")
    current = _file_bytes(target)
    if current == data:
        return Change(rel, "unchanged")
    owner = others.get(rel)
    if owner is not None and owner.root is not None and root is not None and owner.root != root:
        return Problem(
            Location(str(target)),
            "",
            (
                f"belongs to profile {owner.profile!r}, whose root profile is {owner.root!r}; profile {profile!r} "
                f"has root {root!r} and would rewrite it. Render profiles of different roots into different "
                "output folders, or make this one extend the other's root"
            ),
        )
    if rel in previous or owner is not None or rel == lock_path(profile):
        return Change(rel, "changed")
    return Problem(
        Location(str(target)),
        "",
        "exists and was not generated by imageflow-gen (no lock lists it); move it away or delete it",
    )


def compare(out: Path, profile: str, files: dict[str, str]) -> list[Change]:
    """`plan_changes` for check and diff: while no writer runs, file faults as located errors."""
    _check_out(out)
    try:
        with shared(out):
            # No writer holds the output now, so a pid file is a killed writer's.
            if (out / LOCK_DIR / PID_FILE).exists():
                raise _interrupted(out)
            return plan_changes(out, profile, files)
    except OSError as error:
        raise OutputError(
            [Problem(Location(error.filename or str(out)), "", f"cannot read the output: {_reason(error)}")]
        ) from None


def _root_of(lock: str) -> str | None:
    try:
        root = json.loads(lock).get("root") if lock else None
    except ValueError:
        return None
    return root if isinstance(root, str) else None


def _check_out(out: Path) -> None:
    if out.is_symlink():
        raise ValidationFailed([Problem(Location(str(out)), "", "the output directory is a symbolic link")])
    if out.exists() and not out.is_dir():
        raise OutputError([Problem(Location(str(out)), "", "is not a folder; the output must be one")])


# ---- the exclusive lock -------------------------------------------------------------------


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold the output for writing: one writer at a time, or a located error naming the holder.

    A folder this made and left empty is removed again, so a refused run leaves nothing.
    """
    made = [p for p in (out, out / LOCK_DIR) if not p.exists()]
    lock_dir = out / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _flock(fd, fcntl.LOCK_EX, out)
        pid_file = lock_dir / PID_FILE
        pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
        try:
            yield
        finally:
            pid_file.unlink(missing_ok=True)
    finally:
        os.close(fd)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty


@contextlib.contextmanager
def shared(out: Path) -> Iterator[None]:
    """Hold the output for reading (check, diff): no writer runs meanwhile."""
    lock_dir = out / LOCK_DIR
    if not lock_dir.is_dir() or lock_dir.is_symlink():
        yield
        return
    fd = os.open(lock_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _flock(fd, fcntl.LOCK_SH, out)
        yield
    finally:
        os.close(fd)


def _flock(fd: int, mode: int, out: Path) -> None:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = f" (pid {int((out / LOCK_DIR / PID_FILE).read_text(encoding='ascii'))})"
        except (OSError, ValueError):
            holder = ""
        raise OutputError(
            [
                Problem(
                    Location(str(out)),
                    "",
                    f"another imageflow-gen{holder} is writing this output folder; try again when it has finished",
                )
            ]
        ) from None


# ---- the journal --------------------------------------------------------------------------


def _interrupted(out: Path) -> ValidationFailed:
    return ValidationFailed(
        [
            Problem(
                Location(str(out / LOCK_DIR)),
                "",
                "an interrupted render left its journal, "
                "staged files or pid file here; run `imageflow-gen render` to finish it first",
            )
        ]
    )


def _pending(out: Path) -> bool:
    lock_dir = out / LOCK_DIR
    return (lock_dir / JOURNAL).exists() or (lock_dir / STAGING).exists() or (lock_dir / f"{JOURNAL}.tmp").exists()


def recover(out: Path) -> None:
    """Finish the journal a killed run committed, or drop what it staged before committing.

    Call it holding `exclusive(out)`.
    """
    lock_dir = out / LOCK_DIR
    journal = lock_dir / JOURNAL
    if journal.exists():
        try:
            operations = json.loads(_read_regular(journal).decode("utf-8"))["operations"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise OutputError(
                [
                    Problem(
                        Location(str(journal)),
                        "",
                        f"unreadable journal ({_reason(error)}); "
                        "the output may be half-written: restore it from version control, "
                        "then delete the journal",
                    )
                ]
            ) from None
        _apply(out, operations)
        journal.unlink()
    (lock_dir / f"{JOURNAL}.tmp").unlink(missing_ok=True)
    shutil.rmtree(lock_dir / STAGING, ignore_errors=True)
    _fsync_dir(lock_dir)


def _apply(out: Path, operations: list[dict[str, str]]) -> None:
    """Carry out a journal. Idempotent: a step already done is recognised and skipped."""
    staging = out / LOCK_DIR / STAGING
    for op in operations:
        target = out / op["path"]
        if op["op"] == "put":
            staged = staging / op["staged"]
            if staged.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
        elif op["op"] == "remove":
            current = _file_bytes(target)
            if current is not None and sha256(current) == op["sha256"]:
                _remove(out, target)
    for parent in sorted({(out / op["path"]).parent for op in operations}):
        if parent.is_dir():
            _fsync_dir(parent)


def write(out: Path, profile: str, files: dict[str, str]) -> list[Change]:
    """Bring `out` in line with `files` for `profile`; return what happened to each file."""
    committed = False
    _check_out(out)
    try:
        with exclusive(out):
            recover(out)
            changes = plan_changes(out, profile, files)
            operations = _stage_all(out, profile, files, changes)
            if operations:
                _commit(out, operations)
                committed = True
                _apply(out, operations)
                (out / LOCK_DIR / JOURNAL).unlink()
            shutil.rmtree(out / LOCK_DIR / STAGING, ignore_errors=True)
            return changes
    except OSError as error:
        outcome = (
            "the change is in the journal, and the next render finishes it" if committed else "nothing was changed"
        )
        raise OutputError(
            [Problem(Location(error.filename or str(out)), "", f"cannot write the output: {_reason(error)}; {outcome}")]
        ) from None


def _stage_all(out: Path, profile: str, files: dict[str, str], changes: list[Change]) -> list[dict[str, str]]:
    """Stage every new file and make every folder the renames need; the journal's operations.

    Anything that can fail for want of space or permission fails here, before the commit.
    """
    staging = out / LOCK_DIR / STAGING
    operations: list[dict[str, str]] = []
    lock = lock_path(profile)
    try:
        ordered = sorted(changes, key=lambda c: c.path == lock)
        for number, change in enumerate(ordered):
            if change.status in ("created", "changed"):
                data = files[change.path].encode("utf-8")
                staging.mkdir(exist_ok=True)
                _write_synced(staging / str(number), data)
                _target(out, change.path).parent.mkdir(parents=True, exist_ok=True)
                operations.append({"op": "put", "path": change.path, "staged": str(number), "sha256": sha256(data)})
            elif change.status == "removed":
                operations.append(
                    {"op": "remove", "path": change.path, "sha256": sha256(_file_bytes(out / change.path) or b"")}
                )
        if staging.exists():
            _fsync_dir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return operations


def _commit(out: Path, operations: list[dict[str, str]]) -> None:
    """Write the journal and rename it into place: from here on the new version stands."""
    lock_dir = out / LOCK_DIR
    temp = lock_dir / f"{JOURNAL}.tmp"
    try:
        _write_synced(temp, (json.dumps({"operations": operations}, indent=1) + "\n").encode("utf-8"))
        os.replace(temp, lock_dir / JOURNAL)
    except BaseException:
        temp.unlink(missing_ok=True)
        shutil.rmtree(lock_dir / STAGING, ignore_errors=True)
        raise
    _fsync_dir(lock_dir)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(out: Path, target: Path) -> None:
    """Remove a generated file, then the directories it leaves empty (never `out` itself)."""
    target.unlink()
    parent = target.parent
    while parent != out and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def put_files(files: dict[Path, str], *, create: bool = False) -> None:
    """Write files outside an output folder (profiles, schemas): each whole, through a temporary
    file beside it and a rename. With `create`, none may exist yet, and a failure removes those
    this call wrote. A file-system fault is a located error."""
    written: list[Path] = []
    try:
        for path, text in files.items():
            if create and path.exists():
                raise OutputError([Problem(Location(str(path)), "", "already exists; refusing to overwrite it")])
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.tmp")
            try:
                _write_synced(temp, text.encode("utf-8"))
                os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)
            written.append(path)
    except BaseException as error:
        if create:
            for path in written:
                path.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OutputError(
                [Problem(Location(error.filename or str(next(iter(files), ""))), "", f"cannot write: {_reason(error)}")]
            ) from None
        raise


def unified_diff(out: Path, files: dict[str, str], changes: list[Change]) -> str:
    """The difference between `out` and what a render would write, as a unified diff."""
    chunks: list[str] = []
    for change in changes:
        if change.status in ("unchanged", "kept"):
            continue
        target = out / change.path
        old = target.read_text(encoding="utf-8", errors="replace") if change.status != "created" else ""
        new = files.get(change.path, "")
        chunks.extend(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                "/dev/null" if change.status == "created" else f"a/{change.path}",
                "/dev/null" if change.status == "removed" else f"b/{change.path}",
            )
        )
        if chunks and not chunks[-1].endswith("\n"):
            chunks[-1] += "\n\\ No newline at end of file\n"
    return "".join(chunks)
