"""MinIO is private: each workload that uses it is its own MinIO user, limited to its buckets.

Read from the rendered objects only: the workloads' keys come from Secrets the secret provider
supplies, the bucket job creates exactly those users with those keys and attaches a policy
whose statements allow exactly the access the topology gives; the job's script is run against
a stand-in `mc` that records what it is asked to do.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import PROFILES
from imageflow_gen.pipeline import validated
from imageflow_gen.targets.kubernetes import objects

PROFILE_NAMES = ["base", "dev", "staging", "prod"]

READ = {"s3:GetObject", "s3:ListBucket"}
WRITE = {"s3:PutObject", "s3:AbortMultipartUpload"}
DELETE = {"s3:DeleteObject"}


def _by_kind(objs: list[dict[str, Any]], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs if o["kind"] == kind}


def _grants(uses: Any) -> dict[str, str]:
    """bucket -> access of a workload's MinIO uses (r and w together: rw)."""
    grants: dict[str, set[str]] = {}
    for use in uses:
        for bucket in use.minio.buckets if use.minio else []:
            grants.setdefault(bucket, set()).update(use.minio.access)
    return {bucket: "".join(sorted(letters)) for bucket, letters in grants.items()}


def _expected_users(topo: Any) -> dict[str, dict[str, str]]:
    """Written from the topology alone: who uses MinIO (its `uses`), and what it may do with which
    bucket."""
    owners = [topo.edge.backend_api, *topo.processing.services, *topo.workloads]
    users = {o.name: grants for o in owners if (grants := _grants(o.uses))}
    connect = topo.messaging.kafka.connect
    if connect and connect.connectors:
        users["kafka-connect"] = {c.bucket: "w" for c in connect.connectors}
    pg = topo.storage.postgresql
    if pg and pg.backup:  # the backup CronJob writes its dumps and deletes the old ones
        users[f"{pg.name}-backup"] = {pg.backup.bucket: "rw"}
    return users


def _allowed(policy: dict[str, Any], action: str, resource: str) -> bool:
    """IAM evaluation for Allow-only policies without wildcards in actions."""
    return any(
        s["Effect"] == "Allow"
        and action in s["Action"]
        and any(r == resource or (r.endswith("*") and resource.startswith(r[:-1])) for r in s["Resource"])
        for s in policy["Statement"]
    )


def _job(objs: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    return _by_kind(objs, "Job")[(namespace, "minio-buckets")]["spec"]["template"]["spec"]


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_each_cluster_workload_reads_its_own_users_keys_from_a_supplied_secret(profile: str) -> None:
    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    external = _by_kind(objs, "ExternalSecret")
    minio_ns = topo.storage.minio.namespace
    job_secrets = {
        src["secret"]["name"]
        for v in _job(objs, minio_ns)["volumes"]
        if "projected" in v
        for src in v["projected"]["sources"]
    }
    seen = set()
    for obj in objs:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if "MINIO_ENDPOINT" not in env or obj["metadata"]["name"] == "minio":
            continue
        ns = obj["metadata"]["namespace"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        secrets = set()
        for variable in ("MINIO_ACCESS_KEY_FILE", "MINIO_SECRET_KEY_FILE"):
            folder, key = env[variable].rsplit("/", 1)
            volume = volumes[mounts[folder]]
            secrets.add(volume["secret"]["secretName"])
            items = volume["secret"].get("items")
            assert items is None or key in {i["path"] for i in items}
            assert key in {d["secretKey"] for d in external[(ns, volume["secret"]["secretName"])]["spec"]["data"]}
        (secret,) = secrets
        # The bucket job reads the same remote values in MinIO's namespace.
        assert external[(minio_ns, secret)]["spec"]["data"] == external[(ns, secret)]["spec"]["data"]
        assert secret in job_secrets
        seen.add(obj["metadata"]["labels"]["app"])
    in_cluster = {s.name for s in topo.processing.services if _grants(s.uses)}
    in_cluster |= {w.name for w in topo.workloads if w.namespace and _grants(w.uses)}
    backend = topo.edge.backend_api
    if "cluster" in backend.runs_on and _grants(u for u in backend.uses if u.where in (None, "cluster")):
        in_cluster.add(backend.name)
    assert in_cluster, "the profile has MinIO users in the cluster"
    assert seen == in_cluster
    assert len(job_secrets) == len(_expected_users(topo))


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_each_users_policy_allows_exactly_its_access(profile: str) -> None:
    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    policies = _by_kind(objs, "ConfigMap")[(topo.storage.minio.namespace, "minio-policies")]["data"]
    expected = _expected_users(topo)
    assert set(policies) == {f"{user}.json" for user in expected}
    buckets = [b.name for b in topo.storage.minio.buckets] + ["some-other-bucket"]
    for user, access in expected.items():
        policy = json.loads(policies[f"{user}.json"])
        for bucket in buckets:
            mode = access.get(bucket, "")
            for action in sorted(READ | WRITE | DELETE):
                resource = f"arn:aws:s3:::{bucket}" if action == "s3:ListBucket" else f"arn:aws:s3:::{bucket}/key"
                wanted = (
                    (action in READ and "r" in mode)
                    or (action in WRITE and "w" in mode)
                    or (action in DELETE and mode == "rw")
                )
                assert _allowed(policy, action, resource) == wanted, (user, bucket, action)
        assert not _allowed(policy, "s3:CreateBucket", "arn:aws:s3:::raw-images")
        assert not _allowed(policy, "s3:PutBucketPolicy", "arn:aws:s3:::raw-images")


_FAKE_MC = """#!/bin/sh
# Records each call; an attach already done answers as mc RELEASE.2024-06-12 does.
echo "$*" >> "$MC_LOG"
case "$1 $2 $3" in
  "admin policy attach")
    if grep -qxF "$*" "$MC_STATE" 2>/dev/null; then
      echo "mc: <ERROR> Unable to make user/group policy association." \
        "The specified policy change is already in effect." >&2
      exit 1
    fi
    if [ -n "${MC_FAIL:-}" ]; then echo "mc: <ERROR> Unable to connect" >&2; exit 1; fi
    echo "$*" >> "$MC_STATE" ;;
esac
"""


def _run_job(tmp_path: Path, objs: list[dict[str, Any]], namespace: str, fail: bool = False) -> tuple[int, str, str]:
    """Runs the bucket job's script with its mounts under tmp_path and a stand-in mc."""
    pod = _job(objs, namespace)
    (container,) = pod["containers"]
    script = container["command"][2]
    configmaps = _by_kind(objs, "ConfigMap")
    root = tmp_path / "root"
    for mount in container["volumeMounts"]:
        folder = root / mount["mountPath"].lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        files: dict[str, str] = {}
        if "projected" in volume:
            for src in volume["projected"]["sources"]:
                secret = src["secret"]["name"]
                files |= {i["path"]: f"{secret}:{i['key']}" for i in src["secret"]["items"]}
        elif "secret" in volume:
            files = {key: f"root:{key}" for key in ("rootUser", "rootPassword")}
        elif "configMap" in volume:
            files = configmaps[(namespace, volume["configMap"]["name"])]["data"]
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        script = script.replace(mount["mountPath"] + "/", f"{folder}/")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "mc").write_text(_FAKE_MC, encoding="utf-8")
    (bin_dir / "mc").chmod(stat.S_IRWXU)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MC_LOG": str(tmp_path / "mc.log"),
        "MC_STATE": str(tmp_path / "mc.state"),
        **({"MC_FAIL": "1"} if fail else {}),
    }
    (tmp_path / "mc.log").write_text("", encoding="utf-8")
    result = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, (tmp_path / "mc.log").read_text(encoding="utf-8"), result.stderr


def test_the_bucket_job_creates_every_user_and_runs_again_unchanged(tmp_path: Path) -> None:
    _, topo, plan = validated(PROFILES, "prod")
    objs = objects(plan)
    ns = topo.storage.minio.namespace
    code, log, err = _run_job(tmp_path, objs, ns)
    assert code == 0, err
    calls = log.splitlines()
    assert (
        calls[0]
        == "alias set imageflow https://minio.imageflow-storage.svc.cluster.local:9000 root:rootUser root:rootPassword"
    )
    for user in _expected_users(topo):
        policy = f"imageflow-{user}"
        created = next(c for c in calls if c.startswith(f"admin policy create imageflow {policy} "))
        document = Path(created.split()[-1]).read_text(encoding="utf-8")
        assert document == _by_kind(objs, "ConfigMap")[(ns, "minio-policies")]["data"][f"{user}.json"]
        secret = f"minio-{user}"
        assert f"admin user add imageflow {secret}:access-key {secret}:secret-key" in calls
        assert f"admin policy attach imageflow {policy} --user {secret}:access-key" in calls
    # A second run finds every policy attached, which mc reports as an error: still a success.
    code, log, err = _run_job(tmp_path, objs, ns)
    assert code == 0, err
    assert sum("policy attach" in c for c in log.splitlines()) == len(_expected_users(topo))


def test_the_bucket_job_fails_on_any_other_attach_error(tmp_path: Path) -> None:
    _, topo, plan = validated(PROFILES, "dev")
    code, _, err = _run_job(tmp_path, objects(plan), topo.storage.minio.namespace, fail=True)
    assert code != 0 and "Unable to connect" in err


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("credentials", "the MinIO user's Secret 'minio-credentials' would be storage.minio.credentials'"),
        ("kafka-connect", "duplicate MinIO user (workload name) 'kafka-connect'"),
    ],
)
def test_a_workloads_minio_secret_is_its_own(tmp_path: Path, service: str, expected: str) -> None:
    from test_hostile import profile_with

    from imageflow_gen.errors import ImageflowError
    from imageflow_gen.pipeline import build

    services = [
        {
            "name": service,
            "image": "ghcr.io/imageflowcanvas/x:1.0.0",
            "resources": _RESOURCES,
            "uses": [{"minio": {"buckets": ["raw-images"], "access": "r"}}],
        }
    ]
    data = {"purpose": "x", "extends": "dev", "processing": {"services": services}}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path, "users", data), "users")
    messages = [(p.key, p.message) for p in caught.value.problems]
    assert any(message.startswith(expected) for _, message in messages), messages
    (key,) = [k for k, m in messages if m.startswith(expected)]
    assert key in ("processing.services[4].uses[0].minio", "messaging.kafka.connect")


_RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}


@pytest.mark.parametrize("key", ["../rootUser", "root user", "..", "${env:X}"])
def test_a_secret_key_is_a_key_the_api_server_takes_and_a_safe_file_name(tmp_path: Path, key: str) -> None:
    from test_hostile import profile_with

    from imageflow_gen.errors import ImageflowError
    from imageflow_gen.pipeline import build

    data = {"purpose": "x", "extends": "dev", "storage": {"minio": {"credentials": {"keys": {"access-key": key}}}}}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path, "keys", data), "keys")
    (problem,) = caught.value.problems
    assert problem.key == "storage.minio.credentials.keys.access-key"
    assert problem.message == f"{key!r} is not a Secret key (letters, digits, '-', '_' and '.'; not '.' or '..')"
