"""Release strategies: blue-green and canary shapes, the one-line colour switch, the real gates."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CRDS, PROFILES, run_cli
from imageflow_gen.changes import classify
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets.kubernetes import objects
from test_hostile import profile_with

PROD = yaml.safe_load((PROFILES / "prod.yaml").read_text())


def release_profile(tmp: Path, name: str, releases: dict[str, dict[str, Any]]) -> Path:
    """A profile extending prod whose services get the given release settings."""
    data = {
        "purpose": "release test",
        "extends": "prod",
        "processing": {"services": [{"name": svc, "release": release} for svc, release in releases.items()]},
    }
    return profile_with(tmp, name, data)


def by_kind(profiles: Path, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The profile's complete object set (what the overlay builds to), validated first."""
    build(profiles, name, CRDS)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects(validated(profiles, name)[2])}


def test_blue_green_two_colours_and_a_service_on_the_active_one(tmp_path: Path) -> None:
    profiles = release_profile(
        tmp_path,
        "bg",
        {
            "resize": {
                "strategy": "blue-green",
                "active": "green",
                "green_image": "ghcr.io/imageflowcanvas/resize-grpc:1.1.0",
            }
        },
    )
    objs = by_kind(profiles, "bg")
    assert ("Deployment", "resize") not in objs and ("HorizontalPodAutoscaler", "resize") not in objs
    blue, green = objs[("Deployment", "resize-blue")], objs[("Deployment", "resize-green")]
    for colour, deployment in (("blue", blue), ("green", green)):
        assert deployment["spec"]["selector"]["matchLabels"] == {"app": "resize", "color": colour}
        assert deployment["spec"]["template"]["metadata"]["labels"]["color"] == colour
        assert deployment["spec"]["template"]["metadata"]["labels"]["tier"] == "processing"
        assert (
            objs[("HorizontalPodAutoscaler", f"resize-{colour}")]["spec"]["scaleTargetRef"]["name"]
            == f"resize-{colour}"
        )
    assert blue["spec"]["template"]["spec"]["containers"][0]["image"].endswith("resize-grpc:1.0.0")
    assert green["spec"]["template"]["spec"]["containers"][0]["image"].endswith("resize-grpc:1.1.0")
    assert objs[("Service", "resize")]["spec"]["selector"] == {"app": "resize", "color": "green"}


def test_switching_colour_changes_only_the_selector_line(tmp_path: Path) -> None:
    outputs = {}
    for colour in ("blue", "green"):
        work = tmp_path / colour
        profiles = release_profile(work, "bg", {"resize": {"strategy": "blue-green", "active": colour}})
        outputs[colour] = build(profiles, "bg", CRDS).owned()
    before, after = outputs["blue"], outputs["green"]
    assert before.keys() == after.keys()
    changed = sorted(path for path in before if before[path] != after[path])
    assert changed == [
        ".imageflow-gen/bg.lock.json",
        "helm/bg/values.yaml",
        "kustomize/overlays/bg/patches/imageflow-processing/service-resize.yaml",
        "state/bg.json",
    ]
    # What `plan` says of it: the Service's selector, in place; no pod restarts.
    changes = classify(json.loads(before["state/bg.json"]), json.loads(after["state/bg.json"]))
    assert [(c.key, c.category) for c in changes] == [("v1 Service imageflow-processing/resize", "in-place")]
    for path, expected in (
        ("helm/bg/values.yaml", "active: blue"),
        ("kustomize/overlays/bg/patches/imageflow-processing/service-resize.yaml", "blue"),
    ):
        diff = [
            line
            for line in difflib.unified_diff(before[path].splitlines(), after[path].splitlines(), n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert len(diff) == 2 and expected in diff[0] and expected.replace("blue", "green") in diff[1], diff


@pytest.mark.parametrize("weight", [0, 10, 100])
def test_canary_weights_and_a_stable_only_service(tmp_path: Path, weight: int) -> None:
    profiles = release_profile(
        tmp_path, "canary", {"filter": {"strategy": "canary", "canary_weight": weight, "canary_replicas": 2}}
    )
    objs = by_kind(profiles, "canary")
    host = "filter.imageflow-processing.svc.cluster.local"
    stable, canary = objs[("Deployment", "filter")], objs[("Deployment", "filter-canary")]
    assert stable["spec"]["selector"]["matchLabels"] == {"app": "filter", "track": "stable"}
    assert canary["spec"]["selector"]["matchLabels"] == {"app": "filter", "track": "canary"}
    assert canary["spec"]["replicas"] == 2 and "replicas" not in stable["spec"]  # stable is autoscaled
    assert ("HorizontalPodAutoscaler", "filter-canary") not in objs
    # A caller without a sidecar reaches the stable pods only, whatever the weight; the canary
    # has its own Service, which the mesh route sends the weight's share to.
    assert objs[("Service", "filter")]["spec"]["selector"] == {"app": "filter", "track": "stable"}
    assert objs[("Service", "filter-canary")]["spec"]["selector"] == {"app": "filter", "track": "canary"}
    assert not [key for key in objs if key[0] == "DestinationRule"]
    route = objs[("VirtualService", "filter")]["spec"]
    assert route["hosts"] == [host] and "gateways" not in route
    assert [(d["destination"]["host"], d["weight"]) for d in route["http"][0]["route"]] == [
        (host, 100 - weight),
        ("filter-canary.imageflow-processing.svc.cluster.local", weight),
    ]


@pytest.mark.parametrize(
    "releases",
    [
        {"resize": {"strategy": "blue-green", "active": "green"}, "filter": {"strategy": "canary", "canary_weight": 0}},
        {"filter": {"strategy": "canary", "canary_weight": 100}},
    ],
)
def test_strategies_pass_helm_equals_kustomize_and_the_istio_schemas(tmp_path: Path, releases) -> None:
    profiles = release_profile(tmp_path, "gates", releases)
    result = run_cli("validate", "--profile", "gates", "--profiles-dir", str(profiles))
    assert result.code == 0, result.stdout + result.stderr
    for gate in ("kubeconform: ok", "helm template: ok", "kubeconform (chart): ok", "helm = kustomize: ok"):
        assert gate in result.stdout


def test_settings_of_another_strategy_are_refused(tmp_path: Path) -> None:
    profiles = release_profile(tmp_path, "mixed", {"resize": {"strategy": "blue-green", "canary_weight": 20}})
    with pytest.raises(ImageflowError) as caught:
        build(profiles, "mixed", CRDS)
    message = str(caught.value.problems[0])
    assert (
        "mixed.yaml:" in message
        and "processing.services[1].release.canary_weight: only used with strategy canary (here strategy is blue-green)"
        in message
    )
    bad = release_profile(tmp_path / "w", "weight", {"filter": {"strategy": "canary", "canary_weight": 101}})
    result = run_cli("validate", "--profile", "weight", "--profiles-dir", str(bad), "--no-tools")
    assert result.code == 1 and "canary_weight" in result.stderr and "less than or equal to 100" in result.stderr


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        # No strategy written is rolling, which has no canary settings.
        (
            {"canary_weight": 20},
            "release.canary_weight: only used with strategy canary (here strategy is rolling)",
        ),
        ({"strategy": "purple"}, "release: strategy must be one of rolling, blue-green, canary"),
        (
            {"strategy": "canary", "colour": "blue"},
            "release.colour: unknown key (strategy canary takes: strategy, "
            "canary_weight, canary_image, canary_replicas)",
        ),
    ],
)
def test_release_is_a_tagged_union_with_located_messages(tmp_path: Path, release: dict, expected: str) -> None:
    profiles = release_profile(tmp_path, "tagged", {"ai-detection": release})  # rolling in prod
    with pytest.raises(ImageflowError) as caught:
        build(profiles, "tagged", CRDS)
    (problem,) = caught.value.problems
    assert problem.location.file.endswith("tagged.yaml") and problem.location.line > 0
    assert str(problem).endswith("processing.services[2]." + expected)


def test_grpc_balancing_follows_scaling_without_a_mesh(tmp_path: Path) -> None:
    """A ClusterIP Service balances gRPC per connection, so pods the autoscaler adds get no
    traffic from callers without a sidecar: the default is a headless Service (client-side
    balancing), and a ClusterIP one where the mesh balances (a canary, or asked for)."""
    data = {
        "purpose": "balancing",
        "extends": "prod",
        "processing": {"services": [{"name": "ai-detection", "load_balancing": "mesh"}]},
    }
    objs = by_kind(profile_with(tmp_path, "lb", data), "lb")
    assert objs[("Service", "resize")]["spec"]["clusterIP"] == "None"  # default: client
    assert "publishNotReadyAddresses" not in objs[("Service", "resize")]["spec"]
    assert "clusterIP" not in objs[("Service", "ai-detection")]["spec"]  # asked for mesh
    assert "clusterIP" not in objs[("Service", "filter")]["spec"]  # a canary: mesh by default
    assert objs[("Service", "minio-hl")]["spec"]["publishNotReadyAddresses"] is True  # peers find each other
    data["processing"] = {"services": [{"name": "filter", "load_balancing": "client"}]}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path / "bad", "lb", data), "lb", CRDS)
    (problem,) = caught.value.problems
    assert problem.key == "processing.services[3].load_balancing" and "canary's weights" in problem.message
