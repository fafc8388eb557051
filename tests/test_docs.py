"""docs/<profile>/README.md: every path it names exists, the diagram is the graph, Secrets listed."""

from __future__ import annotations

import re

import pytest

from conftest import CRDS, PROFILES
from imageflow_gen.errors import dotted
from imageflow_gen.graph import build_graph, mermaid
from imageflow_gen.model.checks import secret_refs
from imageflow_gen.pipeline import build, validated

PROFILE_NAMES = ["base", "dev", "staging", "prod"]


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_readme_matches_the_output(profile: str) -> None:
    result = build(PROFILES, profile, CRDS)
    files = result.owned()
    readme = files[f"docs/{profile}/README.md"]
    # Every path in the table and the commands is in this profile's output.
    table = readme.split("## What is here")[1].split("\n## ")[0]
    named = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    named |= {m.rstrip("/") for m in re.findall(r"(?:apply -k|helm upgrade --install imageflow|-f|cd) (\S+)", readme)}
    assert named, readme
    for path in named:
        assert path in files or any(f.startswith(path.rstrip("/") + "/") for f in files), path
    diagram = re.search(r"```mermaid\n(.*?)```", readme, re.S).group(1)
    assert diagram == mermaid(build_graph(validated(PROFILES, profile)[2]))
    for namespace, _, ref, _ in secret_refs(result.topology):
        assert f"| `{namespace}` | `{ref.name}` |" in readme
        assert all(f"`{key}`" in readme for key in ref.keys.values())
    order = [vm.name for vm in result.topology.vms]
    assert " → ".join(order) in readme
    for stack in sorted({f.split("/")[2] for f in files if f.startswith(f"compose/{profile}/")}):
        assert f"cd compose/{profile}/{stack} && cp .env.example .env" in readme
        assert f"compose/{profile}/{stack}/.env.example" in files


def test_the_readme_lists_every_flow_the_policies_open() -> None:
    from imageflow_gen.plan.network import flows

    readme = build(PROFILES, "prod", CRDS).files["docs/prod/README.md"]
    section = readme.split("## Topology")[1].split("\n## ")[0]  # the flows table is the topology's
    rows = [line for line in section.splitlines() if line.startswith("| `") and " in `" in line]
    names = [row.split("`")[1] for row in rows]
    assert names == [f.name for f in flows(validated(PROFILES, "prod")[1])]
    assert "| `grpc-gateway-to-filter` | `app=grpc-gateway` in `imageflow-processing` | `app=filter` in " in readme
    assert "| `grpc-gateway-to-kafka` | `app=grpc-gateway` in `imageflow-processing` | `10.0.2.10/32` |" in readme


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_readme_lists_each_workloads_dependencies(profile: str) -> None:
    """Each use, env endpoint and call of every workload, read from the profile here, is a row of
    "What each workload uses" naming where the profile declares it."""
    topo = validated(PROFILES, profile)[1]
    readme = build(PROFILES, profile, CRDS).files[f"docs/{profile}/README.md"]
    section = readme.split("## What each workload uses")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    declared = {line.rsplit("|", 2)[-2].strip().strip("`") for line in rows} - {""}
    expected = set()
    owners = [(("edge", "backend_api"), topo.edge.backend_api), (("edge", "web_ui"), topo.edge.web_ui)]
    owners += [(("processing", "services", i), s) for i, s in enumerate(topo.processing.services)]
    owners += [(("workloads", i), w) for i, w in enumerate(topo.workloads)]
    for base, owner in owners:
        for k, use in enumerate(owner.uses):
            store = next((s for s in ("minio", "kafka", "postgresql") if getattr(use, s) is not None), None)
            expected.add(dotted(base + ("uses", k) + ((store,) if store else ())))
        expected |= {dotted(base + ("env", j, "endpoint")) for j, v in enumerate(owner.env) if v.endpoint}
        expected |= {dotted(base + ("calls", m)) for m in range(len(getattr(owner, "calls", [])))}
    connect = topo.messaging.kafka.connect
    for i, _ in enumerate(connect.connectors if connect else []):  # Kafka Connect's uses: its connectors
        expected |= {f"messaging.kafka.connect.connectors[{i}].{key}" for key in ("topics", "bucket")}
    assert expected and declared == expected
    assert "| `backend-api` | `imageflow-backend` | `grpc-gateway` | port `grpc` | `GRPC_GATEWAY_URL` |" in section


def test_the_readme_lists_who_produces_and_consumes_each_topic() -> None:
    """Each declared topic's row names the workloads whose uses produce to or consume it, read
    from the profile here."""
    topo = validated(PROFILES, "prod")[1]
    readme = build(PROFILES, "prod", CRDS).files["docs/prod/README.md"]
    owners = [topo.edge.backend_api, *topo.processing.services, *topo.workloads]
    for topic in topo.messaging.kafka.topics:
        uses = [(o.name, u.kafka) for o in owners for u in o.uses if u.kafka is not None]
        producers = [n for n, k in uses if topic.name in k.produce]
        consumers = [n for n, k in uses if topic.name in k.consume]
        (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{topic.name}` | {topic.partitions} |")]
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert all(f"`{n}`" in cells[3] for n in producers) and all(f"`{n}`" in cells[4] for n in consumers)
    assert "| `image-jobs` | 12 | 3 | `backend-api` | `grpc-gateway` |" in readme
