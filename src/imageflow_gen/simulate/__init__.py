"""`imageflow-gen simulate`: deploy a profile's output to a simulated cluster and report.

The cluster (simulate/cluster.py) is a real control plane over fake nodes shaped like the
profile's (simulate/k3s.py adds what K3s itself provides). The rendered objects are applied
for real, wave by wave in Argo CD's sync-wave order, waiting after each wave as Argo CD
waits for its health; then the whole settles, and every workload, claim, Service, budget and
autoscaler is judged (simulate/observe.py). A drill then takes one node away:

- `fail`: the node stops (kwok stops acting as its kubelet); the node lifecycle controller
  marks it unreachable and evicts its pods; what cannot run elsewhere stays down.
- `drain`: the node is cordoned and every pod on it that is not a DaemonSet's is evicted
  through the Eviction API, which honours PodDisruptionBudgets, retrying as `kubectl drain`
  does until DRAIN_SECONDS; the evictions still refused then are what blocks the drain.

What became unavailable is compared with availability.py's prediction (the generated README's
single points of failure).

A run says nothing about the output when the simulation itself faltered: one of its
components exited, or a node the drill did not touch missed its heartbeat (a machine too busy
for kwok to renew the leases in time; the node lifecycle controller then marks every pod there
not ready, and kwok does not make them ready again). Such a run is started again from the
beginning, up to ATTEMPTS times, and then reported as the simulation's failure, never as the
output's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..availability import NodeImpact, floating, impacts
from ..errors import ImageflowError, Location, Problem
from ..plan import Plan
from ..plan.common import SYNC_WAVE_ANNOTATION, SYNC_WAVES, apply_order
from ..plan.nodes import NodeConfig
from ..validate.apiserver import ApiClient, ApiServerError, LocalApiServer
from .cluster import KWOK_LABEL, NODE_GRACE, SimulatedCluster
from .k3s import ADDONS, addon_objects, create, node_object, provision, storage_class
from .observe import Observation, Snapshot, observe

WAVE_QUIET = 4.0  # seconds without change after which a wave that is not healthy is left as is
QUIET = 8.0  # the same, for the whole deployment and after a drill
TIMEOUT = 180.0  # the most any one wait takes
DRAIN_SECONDS = 15.0
ATTEMPTS = 2  # runs the simulation makes before it reports that it faltered


class SimulationFaltered(ImageflowError):
    """The simulated cluster itself failed (a component exited, a healthy node missed its
    heartbeat): the run says nothing about the output. Exit 2, with what happened."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__([Problem(Location("simulated cluster"), "", message)])


@dataclass(frozen=True)
class Drill:
    action: str  # fail | drain
    node: str


@dataclass
class Outcome:
    """What a simulation saw."""

    nodes: list[str]
    provided: list[str]
    refused: list[str] = field(default_factory=list)  # objects the API server did not accept
    observations: list[Observation] = field(default_factory=list)  # after deploying (before a drill)
    drill: Drill | None = None
    after: list[Observation] = field(default_factory=list)  # after the drill
    blocked: list[tuple[tuple[str, str, str], str]] = field(default_factory=list)  # (workload, why) a drain stopped at
    predicted: NodeImpact | None = None
    floating: list[tuple[str, str, str]] = field(default_factory=list)  # lost with whichever node they run on
    pids: list[int] = field(default_factory=list)  # the processes the simulation started (all stopped)
    failed_creates: list[str] = field(default_factory=list)  # refused creates, even if retried since

    @property
    def failures(self) -> list[Observation]:
        return [o for o in self.observations if not o.ok]

    @property
    def lost(self) -> list[Observation]:
        """Workloads that were ready before the drill and are not after (a DaemonSet's pod on the
        node is the node's own and not counted)."""
        before = {(o.kind, o.namespace, o.name) for o in self.observations if o.ok}
        return [
            o
            for o in self.after
            if not o.ok and o.kind in ("Deployment", "StatefulSet") and (o.kind, o.namespace, o.name) in before
        ]

    @property
    def expected_loss(self) -> set[tuple[str, str, str]]:
        """What the prediction says the drill takes down, given where the floating workloads ran."""
        if self.predicted is None or self.drill is None:
            return set()
        result = {d.key for d in self.predicted.loss}
        for key in self.floating:
            ran = next((o for o in self.observations if (o.kind, o.namespace, o.name) == key), None)
            if ran is not None and self.drill.node in ran.nodes:
                result.add(key)
        return result

    @property
    def unexpected(self) -> tuple[list[str], list[str]]:
        """(what happened that the README does not predict, what it predicts that did not happen):
        workloads unavailable after the drill and, for a drain, the workloads it stopped at;
        both empty when the README is right."""
        lost = {(o.kind, o.namespace, o.name) for o in self.lost}
        expected = self.expected_loss
        surprise, missing = _named(lost - expected), _named(expected - lost)
        if self.drill is not None and self.drill.action == "drain" and self.predicted is not None:
            blocked = {workload for workload, _ in self.blocked}
            predicted = set(self.predicted.blocks)
            surprise += [f"the drain stops at {n}" for n in _named(blocked - predicted)]
            missing += [f"the drain stops at {n}" for n in _named(predicted - blocked)]
        return surprise, missing

    @property
    def ok(self) -> bool:
        if self.refused or self.failures or self.failed_creates:
            return False
        if self.drill is None:
            return True
        surprise, missing = self.unexpected
        return not surprise and not missing


def _named(keys: set[tuple[str, str, str]]) -> list[str]:
    return [f"{kind} {namespace}/{name}" for kind, namespace, name in sorted(keys)]


def wave_of(obj: dict[str, Any]) -> int:
    annotation = obj.get("metadata", {}).get("annotations", {}).get(SYNC_WAVE_ANNOTATION)
    return int(annotation) if annotation is not None else SYNC_WAVES.get(obj["kind"], 0)


def waves(docs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The objects by sync wave, each wave in the kustomization's kind order."""
    order = {kind: i for i, kind in enumerate(apply_order())}
    by_wave: dict[int, list[dict[str, Any]]] = {}
    for obj in docs:
        by_wave.setdefault(wave_of(obj), []).append(obj)
    return [
        sorted(
            objs,
            key=lambda o: (order.get(o["kind"], len(order)), o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        for _, objs in sorted(by_wave.items())
    ]


def apply(client: ApiClient, obj: dict[str, Any]) -> str | None:
    """Server-side apply, for real; the server's refusal, if it refused."""
    try:
        status, body, _ = client.apply(obj)
    except KeyError as error:
        return str(error.args[0])
    return None if status < 300 else str(body.get("message") or f"HTTP {status}")


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


class Simulation:
    """One run against a started SimulatedCluster."""

    def __init__(self, cluster: LocalApiServer, classes: set[str], progress: Any = None) -> None:
        self.cluster = cluster
        self.client = cluster.client
        self.classes = classes
        self.applied: list[tuple[str, str, str]] = []
        self.progress = progress or (lambda _: None)
        self.lost: frozenset[str] = frozenset()

    def settle(self, quiet: float) -> list[Observation]:
        """Wait until everything applied is healthy, or nothing has changed for `quiet` seconds
        and every component has acted on what it was given (at most TIMEOUT)."""
        last, since, deadline = None, time.monotonic(), time.monotonic() + TIMEOUT
        while True:
            provision(self.client, self.classes)
            snap = Snapshot.fetch(self.client)
            found = observe(snap, self.applied, self.lost)
            now = time.monotonic()
            if all(o.ok for o in found) or now >= deadline:
                return found
            signature = snap.signature()
            if signature != last:
                last, since = signature, now
            elif now - since >= quiet and not snap.undecided(self.lost):
                return found
            time.sleep(0.5)

    def setup(self, nodes: list[NodeConfig]) -> list[str]:
        """Nodes, the provided StorageClasses and K3s' add-ons; what was provided, for the report."""
        for node in nodes:
            create(self.client, node_object(node))
        self._wait_nodes_ready([n.node.name for n in nodes])
        provided = []
        for name in sorted(self.classes):
            create(self.client, storage_class(name, default=name == "local-path"))
            provided.append(f"StorageClass {name}, as K3s provides it (its provisioner's behaviour emulated)")
        for obj in addon_objects():
            create(self.client, obj)
            self.applied.append(_key(obj))
        provided.append(f"K3s' add-ons in kube-system: {', '.join(ADDONS)} (with their requests)")
        return provided

    def faltered(self) -> list[str]:
        """What went wrong with the simulation itself so far: components that exited, and the
        nodes other than the drilled one that were ever marked not ready (by the controller's
        NodeNotReady event, which stays, or their condition now)."""
        found = self.cluster.exited()
        snap = Snapshot.fetch(self.client)
        marked = {
            e["involvedObject"].get("name")
            for e in snap.items["Event"]
            if e.get("reason") == "NodeNotReady" and e.get("involvedObject", {}).get("kind") == "Node"
        }
        marked |= {n["metadata"]["name"] for n in snap.items["Node"] if _readiness(n) not in ("True", None)}
        found += [
            f"node {name} missed its heartbeat though the simulation did not stop it (the machine is too busy)"
            for name in sorted(n for n in marked - self.lost if n)
        ]
        return found

    def check(self) -> None:
        """Raise SimulationFaltered when the run so far says nothing about the output."""
        if faults := self.faltered():
            raise SimulationFaltered("faltered: " + "; ".join(faults))

    def _wait_nodes_ready(self, names: list[str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            snap = Snapshot.fetch(self.client)
            ready = {n["metadata"]["name"] for n in snap.items["Node"] if _readiness(n) == "True"}
            if set(names) <= ready:
                return
            time.sleep(0.25)
        raise ApiServerError(f"kwok did not make the nodes ready: {', '.join(sorted(set(names)))}")

    def prerequisite_namespaces(self, docs: list[dict[str, Any]]) -> list[str]:
        """Create the namespaces the objects use that the output does not create (a prerequisite's,
        such as Istio's istio-system); what was provided, for the report."""
        created = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
        used = {d["metadata"].get("namespace") for d in docs} - created - {None, "", "default", "kube-system"}
        for name in sorted(n for n in used if n):
            create(self.client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return [
            f"namespace {name} (a prerequisite's; the output does not create it)"
            for name in sorted(n for n in used if n)
        ]

    def deploy(self, docs: list[dict[str, Any]], at_once: bool = False) -> tuple[list[str], list[Observation]]:
        """Apply `docs` wave by wave (Argo CD), or all at once in their order (`kubectl apply -k`
        of the built overlay); then wait for the whole to settle."""
        refused = []
        for wave in [docs] if at_once else waves(docs):
            self.progress(
                f"applying {len(wave)} objects" if at_once else f"wave {wave_of(wave[0])}: {len(wave)} objects"
            )
            for obj in wave:
                message = apply(self.client, obj)
                if message is not None:
                    kind, namespace, name = _key(obj)
                    refused.append(f"{kind} {namespace + '/' if namespace else ''}{name}: {message}")
                else:
                    self.applied.append(_key(obj))
            if not at_once:
                self.settle(WAVE_QUIET)
        self.progress("settling")
        return refused, self.settle(QUIET)

    def failed_creates(self) -> list[str]:
        """Every create a controller tried and the API server refused, even where a retry later
        succeeded (a RuntimeClass or ServiceAccount applied after the pods that need it)."""
        snap = Snapshot.fetch(self.client)
        found = set()
        for event in snap.items["Event"]:
            if event.get("type") == "Warning" and event.get("reason") == "FailedCreate":
                ref = event.get("involvedObject", {})
                found.add(
                    f"{ref.get('kind')} {ref.get('namespace')}/{ref.get('name')}: {event.get('message', '').strip()}"
                )
        return sorted(found)

    def fail(self, node: str) -> None:
        """Stop the node: kwok stops renewing its lease and acting for its pods."""
        self.client.request(
            "PATCH",
            f"/api/v1/nodes/{node}",
            {"metadata": {"labels": {KWOK_LABEL: None}}},
            "application/merge-patch+json",
        )
        self.lost = frozenset({node})
        deadline = time.monotonic() + NODE_GRACE + 60
        while time.monotonic() < deadline:
            snap = Snapshot.fetch(self.client)
            pods = [
                p
                for p in snap.items["Pod"]
                if p["spec"].get("nodeName") == node
                and (w := snap.workload_of(p)) is not None
                and w["kind"] in ("Deployment", "StatefulSet")
            ]
            if _node_lost(snap, node) and all(p["metadata"].get("deletionTimestamp") for p in pods):
                return
            time.sleep(0.5)

    def drain(self, node: str) -> list[tuple[tuple[str, str, str], str]]:
        """Cordon the node and evict its pods as `kubectl drain` does; the evictions refused until
        DRAIN_SECONDS have passed."""
        self.client.request(
            "PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}}, "application/merge-patch+json"
        )
        snap = Snapshot.fetch(self.client)
        owners: dict[tuple[str, str], tuple[str, str, str]] = {}
        for p in snap.items["Pod"]:
            meta, workload = p["metadata"], snap.workload_of(p)
            if p["spec"].get("nodeName") != node or meta.get("deletionTimestamp"):
                continue
            if p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if workload is not None and workload["kind"] == "DaemonSet":
                continue  # as `kubectl drain --ignore-daemonsets`
            owners[(meta["namespace"], meta["name"])] = (
                _key(workload) if workload is not None else ("Pod", meta["namespace"], meta["name"])
            )
        pending = set(owners)
        refused: dict[tuple[str, str], str] = {}
        deadline = time.monotonic() + DRAIN_SECONDS
        while pending and time.monotonic() < deadline:
            for ns, name in sorted(pending):
                eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
                status, body, _ = self.client.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", eviction)
                if status < 300 or status == 404:
                    pending.discard((ns, name))
                    refused.pop((ns, name), None)
                else:
                    refused[(ns, name)] = str(body.get("message") or f"HTTP {status}")
            provision(self.client, self.classes)
            time.sleep(1)
        return [
            (owners[(ns, name)], f"pod {ns}/{name}: {refused.get((ns, name), 'not evicted')}")
            for ns, name in sorted(pending)
        ]


def _node_lost(snap: Snapshot, node: str) -> bool:
    obj = next((n for n in snap.items["Node"] if n["metadata"]["name"] == node), None)
    if obj is None:
        return True
    readiness = _readiness(obj)
    return readiness is not None and readiness != "True"


def _readiness(node: dict[str, Any]) -> str | None:
    """The status of a node's Ready condition (True, False, Unknown), None before it has one."""
    return next((c["status"] for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None)


def run(
    binaries: dict[str, str],
    crd_files: list[Path],
    plan: Plan,
    docs: list[dict[str, Any]],
    drill: Drill | None = None,
    progress: Any = None,
    at_once: bool = False,
) -> Outcome:
    """Start a simulated cluster, deploy `docs` (the plan's built overlay) on the plan's nodes
    (`at_once`: as `kubectl apply` does, not wave by wave), run the drill and compare it with
    availability.py's prediction; stop everything."""
    say = progress or (lambda _: None)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _attempt(binaries, crd_files, plan, docs, drill, say, at_once)
        except SimulationFaltered as fault:
            message = fault.problems[0].message
            if attempt == ATTEMPTS:
                raise SimulationFaltered(
                    f"{message}\n(in all {ATTEMPTS} runs; a run that falters says nothing about the output: "
                    "run it again on a quieter machine)"
                ) from None
            say(f"the simulated cluster {message.splitlines()[0]}; starting again")
    raise AssertionError("unreachable")


def _attempt(
    binaries: dict[str, str],
    crd_files: list[Path],
    plan: Plan,
    docs: list[dict[str, Any]],
    drill: Drill | None,
    say: Any,
    at_once: bool,
) -> Outcome:
    say("starting the simulated cluster")
    with SimulatedCluster(binaries, crd_files) as cluster:
        sim = Simulation(cluster, set(plan.topology.storage.cluster_classes), say)
        provided = sim.setup(plan.nodes) + sim.prerequisite_namespaces(docs)
        refused, observations = sim.deploy(docs, at_once)
        sim.check()
        outcome = Outcome([n.node.name for n in plan.nodes], provided, refused, observations, drill)
        outcome.failed_creates = sim.failed_creates()
        outcome.pids = list(cluster.pids)
        if drill is not None:
            outcome.predicted = next(i for i in impacts(plan) if i.node == drill.node)
            outcome.floating = [d.key for d in floating(plan)]
            say(f"{'stopping' if drill.action == 'fail' else 'draining'} {drill.node}")
            if drill.action == "fail":
                sim.fail(drill.node)
            else:
                outcome.blocked = sim.drain(drill.node)
            outcome.after = sim.settle(QUIET)
            sim.check()
        return outcome
