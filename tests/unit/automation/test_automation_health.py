"""The health state machine, table-tested: thresholds stop flapping, verdicts flip only when earned."""

from __future__ import annotations

import pytest

from skyendpoints_iac.automation.health import ClusterHealth, HealthPolicy, observe, transition

POLICY = HealthPolicy(failure_threshold=3, success_threshold=2)


def run(probes: str, start: str = "healthy") -> list[str]:
    """Feed a probe string ('1' ok, '0' failed) and return the state after each probe."""
    h = ClusterHealth("c", state=start)  # type: ignore[arg-type]
    states = []
    for p in probes:
        h = observe(h, p == "1", POLICY, "" if p == "1" else "dial tcp: connection refused")
        states.append(h.state)
    return states


@pytest.mark.parametrize(
    "probes, start, expected",
    [
        ("111", "healthy", ["healthy"] * 3),
        ("0", "healthy", ["suspect"]),
        ("001", "healthy", ["suspect", "suspect", "healthy"]),  # two blips then OK: never failed
        ("000", "healthy", ["suspect", "suspect", "failed"]),  # third consecutive failure: failed
        ("0101010", "healthy", ["suspect", "healthy"] * 3 + ["suspect"]),  # flapping never fails
        ("0001", "healthy", ["suspect", "suspect", "failed", "recovering"]),  # one success is not recovery
        ("00011", "healthy", ["suspect", "suspect", "failed", "recovering", "healthy"]),
        ("00010", "healthy", ["suspect", "suspect", "failed", "recovering", "failed"]),  # relapse
        ("10", "failed", ["recovering", "failed"]),
    ],
)
def test_state_sequences(probes, start, expected):
    assert run(probes, start) == expected


def test_usable_and_settled():
    assert ClusterHealth("c", "suspect").usable and not ClusterHealth("c", "suspect").settled
    assert not ClusterHealth("c", "recovering").usable and not ClusterHealth("c", "recovering").settled
    assert not ClusterHealth("c", "failed").usable and ClusterHealth("c", "failed").settled


def test_transition_reports_flips_only():
    assert transition(ClusterHealth("c", "suspect"), ClusterHealth("c", "failed")) == "failed"
    assert transition(ClusterHealth("c", "recovering"), ClusterHealth("c", "healthy")) == "recovered"
    assert transition(ClusterHealth("c", "healthy"), ClusterHealth("c", "suspect")) is None
    assert transition(ClusterHealth("c", "failed"), ClusterHealth("c", "failed")) is None


def test_last_error_kept_until_success():
    h = observe(ClusterHealth("c"), False, POLICY, "timeout")
    assert h.last_error == "timeout" and h.failures == 1
    h = observe(h, True, POLICY)
    assert h.last_error == "" and h.failures == 0 and h.successes == 1
