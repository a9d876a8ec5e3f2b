"""Cluster health for the control loop: a small state machine over ``/readyz`` probe results.

One failed probe is not a failed cluster: a cluster is declared *failed* only after ``failure_threshold``
consecutive failures, and *healthy* again only after ``success_threshold`` consecutive successes, so a
flapping API server does not move replicas back and forth. Pure: probes come in as booleans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

State = Literal["healthy", "suspect", "failed", "recovering"]


@dataclass(frozen=True)
class HealthPolicy:
    """Defaults as data; ``sky endpoint reconcile`` exposes each as a flag."""

    timeout_seconds: float = 2.0
    """/readyz answers in milliseconds on a live API server; 2 s is generous yet keeps a dead one cheap."""
    failure_threshold: int = 2
    """Two consecutive failures: one slow or lost probe never moves replicas, two do (docs/automation.md)."""
    success_threshold: int = 2
    retry_seconds: float = 1.0
    """Pause between probes of a cluster whose verdict is still open (suspect / recovering). With the
    defaults a dead cluster is declared failed at most timeout + retry + timeout = 5 s after its first
    failed probe."""


@dataclass(frozen=True)
class ClusterHealth:
    cluster: str
    state: State = "healthy"
    failures: int = 0
    """Consecutive failed probes."""
    successes: int = 0
    """Consecutive successful probes."""
    last_error: str = ""

    @property
    def usable(self) -> bool:
        """May placement put replicas here? A suspect cluster still is (not yet failed); a recovering one is
        not yet (not yet proven healthy)."""
        return self.state in ("healthy", "suspect")

    @property
    def settled(self) -> bool:
        """No verdict pending: further probes right now would not change the decision."""
        return self.state in ("healthy", "failed")

    def to_dict(self) -> dict:
        return {
            "cluster": self.cluster,
            "state": self.state,
            "failures": self.failures,
            "successes": self.successes,
            "last_error": self.last_error,
        }


def observe(health: ClusterHealth, ok: bool, policy: HealthPolicy, error: str = "") -> ClusterHealth:
    """Fold one probe result into the state. The only place transitions happen."""
    if ok:
        successes = health.successes + 1
        if health.state in ("failed", "recovering"):
            state: State = "healthy" if successes >= policy.success_threshold else "recovering"
        else:
            state = "healthy"
        return replace(health, state=state, failures=0, successes=successes, last_error="")
    failures = health.failures + 1
    if health.state == "failed" or failures >= policy.failure_threshold:
        state = "failed"
    elif health.state == "recovering":
        state = "failed"  # a recovering cluster that fails again has not recovered
    else:
        state = "suspect"
    return replace(health, state=state, failures=failures, successes=0, last_error=error)


def transition(before: ClusterHealth, after: ClusterHealth) -> str | None:
    """'failed' or 'recovered' when the usable/unusable verdict flipped, for the decision log."""
    if before.state != "failed" and after.state == "failed":
        return "failed"
    if before.state in ("failed", "recovering") and after.state == "healthy":
        return "recovered"
    return None
