"""The environment contract between a training job's pod and the program inside it.

The blueprint sets these variables on every training container; the checkpoint helper reads them.
Keeping the names in one module means the two sides cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

CHECKPOINT_DIR = "SKY_CHECKPOINT_DIR"
"""Absolute directory for this job's checkpoints, on the checkpoint volume."""
JOB_NAME = "SKY_JOB_NAME"
NUM_NODES = "SKY_NUM_NODES"
"""Nodes (pods) in the job; 1 for a single-node job."""
NODE_RANK = "SKY_NODE_RANK"
"""This pod's index, 0..NUM_NODES-1 (the Job's completion index)."""
MASTER_ADDR = "SKY_MASTER_ADDR"
"""Stable DNS name of node 0 (``<job>-0.<job>``) for rendezvous; ``localhost`` for one node."""
RESTARTS_ON_ERRORS = "SKY_RESTARTS_ON_ERRORS"
"""Failures of this node's earlier pods that counted against the retry budget (real errors)."""
PREEMPTIONS = "SKY_PREEMPTIONS"
"""Failures of this node's earlier pods that did not count: preemptions and other disruptions."""
MAX_RESTARTS_ON_ERRORS = "SKY_MAX_RESTARTS_ON_ERRORS"
"""The job's retry budget for real errors."""


@dataclass(frozen=True)
class RestartInfo:
    """How often this node's pod has been replaced, as Kubernetes counted it.

    The Job controller stamps each replacement pod with the failure counts of its index; the pod sees
    them through the downward API. A fresh job has ``0`` for both.
    """

    on_errors: int = 0
    preemptions: int = 0

    @property
    def total(self) -> int:
        return self.on_errors + self.preemptions


def _count(value: str | None) -> int:
    # The downward API yields "" for an annotation the controller has not set (it omits zero counts).
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        return 0


def restart_info(environ: Mapping[str, str] | None = None) -> RestartInfo:
    env = os.environ if environ is None else environ
    return RestartInfo(_count(env.get(RESTARTS_ON_ERRORS)), _count(env.get(PREEMPTIONS)))


def node_rank(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    return _count(env.get(NODE_RANK))
