"""The referenced Secrets, supplied as ExternalSecrets or SealedSecrets (or out of band: nothing)."""

from __future__ import annotations

from typing import Any

from ..model import Topology
from ..model.checks import secret_refs
from .common import Spec, common_labels, spec

TLS_TYPE = "kubernetes.io/tls"


def specs(topo: Topology) -> list[Spec]:
    secrets = topo.secrets
    result = []
    for namespace, purpose, ref, path in secret_refs(topo):
        secret_type = TLS_TYPE if purpose == "tls" else "Opaque"
        keys = sorted(ref.keys.values())
        if secrets.provider == "external-secrets" and secrets.external_secrets is not None:
            store = secrets.external_secrets
            result.append(
                spec(
                    "ExternalSecret",
                    "externalsecret",
                    path,
                    name=ref.name,
                    namespace=namespace,
                    labels=common_labels(),
                    store={"kind": store.store_kind, "name": store.store_name},
                    refresh_interval=store.refresh_interval,
                    secret_type=secret_type,
                    data=[_remote(store.remote_key_prefix + ref.name, key) for key in keys],
                )
            )
        elif secrets.provider == "sealed-secrets":
            result.append(
                spec(
                    "SealedSecret",
                    "sealedsecret",
                    ("secrets", "sealed"),
                    name=ref.name,
                    namespace=namespace,
                    labels=common_labels(),
                    secret_type=secret_type,
                    encrypted={key: secrets.sealed[ref.name][key] for key in keys},
                )
            )
    return result


def _remote(remote_key: str, key: str) -> dict[str, Any]:
    return {"secretKey": key, "remoteRef": {"key": remote_key, "property": key}}
