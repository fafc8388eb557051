"""Issue 22's promise for prod: every address, credential file and policy between the
application's workloads traces back to a `uses` entry (or a processing service's `calls`)
through the source annotations of the output, and names what that entry names.

Written from the rendered objects and the profile alone: the variable names follow the
documented convention here, not the generator's code.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import PROFILES
from imageflow_gen.pipeline import validated
from imageflow_gen.targets.kubernetes import objects

SOURCE = "imageflow.io/source"
PROFILE_NAMES = ["base", "dev", "staging", "prod"]


def _at(topo: Any, key: str) -> Any:
    """The profile item a source annotation's key names (`workloads[3]`, `edge.backend_api`)."""
    item = topo
    for part in re.findall(r"[a-z_]+|\[\d+\]", key):
        item = item[int(part[1:-1])] if part.startswith("[") else getattr(item, part)
    return item


def _key(obj: dict[str, Any]) -> str:
    return obj["metadata"]["annotations"][SOURCE].split("#", 1)[1]


def _variables(use: Any) -> set[str]:
    """What a use sets, by the documented convention."""
    if use.minio is not None:
        return {"MINIO_*"}
    if use.kafka is not None:
        return {"KAFKA_*"}
    if use.postgresql is not None:
        return {"PG*"}
    return {use.env or f"{use.workload}_{use.port}_ADDRESS".upper().replace("-", "_")}


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_address_and_credential_file_comes_from_a_use(profile: str) -> None:
    """A variable holding another workload's address (a cluster DNS name), or naming a file of
    MinIO or Kafka credentials, is a use's, of the workload the Deployment comes from."""
    _, topo, plan = validated(PROFILES, profile)
    traced = 0
    for obj in objects(plan):
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        key = _key(obj)
        if not key.startswith(("workloads[", "processing.services[", "edge.")):
            continue  # the seed's stores and observability, configured by the generator
        owner = _at(topo, key)
        place = "cluster"
        allowed = set().union(*(_variables(u) for u in owner.uses if u.where in (None, place)))
        allowed.add("OTEL_EXPORTER_OTLP_ENDPOINT")  # the slots' telemetry, to the agent on the node
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for var in container.get("env", []):
                value = var.get("value", "")
                store = next((p for p in ("MINIO_", "KAFKA_", "PG") if var["name"].startswith(p)), None)
                if ".svc.cluster.local" in value or store:
                    name = f"{store}*" if store else var["name"]
                    assert name in allowed, (key, var["name"])
                    traced += 1
    assert traced > 10


def _ends(policy: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(the selected pods' app, the other ends' apps or addresses) of an allow policy."""
    spec = policy["spec"]
    local = spec["podSelector"].get("matchLabels", {}).get("app")
    peers = [p for rule in spec.get("ingress", []) for p in rule.get("from", [])]
    peers += [p for rule in spec.get("egress", []) for p in rule.get("to", [])]
    others = []
    for peer in peers:
        if "ipBlock" in peer:
            others.append(peer["ipBlock"]["cidr"])
        else:
            others.append(peer.get("podSelector", {}).get("matchLabels", {}).get("app", "*"))
    return local, others


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_policy_between_application_workloads_comes_from_a_use(profile: str) -> None:
    """A NetworkPolicy whose both ends are the application's workloads (MinIO and Kafka's brokers
    among them) comes from a use or a call of one end, naming the other."""
    _, topo, plan = validated(PROFILES, profile)
    kafka_vm = next(v for v in topo.vms if v.name == topo.messaging.kafka.vm)
    kafka = f"{kafka_vm.address}/32"
    apps = {s.name for s in topo.processing.services} | {w.name for w in topo.workloads}
    apps |= {c.name for c in topo.edge.components} | {"minio"}
    pg = topo.storage.postgresql
    apps |= {pg.name} if pg else set()
    seen = 0
    for obj in objects(plan):
        if obj["kind"] != "NetworkPolicy" or not obj["metadata"]["name"].startswith("allow-"):
            continue
        local, others = _ends(obj)
        if local not in apps or not others or not all(o in apps or o == kafka for o in others):
            continue
        if local == "minio" and others == ["minio"]:
            continue  # MinIO's servers among themselves
        (other,) = others
        key = _key(obj)
        match = re.fullmatch(r"(.+)\.(uses\[\d+\](?:\.minio|\.kafka|\.postgresql)?|calls\[\d+\])", key)
        assert match, (obj["metadata"]["name"], key)
        owner = _at(topo, match.group(1))
        item = _at(topo, key)
        egress = "Egress" in obj["spec"]["policyTypes"]
        caller, callee = (local, other) if egress else (other, local)
        assert owner.name == caller, (obj["metadata"]["name"], key)
        if isinstance(item, str):  # a call names the callee
            assert item == callee
        elif key.endswith(".minio"):
            assert callee == "minio"
        elif key.endswith(".kafka"):
            assert callee == kafka
        elif key.endswith(".postgresql"):
            assert callee == pg.name
        else:
            assert item.workload == callee
        seen += 1
    assert seen > 10
