"""GPU sharing benchmark: inference by day, training by night, on one 16-GPU cluster.

    .venv/bin/python bench/sharing.py                      # simulation (no cluster needed)
    .venv/bin/python bench/sharing.py --hours 24 --seed 3  # another trace
    .venv/bin/python bench/sharing.py --fleet-kubeconfig ~/.skyendpoints/localfleet/a.kubeconfig --speedup 600

A bursty request-rate trace (a day/night curve plus random bursts) drives an endpoint's replica target.
The same trace is replayed against two set-ups of the same 2 x 8-GPU cluster:

- **static 8/8**: inference owns one node, training the other; neither ever uses the other's GPUs;
- **shared pool**: training fills every free GPU at low priority; inference (high priority,
  ``PreemptLowerPriority``) takes GPUs back by preemption when it scales up.

Reported per set-up: GPU-hours used by inference and by training (allocated, and useful: minus restarts and
the work lost since the last checkpoint of each preempted pod), idle GPU-hours, preemptions, and the time
inference waited for GPUs (replica-hours a wanted replica was not scheduled, and the longest single wait).

Two modes, and the output always says which one ran:

- **simulation** (default): a discrete-time model of kube-scheduler semantics: priority order, per-node
  preemption with a minimal victim set (no cross-node preemption), the victims' termination grace period
  before the preemptor binds, training never preempting, replacement pods re-queued. Model load and
  checkpoint-resume times are parameters, equal in both set-ups.
- **live** (``--fleet-kubeconfig``): the real scheduler on a local fleet cluster with kwok GPU nodes. An
  inference Deployment (priority class skyendpoints-inference) is scaled to the trace's replica targets
  and a training Deployment (skyendpoints-training) keeps a backlog of pods; the script reads where pods
  run at every step. Time is compressed by ``--speedup``. kwok runs no processes, so useful training work
  is not measurable there: live mode reports allocated GPU-hours only.

Figures are printed and plotted (``--plot``, default docs/training-sharing.png), never asserted.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Config:
    hours: float = 48.0
    step_s: int = 10
    nodes: int = 2
    gpus_per_node: int = 8
    inference_gpus: int = 2
    """GPUs per inference replica."""
    training_gpus: int = 4
    """GPUs per training pod (the training backlog never runs dry)."""
    rps_per_replica: float = 4.0
    min_replicas: int = 1
    max_replicas: int = 8
    downscale_delay_s: int = 300
    """KEDA/HPA-style stabilisation: scale down to the highest target of this window."""
    grace_s: int = 30
    """Training pods' terminationGracePeriodSeconds: a preemptor waits for its victims this long."""
    inference_start_s: int = 120
    """Model load after scheduling (equal in both set-ups; not counted as waiting)."""
    training_restart_s: int = 120
    """A (re)started training pod loads its checkpoint before doing useful work."""
    checkpoint_every_s: int = 900
    seed: int = 7


# --------------------------------------------------------------------------- trace


def request_trace(cfg: Config) -> list[float]:
    """Requests/s per step: quiet nights, a daytime hump, random bursts decaying over ~20 minutes."""
    rng = random.Random(cfg.seed)
    steps = int(cfg.hours * 3600 / cfg.step_s)
    bursts: list[tuple[int, float]] = []
    t = 0.0
    while t < cfg.hours * 3600:
        t += rng.expovariate(1 / (3 * 3600))  # one burst every ~3 hours
        bursts.append((int(t / cfg.step_s), rng.uniform(6.0, 16.0)))
    rates = []
    for i in range(steps):
        hour = (i * cfg.step_s / 3600) % 24
        day = max(0.0, math.sin(math.pi * (hour - 7) / 14)) ** 1.5 if 7 <= hour <= 21 else 0.0
        rate = 2.0 + 20.0 * day
        for start, size in bursts:
            if i >= start:
                rate += size * math.exp(-(i - start) * cfg.step_s / 1200)
        rates.append(max(0.0, rate * rng.gauss(1.0, 0.05)))
    return rates


def replica_targets(cfg: Config, rates: list[float]) -> list[int]:
    """What the autoscaler asks for: up at once, down only to the highest target of the last window."""
    raw = [min(cfg.max_replicas, max(cfg.min_replicas, math.ceil(r / cfg.rps_per_replica))) for r in rates]
    window = max(1, cfg.downscale_delay_s // cfg.step_s)
    return [max(raw[max(0, i - window + 1) : i + 1]) for i in range(len(raw))]


# --------------------------------------------------------------------------- simulation


@dataclass
class Pod:
    kind: str  # "inference" | "training"
    gpus: int
    node: int | None = None
    started: float = 0.0
    created: float = 0.0
    terminating_until: float | None = None
    nominated: int | None = None
    """Inference: the node whose victims are terminating for it (``status.nominatedNodeName``)."""
    last_checkpoint: float = 0.0
    """Training: time of the last completed checkpoint (work after it is lost on preemption)."""


@dataclass
class Totals:
    steps: int = 0
    inference_gpu_h: float = 0.0
    training_gpu_h: float = 0.0
    training_useful_gpu_h: float = 0.0
    training_lost_gpu_h: float = 0.0
    idle_gpu_h: float = 0.0
    wait_replica_h: float = 0.0
    max_wait_s: float = 0.0
    preemptions: int = 0
    series: dict[str, list[float]] = field(default_factory=lambda: {"inference": [], "training": [], "wanted": []})


def simulate(cfg: Config, targets: list[int], setup: str) -> Totals:
    """Replay ``targets`` on the cluster. ``setup`` is ``static`` (node 0 inference, others training) or ``shared``."""
    dt = cfg.step_s
    nodes = list(range(cfg.nodes))
    inf_nodes = [0] if setup == "static" else nodes
    train_nodes = nodes[1:] if setup == "static" else nodes
    pods: list[Pod] = []
    tot = Totals()

    def free(node: int) -> int:
        return cfg.gpus_per_node - sum(p.gpus for p in pods if p.node == node)

    def victims_pending(node: int, now: float) -> bool:
        return any(p.node == node and p.terminating_until is not None and p.terminating_until > now for p in pods)

    for step, want in enumerate(targets):
        now = step * dt
        for p in [p for p in pods if p.terminating_until is not None and p.terminating_until <= now]:
            pods.remove(p)  # victims gone after their grace period; the Job re-queues a replacement
        # Scale down: unscheduled replicas first, then the newest running ones.
        inference = [p for p in pods if p.kind == "inference"]
        for p in sorted(inference, key=lambda p: (p.node is not None, -p.created))[: max(0, len(inference) - want)]:
            pods.remove(p)
        pods += [Pod("inference", cfg.inference_gpus, created=now) for _ in range(want - len(inference))]
        # Pending inference, oldest first: bind where it fits, else wait for (or start) a preemption.
        for p in sorted((p for p in pods if p.kind == "inference" and p.node is None), key=lambda p: p.created):
            fits = [n for n in inf_nodes if free(n) >= p.gpus]
            if fits:
                p.node = p.nominated if p.nominated in fits else min(fits, key=lambda n: (free(n), n))
                p.started, p.nominated = now, None
            elif setup == "shared" and not (p.nominated is not None and victims_pending(p.nominated, now)):
                node, victims = _choose_victims(pods, inf_nodes, p.gpus, cfg.gpus_per_node)
                p.nominated = node
                for v in victims:
                    v.terminating_until = now + cfg.grace_s
                    tot.preemptions += 1
                    # Conservative: the program does not save on SIGTERM, so work since its last checkpoint is lost.
                    tot.training_lost_gpu_h += (
                        max(0.0, now - max(v.last_checkpoint, v.started + cfg.training_restart_s)) / 3600 * v.gpus
                    )
        # The training backlog fills free GPUs on its nodes, minus what nominated preemptors wait for; never preempts.
        for n in train_nodes:
            promised = sum(p.gpus for p in pods if p.kind == "inference" and p.node is None and p.nominated == n)
            while free(n) - promised >= cfg.training_gpus:
                pods.append(Pod("training", cfg.training_gpus, node=n, started=now, created=now, last_checkpoint=now))
        # Checkpoints, then accounting for this step.
        for p in pods:
            if p.kind == "training" and p.terminating_until is None:
                work = now - p.started - cfg.training_restart_s
                if work > 0 and work % cfg.checkpoint_every_s < dt:
                    p.last_checkpoint = now
        inf_gpus = sum(p.gpus for p in pods if p.kind == "inference" and p.node is not None)
        train_gpus = sum(p.gpus for p in pods if p.kind == "training")
        useful = sum(
            p.gpus
            for p in pods
            if p.kind == "training" and p.terminating_until is None and now - p.started >= cfg.training_restart_s
        )
        waiting = [p for p in pods if p.kind == "inference" and p.node is None]
        h = dt / 3600
        tot.steps += 1
        tot.inference_gpu_h += inf_gpus * h
        tot.training_gpu_h += train_gpus * h
        tot.training_useful_gpu_h += useful * h
        tot.idle_gpu_h += (cfg.nodes * cfg.gpus_per_node - inf_gpus - train_gpus) * h
        tot.wait_replica_h += len(waiting) * h
        for p in waiting:
            tot.max_wait_s = max(tot.max_wait_s, now + dt - p.created)
        tot.series["inference"].append(inf_gpus)
        tot.series["training"].append(train_gpus)
        tot.series["wanted"].append(want * cfg.inference_gpus)
    tot.training_useful_gpu_h -= tot.training_lost_gpu_h
    return tot


def _choose_victims(pods: list[Pod], nodes: list[int], need: int, per_node: int) -> tuple[int | None, list[Pod]]:
    """kube-scheduler style, per node (no cross-node preemption): a node qualifies if evicting all its
    lower-priority pods makes room; then as many as possible are reprieved (a minimal victim set). Among
    qualifying nodes: fewest victims, then the most recently started ones (least work lost)."""
    best: tuple[tuple, int, list[Pod]] | None = None
    for n in nodes:
        on_node = [p for p in pods if p.node == n]
        room = per_node - sum(p.gpus for p in on_node)
        lower = [p for p in on_node if p.kind == "training" and p.terminating_until is None]
        if room + sum(p.gpus for p in lower) < need:
            continue
        chosen = []
        for v in sorted(lower, key=lambda p: -p.started):
            if room >= need:
                break
            chosen.append(v)
            room += v.gpus
        key = (len(chosen), -min((v.started for v in chosen), default=0.0), n)
        if best is None or key < best[0]:
            best = (key, n, chosen)
    return (best[1], best[2]) if best else (None, [])


# --------------------------------------------------------------------------- live (local fleet)


def live(
    cfg: Config,
    targets: list[int],
    setup: str,
    kubeconfig: str,
    context: str | None,
    speedup: float,
    accelerator_label: str,
) -> Totals:
    """Drive real replica targets on a local-fleet cluster (kwok GPU nodes, real scheduler)."""
    from kubernetes import client as k8s
    from kubernetes import config as kcfg

    from skyendpoints_iac.blueprint import names

    api_client = kcfg.new_client_from_config(config_file=kubeconfig, context=context)
    core, apps, sched = k8s.CoreV1Api(api_client), k8s.AppsV1Api(api_client), k8s.SchedulingV1Api(api_client)
    ns = "sky-bench-sharing"
    gpu_nodes = sorted(
        n.metadata.name
        for n in core.list_node().items
        if int((n.status.allocatable or {}).get("nvidia.com/gpu", "0")) > 0
    )
    if len(gpu_nodes) < 2:
        raise SystemExit(f"live mode needs >= 2 GPU nodes, found {gpu_nodes}")
    created_classes = _ensure_priority_classes(sched, names)
    core.create_namespace({"metadata": {"name": ns}})
    try:
        pin = {"inference": gpu_nodes[:1], "training": gpu_nodes[1:]} if setup == "static" else {}
        backlog = (len(gpu_nodes) * cfg.gpus_per_node) // cfg.training_gpus
        apps.create_namespaced_deployment(
            ns,
            _deployment(
                "bench-training",
                "training",
                names.PRIORITY_CLASS_TRAINING,
                cfg.training_gpus,
                backlog,
                pin.get("training"),
                accelerator_label,
            ),
        )
        apps.create_namespaced_deployment(
            ns,
            _deployment(
                "bench-inference",
                "inference",
                names.PRIORITY_CLASS_INFERENCE,
                cfg.inference_gpus,
                targets[0],
                pin.get("inference"),
                accelerator_label,
            ),
        )
        tot = Totals()
        pending_since: dict[str, float] = {}
        for step, want in enumerate(targets):
            t0 = time.monotonic()
            now = step * cfg.step_s
            apps.patch_namespaced_deployment_scale("bench-inference", ns, {"spec": {"replicas": want}})
            pods = core.list_namespaced_pod(ns).items
            inf = train = 0
            waiting = 0
            for p in pods:
                kind = (p.metadata.labels or {}).get(names.LABEL_WORKLOAD_KIND)
                bound = p.spec.node_name is not None and p.metadata.deletion_timestamp is None
                if kind == "inference":
                    if bound:
                        inf += cfg.inference_gpus
                        pending_since.pop(p.metadata.name, None)
                    else:
                        waiting += 1
                        pending_since.setdefault(p.metadata.name, now)
                        tot.max_wait_s = max(tot.max_wait_s, now + cfg.step_s - pending_since[p.metadata.name])
                elif kind == "training" and p.spec.node_name is not None:
                    train += cfg.training_gpus  # terminating victims still hold their GPUs

            h = cfg.step_s / 3600
            tot.steps += 1
            tot.inference_gpu_h += inf * h
            tot.training_gpu_h += train * h
            tot.idle_gpu_h += (len(gpu_nodes) * cfg.gpus_per_node - inf - train) * h
            tot.wait_replica_h += waiting * h
            tot.series["inference"].append(inf)
            tot.series["training"].append(train)
            tot.series["wanted"].append(want * cfg.inference_gpus)
            time.sleep(max(0.0, cfg.step_s / speedup - (time.monotonic() - t0)))
        # Victims can vanish between two reads; the scheduler's "Preempted" events count every one.
        tot.preemptions = sum(
            e.count or 1 for e in core.list_namespaced_event(ns, field_selector="reason=Preempted").items
        )
        tot.training_useful_gpu_h = float("nan")  # no process runs under kwok: useful and lost work are unknown
        tot.training_lost_gpu_h = float("nan")
        return tot
    finally:
        core.delete_namespace(ns)
        _wait_gone(core, ns)  # the next set-up reuses the name
        for name in created_classes:
            sched.delete_priority_class(name)


def _wait_gone(core, ns: str, timeout: float = 180.0) -> None:
    from kubernetes.client import ApiException

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            core.read_namespace(ns)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(1.0)
    raise SystemExit(f"namespace {ns} was not deleted within {timeout:.0f} s (is kube-controller-manager running?)")


def _ensure_priority_classes(sched, names) -> list[str]:
    """The platform normally installs these; a bare local-fleet cluster may not have them yet."""
    from kubernetes.client import ApiException

    made = []
    for name, value, policy in (
        (names.PRIORITY_CLASS_INFERENCE, names.PRIORITY_VALUE_INFERENCE, "PreemptLowerPriority"),
        (names.PRIORITY_CLASS_TRAINING, names.PRIORITY_VALUE_TRAINING, "Never"),
    ):
        try:
            sched.read_priority_class(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            sched.create_priority_class({"metadata": {"name": name}, "value": value, "preemptionPolicy": policy})
            made.append(name)
    return made


def _deployment(name, kind, priority_class, gpus, replicas, pin_nodes, accelerator_label) -> dict:
    from skyendpoints_iac.blueprint import names

    labels = {"app": name, names.LABEL_WORKLOAD_KIND: kind}
    terms = [{"key": accelerator_label, "operator": "Exists"}]
    if pin_nodes:
        terms.append({"key": "kubernetes.io/hostname", "operator": "In", "values": list(pin_nodes)})
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": priority_class,
                    "terminationGracePeriodSeconds": 30 if kind == "training" else 5,
                    "tolerations": [{"operator": "Exists"}],  # kwok nodes carry a kwok taint
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [{"matchExpressions": terms}]
                            }
                        }
                    },
                    "containers": [
                        {
                            "name": kind,
                            "image": "registry.invalid/bench:0",
                            "resources": {
                                "requests": {"nvidia.com/gpu": str(gpus)},
                                "limits": {"nvidia.com/gpu": str(gpus)},
                            },
                        }
                    ],
                },
            },
        },
    }


# --------------------------------------------------------------------------- report


def report(cfg: Config, results: dict[str, Totals], mode: str) -> str:
    total = cfg.nodes * cfg.gpus_per_node * cfg.hours
    rows = [
        ("inference GPU-hours", "inference_gpu_h", "{:.1f}"),
        ("training GPU-hours (allocated)", "training_gpu_h", "{:.1f}"),
        ("training GPU-hours (useful)", "training_useful_gpu_h", "{:.1f}"),
        ("  lost to preemption (since last ckpt)", "training_lost_gpu_h", "{:.1f}"),
        ("idle GPU-hours", "idle_gpu_h", "{:.1f}"),
        ("inference waited for GPUs (replica-h)", "wait_replica_h", "{:.2f}"),
        ("longest single wait (min)", "max_wait_s", "{:.1f}"),
        ("training pods preempted", "preemptions", "{:d}"),
    ]
    setups = list(results)
    lines = [
        f"mode: {mode}",
        f"trace: {cfg.hours:g} h, step {cfg.step_s} s, seed {cfg.seed}; cluster {cfg.nodes} x {cfg.gpus_per_node} GPUs "
        f"= {total:.0f} GPU-hours; inference replica {cfg.inference_gpus} GPUs ({cfg.min_replicas}-{cfg.max_replicas} replicas), "
        f"training pod {cfg.training_gpus} GPUs, grace {cfg.grace_s} s, checkpoint every {cfg.checkpoint_every_s // 60} min",
        "",
        f"{'':42}" + "".join(f"{s:>14}" for s in setups),
    ]
    for label, attr, fmt in rows:
        values = []
        for s in setups:
            v = getattr(results[s], attr)
            if attr == "max_wait_s":
                v = v / 60
            values.append("n/a" if isinstance(v, float) and math.isnan(v) else fmt.format(v))
        lines.append(f"{label:42}" + "".join(f"{v:>14}" for v in values))
    return "\n".join(lines)


def sensitivity(cfg: Config, targets: list[int]) -> str:
    """Training pod size decides how much of the freed capacity training can use: a 2-GPU inference
    replica leaves holes that an 8-GPU training pod cannot fill."""
    from dataclasses import replace

    lines = [
        "training pod size (simulation):  training GPU-h static -> shared   idle GPU-h static -> shared   preemptions"
    ]
    for gpus in (2, 4, 8):
        c = replace(cfg, training_gpus=gpus)
        st, sh = simulate(c, targets, "static"), simulate(c, targets, "shared")
        lines.append(
            f"  {gpus} GPUs per training pod        {st.training_gpu_h:7.1f} -> {sh.training_gpu_h:7.1f}"
            f"            {st.idle_gpu_h:7.1f} -> {sh.idle_gpu_h:7.1f}       {sh.preemptions:5d}"
        )
    return "\n".join(lines)


def plot(cfg: Config, results: dict[str, Totals], path: Path, mode: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(11, 3.2 * len(results)), sharex=True)
    for ax, (setup, tot) in zip(axes, results.items(), strict=False):
        hours = [i * cfg.step_s / 3600 for i in range(tot.steps)]
        ax.stackplot(
            hours,
            tot.series["inference"],
            tot.series["training"],
            labels=["inference GPUs", "training GPUs"],
            colors=["#1f77b4", "#ff7f0e"],
            alpha=0.85,
        )
        ax.plot(hours, tot.series["wanted"], color="black", linewidth=0.8, linestyle="--", label="inference wants")
        ax.set_ylim(0, cfg.nodes * cfg.gpus_per_node + 1)
        ax.set_ylabel("GPUs")
        ax.set_title(
            f"{setup}: inference {tot.inference_gpu_h:.0f} GPU-h, training {tot.training_gpu_h:.0f} GPU-h, "
            f"inference waited {tot.wait_replica_h:.1f} replica-h"
        )
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("hour of trace")
    fig.suptitle(f"GPUs per workload over time ({mode.split(':')[0]})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "training-sharing.png")
    parser.add_argument("--fleet-kubeconfig", help="Run live against this local-fleet cluster instead of simulating.")
    parser.add_argument("--context", help="kubeconfig context of the local-fleet cluster.")
    parser.add_argument("--speedup", type=float, default=600.0, help="Live mode: trace seconds per wall second.")
    parser.add_argument(
        "--accelerator-label",
        default="skyendpoints.dev/accelerator",
        help="Live mode: node label that marks GPU nodes.",
    )
    args = parser.parse_args(argv)
    cfg = Config(hours=args.hours, seed=args.seed, step_s=10 if not args.fleet_kubeconfig else 60)
    targets = replica_targets(cfg, request_trace(cfg))
    if args.fleet_kubeconfig:
        mode = (
            f"live: real kube-scheduler on the local fleet ({args.fleet_kubeconfig}, context {args.context or 'current'}), "
            f"kwok GPU nodes, time compressed {args.speedup:g}x"
        )
        results = {
            label: live(cfg, targets, setup, args.fleet_kubeconfig, args.context, args.speedup, args.accelerator_label)
            for label, setup in (("static 8/8", "static"), ("shared", "shared"))
        }
    else:
        mode = (
            "simulation: no cluster; discrete-time model of kube-scheduler priority and per-node preemption "
            "(use --fleet-kubeconfig to run on the local fleet)"
        )
        started = time.perf_counter()
        results = {"static 8/8": simulate(cfg, targets, "static"), "shared": simulate(cfg, targets, "shared")}
        mode += f"; simulated in {time.perf_counter() - started:.2f} s"
    print(report(cfg, results, mode))
    if not args.fleet_kubeconfig:
        print("\n" + sensitivity(cfg, targets))
    plot(cfg, results, args.plot, mode)
    print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
