"""Where the Secrets the output references come from: never a value in a profile or the output."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .types import Ciphertext, Duration, KeyPrefix, SecretKey, Sorted, Strict, SubdomainName, Text


class ExternalSecrets(Strict):
    """The External Secrets Operator creates each Secret from a secret store."""

    store_kind: Literal["ClusterSecretStore", "SecretStore"] = "ClusterSecretStore"
    """Kind of the store the ExternalSecrets read from."""
    store_name: SubdomainName
    """Name of that store."""
    remote_key_prefix: KeyPrefix = "imageflow/"
    """Remote key of a Secret: this prefix and the Secret's name; each key is a property of it."""
    refresh_interval: Duration = "1h"
    """How often the operator refreshes the Secret from the store."""


class WorkloadSecret(Strict):
    """A Secret workloads read keys of (`workloads[].env[].secret`): created by the secret
    provider in each namespace that uses it, a file per key on a VM; never a value here."""

    name: SubdomainName
    """Secret name."""
    keys: list[SecretKey] = Field(min_length=1)
    """The keys it holds."""
    description: Text = ""
    """What it holds, for the generated docs."""


class Secrets(Strict):
    """How the referenced Secrets (MinIO credentials, the gateway's TLS) reach the cluster."""

    provider: Literal["external-secrets", "sealed-secrets", "out-of-band"]
    """external-secrets: ExternalSecret objects; sealed-secrets: SealedSecret objects with the values
    encrypted by kubeseal; out-of-band: nothing is generated and the Secrets must exist (see the docs)."""
    external_secrets: ExternalSecrets | None = None
    """Settings for provider external-secrets."""
    sealed: Annotated[dict[SubdomainName, Annotated[dict[str, Ciphertext], Sorted]], Sorted] = Field(
        default_factory=dict
    )
    """For provider sealed-secrets: Secret name -> key -> value encrypted with kubeseal (safe to commit)."""
    workload_secrets: list[WorkloadSecret] = Field(default_factory=list)
    """Secrets the workloads read (database passwords, application keys): names and keys only."""

    @property
    def ciphertexts(self) -> frozenset[str]:
        return frozenset(v for keys in self.sealed.values() for v in keys.values())
