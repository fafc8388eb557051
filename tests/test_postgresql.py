"""PostgreSQL as a store: the bootstrap Job's script and SQL, and the backup CronJob's dump, run
for real against a PostgreSQL server started here (Debian's, which `make test` installs), with the
pods' mounts replaced by folders. What a role can do afterwards is asked of the server itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import PROFILES
from imageflow_gen.pipeline import validated
from imageflow_gen.plan.postgresql import DUMP_DIR, ROLES_DIR, SQL_DIR, SUPERUSER_DIR
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate.tools import find

SUPERUSER_PASSWORD = 'it\'s a "superuser" $(secret)'  # quotes and shell syntax: passed as data only


def _programs() -> dict[str, str]:
    found = {p: find(p) for p in ("initdb", "postgres", "psql", "pg_isready", "pg_dump", "pg_restore")}
    missing = [p for p, path in found.items() if path is None]
    if missing:
        pytest.fail(f"PostgreSQL's {', '.join(missing)} missing: `make tools` installs them")
    return {p: str(path) for p, path in found.items()}


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.getuid() == 0 else argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    tools = _programs()
    # Not under pytest's folder, which only its owner may enter: the postgres user needs this one.
    root = Path(tempfile.mkdtemp(prefix="imageflow-pg-"))
    data, run = root / "data", root / "run"
    run.mkdir()
    secret = root / "superuser"
    secret.mkdir()
    (secret / "password").write_text(SUPERUSER_PASSWORD)
    pwfile = root / "initdb-password"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    if os.getuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(run, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        _as_postgres(
            [tools["initdb"], "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}"]
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    proc = subprocess.Popen(
        _as_postgres(
            [tools["postgres"], "-D", str(data), "-p", str(port), "-k", str(run), "-c", "listen_addresses=127.0.0.1"]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            ready = subprocess.run([tools["pg_isready"], "-q", "-h", "127.0.0.1", "-p", str(port)])
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the PostgreSQL server did not start")
        yield {"port": port, "root": root, "superuser": secret, "tools": tools}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _store(profile: str) -> tuple[Any, dict[tuple[str, str], dict[str, Any]]]:
    _, topo, plan = validated(PROFILES, profile)
    return topo, {(o["kind"], o["metadata"]["name"]): o for o in objects(plan)}


def _local(text: str, folders: dict[str, Path]) -> str:
    """A pod's script or SQL with its mount paths replaced by local folders."""
    for mount, folder in folders.items():
        text = text.replace(mount, str(folder))
    return text


def _run(server: dict[str, Any], container: dict[str, Any], folders: dict[str, Path], tmp: Path) -> Any:
    env = {e["name"]: _local(e["value"], folders) for e in container["env"]}
    env |= {"PGHOST": "127.0.0.1", "PGPORT": str(server["port"]), "PATH": _path(server)}
    script = _local(container["command"][2], folders)
    return subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=tmp)


def _path(server: dict[str, Any]) -> str:
    folders = dict.fromkeys(str(Path(p).parent) for p in server["tools"].values())
    return os.pathsep.join([*folders, "/usr/bin", "/bin"])


def _sql(server: dict[str, Any], user: str, password: str, database: str, sql: str) -> Any:
    env = {"PGPASSWORD": password, "PATH": _path(server)}
    argv = [server["tools"]["psql"], "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
    argv += ["-p", str(server["port"]), "-U", user, "-d", database, "-c", sql]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def _bootstrap(server: dict[str, Any], objs: dict[Any, Any], roles: Path, tmp: Path) -> Any:
    sql = tmp / "sql"
    sql.mkdir(exist_ok=True)
    folders = {ROLES_DIR: roles, SUPERUSER_DIR: server["superuser"], SQL_DIR: sql}
    text = objs[("ConfigMap", "postgresql-bootstrap")]["data"]["bootstrap.sql"]
    (sql / "bootstrap.sql").write_text(_local(text, folders))
    (container,) = objs[("Job", "postgresql-bootstrap")]["spec"]["template"]["spec"]["containers"]
    return _run(server, container, folders, tmp)


def test_the_bootstrap_creates_the_roles_and_databases_with_exactly_their_access(
    server: dict[str, Any], tmp_path: Path
) -> None:
    topo, objs = _store("prod")
    pg = topo.storage.postgresql
    roles = tmp_path / "roles"
    roles.mkdir()
    passwords = {role: f"pw-{role}-'quoted'" for role in [*pg.roles, "imageflow-backup"]}
    for role, password in passwords.items():
        (roles / role).write_text(password + "\n")  # a Secret's file may end with a newline
    first = _bootstrap(server, objs, roles, tmp_path)
    assert first.returncode == 0, first.stderr
    again = _bootstrap(server, objs, roles, tmp_path)  # every sync runs it: nothing changes, nothing fails
    assert again.returncode == 0, again.stderr

    (db,) = pg.databases
    owner = _sql(server, db.owner, passwords[db.owner], db.name, "CREATE TABLE verdicts (id serial, ok boolean)")
    assert owner.returncode == 0, owner.stderr
    for grant in db.grants:
        password = passwords[grant.role]
        read = _sql(server, grant.role, password, db.name, "SELECT count(*) FROM verdicts")
        assert read.returncode == 0, read.stderr
        write = _sql(server, grant.role, password, db.name, "INSERT INTO verdicts (ok) VALUES (true)")
        assert (write.returncode == 0) == (grant.access == "rw"), write.stderr
        ddl = _sql(server, grant.role, password, db.name, "CREATE TABLE mine (x int)")
        assert ddl.returncode != 0 and "permission denied" in ddl.stderr
    assert grant_roles_cannot_reach_other_databases(server, db, passwords)
    wrong = _sql(server, db.owner, "not-the-password", db.name, "SELECT 1")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr

    # A rotated password takes effect on the next run; the old one stops working.
    (roles / db.owner).write_text("rotated\n")
    assert _bootstrap(server, objs, roles, tmp_path).returncode == 0
    assert _sql(server, db.owner, "rotated", db.name, "SELECT 1").returncode == 0
    assert _sql(server, db.owner, passwords[db.owner], db.name, "SELECT 1").returncode != 0
    (roles / db.owner).write_text(passwords[db.owner])
    assert _bootstrap(server, objs, roles, tmp_path).returncode == 0

    # The backup role reads everything and writes nothing.
    backup = passwords["imageflow-backup"]
    assert _sql(server, "imageflow-backup", backup, db.name, "SELECT count(*) FROM verdicts").returncode == 0
    denied = _sql(server, "imageflow-backup", backup, db.name, "DELETE FROM verdicts")
    assert denied.returncode != 0 and "permission denied" in denied.stderr

    # The CronJob's dump: one custom-format file per database, which pg_restore reads.
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    job = objs[("CronJob", "postgresql-backup")]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (dump,) = job["initContainers"]
    result = _run(server, dump, {DUMP_DIR: dumps, ROLES_DIR: roles}, tmp_path)
    assert result.returncode == 0, result.stderr
    (file,) = (dumps / db.name).iterdir()
    listing = subprocess.run([server["tools"]["pg_restore"], "--list", str(file)], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE public verdicts" in listing.stdout


def grant_roles_cannot_reach_other_databases(server: dict[str, Any], db: Any, passwords: dict[str, str]) -> bool:
    """A role connects only to the databases that grant it (PUBLIC's CONNECT is revoked)."""
    role = db.grants[0].role if db.grants else db.owner
    denied = _sql(server, role, passwords[role], "postgres", "SELECT 1")
    return denied.returncode != 0 and "permission denied for database" in denied.stderr


def test_the_backup_uploads_then_prunes_with_its_own_minio_user() -> None:
    topo, objs = _store("prod")
    pg = topo.storage.postgresql
    job = objs[("CronJob", "postgresql-backup")]
    assert job["spec"]["schedule"] == pg.backup.schedule and job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (upload,) = pod["containers"]
    script = upload["command"][2]
    bucket = pg.backup.bucket
    assert f"mc cp --recursive {DUMP_DIR}/ imageflow/{bucket}/" in script
    assert f"mc rm --recursive --force --older-than {pg.backup.retention_days}d imageflow/{bucket}/imageflow/" in script
    (user,) = [v for v in pod["volumes"] if v["name"] == "minio-user"]
    assert user["secret"]["secretName"] == "minio-postgresql-backup"
    policy = objs[("ConfigMap", "minio-policies")]["data"]["postgresql-backup.json"]
    assert f"arn:aws:s3:::{bucket}/*" in policy and "raw-images" not in policy
