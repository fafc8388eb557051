"""A simulated cluster: the local API server and etcd, with kube-controller-manager and
kube-scheduler of the same release, and kwok acting as the kubelet of fake nodes.

Everything runs on loopback, from the binaries `make tools` builds, and stops when the `with`
block ends (as `LocalApiServer` does: normally, on an exception, on Ctrl-C or SIGTERM). kwok
manages the nodes that carry `KWOK_LABEL`: it marks them Ready, renews their leases, and makes
the pods scheduled there Running and Ready (Jobs' pods Succeeded). Taking the label off a node
stops all of that, as a powered-off node stops: the node lifecycle controller then marks it
unreachable and evicts its pods, as it would in the cluster.

Time is compressed, nothing else: a node is declared lost after NODE_GRACE seconds without a
lease renewal instead of 40 (long enough that a busy machine does not make kwok miss it; when
it does, the run is started again: see simulate/__init__.py), and pods tolerate an unreachable node for EVICTION_SECONDS
instead of 300 (the API server's default toleration seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..validate.apiserver import LocalApiServer

KWOK_LABEL = "kwok.x-k8s.io/node"
POD_CIDR = "10.42.0.1/16"  # K3s' default cluster CIDR
NODE_GRACE = 20  # seconds without a lease renewal before a node is lost (the real default: 40)
LEASE_SECONDS = 4  # kwok renews each node's lease every LEASE_SECONDS / 4
EVICTION_SECONDS = 2  # pods' default toleration of an unreachable node (the real default: 300)
BINARIES = ("etcd", "kube-apiserver", "kube-pki", "kube-controller-manager", "kube-scheduler", "kwok")


@dataclass
class SimulatedCluster(LocalApiServer):
    """`LocalApiServer` plus the controllers, the scheduler and kwok; a context manager."""

    def __post_init__(self) -> None:
        self.apiserver_args = (
            *self.apiserver_args,
            f"--default-not-ready-toleration-seconds={EVICTION_SECONDS}",
            f"--default-unreachable-toleration-seconds={EVICTION_SECONDS}",
        )

    def _started(self, work: Path, pki: Path) -> None:
        kubeconfig = str(self.kubeconfig(work / "kubeconfig"))
        self._spawn(
            "kube-controller-manager",
            [
                self.binaries["kube-controller-manager"],
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=false",
                "--node-monitor-period=1s",
                f"--node-monitor-grace-period={NODE_GRACE}s",
                "--horizontal-pod-autoscaler-sync-period=1s",
                "--pvclaimbinder-sync-period=1s",
            ],
            work,
        )
        self._spawn(
            "kube-scheduler",
            [self.binaries["kube-scheduler"], f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--secure-port=0"],
            work,
        )
        config = work / "kwok.yaml"
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                    "kind": "KwokConfiguration",
                    "options": {
                        "manageAllNodes": False,
                        "manageNodesWithLabelSelector": f"{KWOK_LABEL}=fake",
                        "cidr": POD_CIDR,
                        "nodeLeaseDurationSeconds": LEASE_SECONDS,
                    },
                }
            ),
            encoding="utf-8",
        )
        # Its own HOME: kwok reads ~/.kwok, which must not be the user's.
        self._spawn(
            "kwok",
            [self.binaries["kwok"], f"--kubeconfig={kubeconfig}", f"--config={config}"],
            work,
            env={"HOME": str(work), "PATH": "/usr/bin:/bin"},
        )
        # The controllers are up once the service-account controller has made `default`'s account.
        self._wait("kube-controller-manager", self._controllers_ready)

    def _controllers_ready(self) -> bool:
        status, _, _ = self.client.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        return status == 200
