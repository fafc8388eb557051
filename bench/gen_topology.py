"""Synthetic topologies for the benchmark: prod's topology with N processing services.

Usage: python bench/gen_topology.py N OUT_DIR   writes OUT_DIR/synthetic-N.yaml (no `extends`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from imageflow_gen.loading import load_profile

REPO = Path(__file__).resolve().parent.parent


def synthetic(count: int) -> dict:
    """prod, with `count` processing services spread over the CPU node type; every fourth autoscaled."""
    data = load_profile(REPO / "profiles", "prod").data
    data["purpose"] = f"Benchmark: prod with {count} processing services"
    template = next(s for s in data["processing"]["services"] if s["name"] == "resize")
    services = []
    for i in range(count):
        service = {**template, "name": f"svc-{i:05d}", "image": f"ghcr.io/imageflowcanvas/svc-{i % 50:02d}:1.0.{i % 7}"}
        service.pop("autoscaling", None)
        if i % 4 == 0:
            service["autoscaling"] = {"min_replicas": 1, "max_replicas": 4, "target_cpu_utilization": 70}
        services.append(service)
    data["processing"]["services"] = services
    return data


def write(count: int, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"synthetic-{count}.yaml"
    path.write_text(yaml.safe_dump(synthetic(count), sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write(int(sys.argv[1]), Path(sys.argv[2])))
