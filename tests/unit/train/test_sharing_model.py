"""Invariants of the scheduling model behind ``bench/sharing.py`` (its figures are printed, not asserted;
these tests only check that the model obeys the semantics it claims)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("bench_sharing", ROOT / "bench" / "sharing.py")
sharing = importlib.util.module_from_spec(_spec)
sys.modules["bench_sharing"] = sharing  # dataclasses look their module up by name
_spec.loader.exec_module(sharing)

CFG = replace(sharing.Config(), hours=12.0, seed=11)


def run(setup, cfg=CFG, targets=None):
    targets = targets if targets is not None else sharing.replica_targets(cfg, sharing.request_trace(cfg))
    return targets, sharing.simulate(cfg, targets, setup)


def test_capacity_is_never_exceeded_and_static_stays_in_its_half():
    for setup in ("static", "shared"):
        _, tot = run(setup)
        total = [i + t for i, t in zip(tot.series["inference"], tot.series["training"], strict=True)]
        assert max(total) <= CFG.nodes * CFG.gpus_per_node
        if setup == "static":
            assert max(tot.series["inference"]) <= CFG.gpus_per_node
            assert max(tot.series["training"]) <= CFG.gpus_per_node and tot.preemptions == 0


def test_shared_inference_waits_only_for_the_victims_grace_period():
    _targets, tot = run("shared")
    assert tot.preemptions > 0
    # Whenever demand fits the cluster, a replica waits at most one grace period (plus a step of slack).
    assert tot.max_wait_s <= CFG.grace_s + CFG.step_s
    served = [min(w, CFG.nodes * CFG.gpus_per_node) for w in tot.series["wanted"]]
    behind = sum(1 for s, i in zip(served, tot.series["inference"], strict=True) if i < s)
    assert behind * CFG.step_s <= tot.preemptions * (CFG.grace_s + CFG.step_s)


def test_training_fills_the_night_and_yields_by_day():
    cfg = replace(CFG, training_gpus=2)
    night = [1] * 360  # one hour at one replica, then a step to eight replicas
    day = [8] * 360
    _, tot = run("shared", cfg, night + day)
    assert tot.series["training"][359] == 14 and tot.series["inference"][359] == 2
    assert tot.series["inference"][-1] == 16 and tot.series["training"][-1] == 0
    assert tot.preemptions == 7  # exactly the 2-GPU training pods in the way, no more


def test_victims_are_minimal_and_per_node():
    Pod = sharing.Pod
    pods = [
        Pod("training", 4, node=0, started=1.0),
        Pod("training", 2, node=0, started=5.0),
        Pod("inference", 2, node=0, started=0.0),
        Pod("training", 8, node=1, started=2.0),
    ]
    node, victims = sharing._choose_victims(pods, [0, 1], need=2, per_node=8)
    assert node == 0 and victims == [pods[1]]  # one 2-GPU pod on node 0 beats the 8-GPU pod on node 1
    node, victims = sharing._choose_victims(pods, [0, 1], need=8, per_node=8)
    assert node == 1 and victims == [pods[3]]  # node 0 cannot make room: its inference pod is not a victim
