"""Facts several stages share, kept below all of them so that no stage imports another's
module for them: what a secret value looks like (the model refuses one in a profile, the
output gates in a rendered file), the annotation naming an object's source, and what makes
two Kubernetes objects the same object."""

from __future__ import annotations

import re
from typing import Any

# Key material and cloud access keys, wherever they appear.
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
AWS_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")

# Use above this share of a capacity (a node's CPU, a VM's, a MinIO drive) is worth a warning.
WARN_PERCENT = 80

# The profile file and key an object comes from: `prod.yaml#storage.minio`.
SOURCE_ANNOTATION = "imageflow.io/source"


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion group, kind, namespace, name): what makes an object the same object."""
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj.get("metadata", {})
    return group, obj["kind"], meta.get("namespace", ""), meta["name"]
