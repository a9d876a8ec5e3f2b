"""A real local fleet: Kubernetes control planes with kwok GPU nodes, from binaries built from Go modules.

``LocalFleet(dir).up(3, parse_gpus("H100:8x2"))`` starts three clusters; ``kubeconfig`` and ``fleet_file``
are what ``sky endpoint up --fleet`` needs. ``kill``/``start`` simulate a cluster failure and recovery;
``down`` removes everything. See docs/localfleet.md.
"""

from .layout import NodePool, parse_gpus, pools_per_cluster
from .manager import ClusterStatus, LocalFleet, default_dir

__all__ = ["ClusterStatus", "LocalFleet", "NodePool", "default_dir", "parse_gpus", "pools_per_cluster"]
