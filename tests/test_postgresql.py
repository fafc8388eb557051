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
import yaml

from conftest import CRDS, PROFILES, run_cli
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, validated
from imageflow_gen.plan.postgresql import DATA_DIR, DUMP_DIR, ROLES_DIR, SQL_DIR, SUPERUSER_DIR
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


# ---- on a VM's compose stack ---------------------------------------------------------------

ON_VM = """purpose: PostgreSQL on the Kafka VM
extends: dev
storage:
  postgresql:
    namespace: null
    vm: vm1
    vm_node_port: null
    volume: {storage_class: null}
"""


@pytest.fixture(scope="module")
def on_vm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, str]]:
    profiles = tmp_path_factory.mktemp("pg-on-vm") / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "pgvm.yaml").write_text(ON_VM)
    _, topo, plan = validated(profiles, "pgvm")
    return profiles, topo, build(profiles, "pgvm", CRDS).files


def _compose(files: dict[str, str], vm: str) -> dict[str, Any]:
    return yaml.safe_load(files[f"compose/pgvm/{vm}/docker-compose.yaml"])


def test_on_a_vm_the_store_runs_in_its_compose_stack(on_vm: tuple[Path, Any, dict[str, str]]) -> None:
    profiles, topo, files = on_vm
    vm1 = _compose(files, "vm1")
    services = vm1["services"]
    server = services["postgresql"]
    assert server["ports"] == ["10.0.2.10:5432:5432/tcp"] and server["user"] == "999:999"
    assert server["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert {"source": "postgresql-data", "target": DATA_DIR, "type": "volume"} in server["volumes"]
    assert server["environment"]["POSTGRES_PASSWORD_FILE"] == f"{SUPERUSER_DIR}/password"
    # The bootstrap and the dump are the cluster's scripts and SQL, their secrets at the same paths.
    _, dev = _store("dev")
    job = dev[("Job", "postgresql-bootstrap")]["spec"]["template"]["spec"]["containers"][0]
    bootstrap = services["postgresql-bootstrap"]
    assert bootstrap["entrypoint"][2].replace("$$", "$") == job["command"][2]
    assert (
        files["compose/pgvm/vm1/postgresql/bootstrap.sql"]
        == dev[("ConfigMap", "postgresql-bootstrap")]["data"]["bootstrap.sql"]
    )
    targets = {s["target"] for s in bootstrap["secrets"]}
    assert targets == {f"{SUPERUSER_DIR}/password", f"{ROLES_DIR}/imageflow", f"{ROLES_DIR}/imageflow-backup"}
    assert bootstrap["depends_on"] == {"postgresql": {"condition": "service_healthy"}}
    # Backups: two services of the compose profile `backup`, which the cron file runs.
    dump, upload = services["postgresql-backup-dump"], services["postgresql-backup"]
    assert dump["profiles"] == upload["profiles"] == ["backup"]
    assert upload["depends_on"] == {"postgresql-backup-dump": {"condition": "service_completed_successfully"}}
    assert "mc alias set imageflow http://minio.imageflow.local:30900 " in upload["entrypoint"][2]
    cron = files["compose/pgvm/vm1/cron/postgresql-backup"]
    run = 'root cd "$IMAGEFLOW_STACK" && docker compose --profile backup run --rm postgresql-backup\n'
    assert f"{topo.storage.postgresql.backup.schedule} {run}" in cron
    example = files["compose/pgvm/vm1/.env.example"]
    for variable in ("SUPERUSER__PASSWORD", "IMAGEFLOW__PASSWORD", "MINIO_POSTGRESQL_BACKUP__ACCESS_KEY"):
        assert f"{variable}_FILE=" in example
    # The clients: the cluster's at the VM's address (an ipBlock), the edge VM's too.
    objs = objects(validated(profiles, "pgvm")[2])
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert (
        not {("StatefulSet", "postgresql"), ("Job", "postgresql-bootstrap"), ("CronJob", "postgresql-backup")} & kinds
    )
    assert not [o for o in objs if o["metadata"]["name"] == "postgresql-superuser"]  # only the VM reads it
    (backend,) = [o for o in objs if (o["kind"], o["metadata"]["name"]) == ("Deployment", "backend-api")]
    env = {e["name"]: e.get("value") for e in backend["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["PGHOST"], env["PGPORT"]) == ("10.0.2.10", "5432")
    (egress,) = [o for o in objs if o["metadata"]["name"] == "allow-backend-api-to-postgresql-egress"]
    assert egress["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.0.2.10/32"}}]
    edge = _compose(files, "vm0")["services"]["backend-api"]["environment"]
    assert (edge["PGHOST"], edge["PGPORT"]) == ("10.0.2.10", "5432")
    readme = files["docs/pgvm/README.md"]
    assert "PostgreSQL runs here: `postgresql` (published on 10.0.2.10:5432)" in readme
    assert "install\n   `cron/postgresql-backup` in `/etc/cron.d/`" in readme


def test_on_a_vm_the_output_passes_the_real_tools(on_vm: tuple[Path, Any, dict[str, str]]) -> None:
    profiles, _, _ = on_vm
    result = run_cli("validate", "--profiles-dir", str(profiles), "--profile", "pgvm")
    assert result.code == 0, result.stdout + result.stderr
    assert "compose schema: ok" in result.stdout and "kubeconform: ok" in result.stdout


def test_on_a_vm_the_bootstrap_and_dump_services_run_against_a_real_server(
    server: dict[str, Any], on_vm: tuple[Path, Any, dict[str, str]], tmp_path: Path
) -> None:
    """The compose services' own scripts, environment and SQL, with their secrets' paths and the
    dumps' volume replaced by folders here."""
    _, topo, files = on_vm
    services = _compose(files, "vm1")["services"]
    roles, sql, dumps = tmp_path / "roles", tmp_path / "sql", tmp_path / "dumps"
    for folder in (roles, sql, dumps):
        folder.mkdir()
    passwords = {"imageflow": "vm-imageflow-pw", "imageflow-backup": "vm-backup-pw"}
    for role, password in passwords.items():
        (roles / role).write_text(password)
    folders = {ROLES_DIR: roles, SUPERUSER_DIR: server["superuser"], SQL_DIR: sql, DATA_DIR: dumps}
    (sql / "bootstrap.sql").write_text(_local(files["compose/pgvm/vm1/postgresql/bootstrap.sql"], folders))
    for name in ("postgresql-bootstrap", "postgresql-backup-dump"):
        service = services[name]
        env = {k: _local(v, folders) for k, v in service["environment"].items()}
        env |= {"PGHOST": "127.0.0.1", "PGPORT": str(server["port"]), "PATH": _path(server)}
        script = _local(service["entrypoint"][2].replace("$$", "$"), folders)
        done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (
        _sql(server, "imageflow", passwords["imageflow"], "imageflow", "SELECT current_user").stdout.strip()
        == "imageflow"
    )
    (dump,) = (dumps / "imageflow").glob("*.dump")
    assert dump.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("    vm: vm1\n", "storage.postgresql", "set exactly one of namespace (in the cluster) and vm"),
        (
            "    namespace: null\n    vm: vm9\n    vm_node_port: null\n    volume: {storage_class: null}\n",
            "storage.postgresql.vm",
            "no VM 'vm9' is declared (the stacks: vm0, vm1)",
        ),
        (
            "    namespace: null\n    vm: vm1\n    volume: {storage_class: null}\n",
            "storage.postgresql.vm_node_port",
            "only for PostgreSQL in the cluster: on VM vm1 remove it",
        ),
    ],
)
def test_a_vm_placement_is_checked_where_it_is_written(tmp_path: Path, text: str, key: str, message: str) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    (profiles / "pgvm.yaml").write_text("purpose: x\nextends: dev\nstorage:\n  postgresql:\n" + text)
    with pytest.raises(ImageflowError) as caught:
        validated(profiles, "pgvm")
    found = [p for p in caught.value.problems if p.key == key]
    assert found and message in found[0].message, [(p.key, p.message) for p in caught.value.problems]
    assert found[0].location.line > 0
