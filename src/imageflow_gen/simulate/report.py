"""The simulation's report as text: every object's state, and the drill's impact."""

from __future__ import annotations

from . import Outcome
from .observe import Observation

_TITLES = {
    "Deployment": "Workloads",
    "PersistentVolumeClaim": "Volume claims",
    "Service": "Services (endpoints)",
    "PodDisruptionBudget": "Disruption budgets",
    "HorizontalPodAutoscaler": "Autoscalers",
}
_SECTION = {"StatefulSet": "Deployment", "DaemonSet": "Deployment", "Job": "Deployment"}


def _lines(observations: list[Observation]) -> list[str]:
    lines: list[str] = []
    section = None
    width = max((len(o.label) for o in observations), default=0)
    for o in observations:
        title = _TITLES.get(_SECTION.get(o.kind, o.kind), o.kind)
        if title != section:
            section = title
            lines += ["", f"{title}:"]
        mark = "ok  " if o.ok else "FAIL"
        lines.append(f"  {mark} {o.label:<{width}}  {o.summary}")
        lines += [f"         {reason}" for reason in o.reasons]
    return lines


def text(outcome: Outcome, profile: str) -> str:
    lines = [f"simulated cluster for profile {profile}: nodes {', '.join(outcome.nodes)}"]
    lines += [f"provided: {p}" for p in outcome.provided]
    if outcome.refused:
        lines += ["", "Refused by the API server:"] + [f"  FAIL {r}" for r in outcome.refused]
    lines += _lines(outcome.observations)
    if outcome.failed_creates:
        lines += ["", "Creates the API server refused (a controller retried them):"]
        lines += [f"  FAIL {c}" for c in outcome.failed_creates]
    failures = len(outcome.failures) + len(outcome.refused) + len(outcome.failed_creates)
    lines += [
        "",
        "deployed: all ready" if not failures else f"deployed: {failures} problem{'s' if failures > 1 else ''}",
    ]
    drill = outcome.drill
    if drill is not None:
        verb = "losing" if drill.action == "fail" else "draining"
        lines += ["", f"Drill: {verb} {drill.node}"]
        if outcome.predicted is not None and outcome.predicted.server and drill.action == "fail":
            lines.append(f"  {drill.node} is {outcome.predicted.server} (the simulation's control plane runs apart)")
        if outcome.blocked:
            lines.append("  the drain is blocked; evictions still refused after the drain timeout:")
            lines += [f"    {why}" for _, why in outcome.blocked]
        lost = outcome.lost
        lines.append("  unavailable after it:" if lost else "  every workload stays available")
        expected = {d.key: d.why for d in outcome.predicted.loss} if outcome.predicted is not None else {}
        for o in lost:
            lines.append(f"    {o.label}: {o.summary}")
            why = expected.get((o.kind, o.namespace, o.name))
            if why is None and (o.kind, o.namespace, o.name) in outcome.floating:
                why = f"it ran on {drill.node}, " + (
                    "and a StatefulSet's pod is not replaced while its node is lost"
                    if drill.action == "fail"
                    else "where its volume stays"
                )
            if why:
                lines.append(f"      cannot move: {why}")
            lines += [f"      {reason}" for reason in o.reasons]
        surprise, missing = outcome.unexpected
        if surprise:
            lines.append("  not in the README's single points of failure: " + ", ".join(surprise))
        if missing:
            lines.append("  in the README's single points of failure, yet still available: " + ", ".join(missing))
        if not surprise and not missing:
            lines.append("  as the README's single points of failure say")
    lines += ["", "result: ok" if outcome.ok else "result: FAILED"]
    return "\n".join(lines) + "\n"
