"""Placement: how many replicas of an endpoint each cluster runs.

Pure and deterministic (filter -> rank -> assign), explainable through reasons. Never imports pulumi.
``place`` is the entry point; ``discovery`` (live capacity, imports the kubernetes client lazily) is the
only part that talks to clusters.
"""

from .capacity import ClusterInventory, NodeCapacity
from .ledger import Ledger, place_all
from .model import ClusterPlacement, Placement
from .place import place
from .request import PlacementRequest

__all__ = [
    "ClusterInventory",
    "ClusterPlacement",
    "Ledger",
    "NodeCapacity",
    "Placement",
    "PlacementRequest",
    "place",
    "place_all",
]
