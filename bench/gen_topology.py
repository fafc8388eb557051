"""Synthetic topologies for the benchmark: prod's topology with N processing services.

Usage: python bench/gen_topology.py N OUT_DIR   writes OUT_DIR/synthetic-N.yaml (no `extends`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import yaml

from imageflow_gen.loading import load_profile

REPO = Path(__file__).resolve().parent.parent


def synthetic(count: int) -> dict:
    """prod, with `count` processing services spread over the CPU node type; every fourth autoscaled.

    Enough CPU-intensive workers are added for the services' requests to pass the capacity
    check (each service: one pod of resize's 250m CPU / 256Mi, at most 70% of a node's CPU).
    """
    data = load_profile(REPO / "profiles", "prod").data
    data["purpose"] = f"Benchmark: prod with {count} processing services"
    template = next(s for s in data["processing"]["services"] if s["name"] == "resize")
    # Without resize's release and availability: its availability's reason (prod's one CPU
    # node) is not true here, and the largest benchmark profile (bench.SIZES) must stay under
    # the loader's 100,000 values (loading.MAX_VALUES).
    template = {k: v for k, v in template.items() if k not in ("release", "availability")}
    worker = next(n for n in data["cluster"]["worker_nodes"] if n["labels"].get("node-type") == "cpu-intensive")
    for i in range(math.ceil(count * 0.25 / (worker["resources"]["cpu"] * 0.7))):
        data["cluster"]["worker_nodes"].append(
            {**worker, "name": f"k3s-bench-{i:04d}", "ip": f"10.1.{i // 250}.{i % 250 + 1}"}
        )
    services = []
    for i in range(count):
        service = {**template, "name": f"svc-{i:05d}", "image": f"ghcr.io/imageflowcanvas/svc-{i % 50:02d}:1.0.{i % 7}"}
        service.pop("autoscaling", None)
        if i % 4 == 0:
            service["autoscaling"] = {"min_replicas": 1, "max_replicas": 4, "target_cpu_utilization": 70}
        services.append(service)
    replaced = {s["name"] for s in data["processing"]["services"]}
    data["processing"]["services"] = services
    # What named a service that is gone no longer can (the backend's gateway address, say).
    for owner in [*data.get("edge", {}).values(), *data.get("workloads", [])]:
        if isinstance(owner, dict):
            if "env" in owner:
                owner["env"] = [v for v in owner["env"] if v.get("endpoint", {}).get("workload") not in replaced]
            if "uses" in owner:
                owner["uses"] = [u for u in owner["uses"] if u.get("workload") not in replaced]
    return data


def write(count: int, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"synthetic-{count}.yaml"
    path.write_text(yaml.safe_dump(synthetic(count), sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write(int(sys.argv[1]), Path(sys.argv[2])))
