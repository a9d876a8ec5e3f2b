"""The placement result: how many replicas of one endpoint each cluster runs, and why.

Plain frozen data with a JSON round trip, so ``sky endpoint plan --json`` output can be fed back as
``--previous`` and stored with each revision.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, Problem

_MULTI_NODE_KEYS = ("gpus_per_node", "prefill_gpus_per_node")


@dataclass(frozen=True)
class ClusterPlacement:
    """One cluster's share. For fixed replicas ``replicas == min_replicas == max_replicas``;
    for an autoscaled endpoint ``replicas`` is ``min_replicas`` and KEDA scales within the bounds."""

    cluster: str
    replicas: int
    min_replicas: int
    max_replicas: int
    prefill_replicas: int = 0
    gpus_per_node: int = 0
    """GPUs per pod when a replica spans nodes: the node size placement counted with (live discovery or the
    fleet file's snapshot), carried to the blueprint so both agree. 0: a replica fits on one node."""
    prefill_gpus_per_node: int = 0
    """The same for a prefill replica. 0: it fits on one node."""

    @property
    def spill_over(self) -> bool:
        """Scales from zero on the fleet-wide signal when the home cluster is saturated."""
        return self.min_replicas == 0 and self.max_replicas > 0


@dataclass(frozen=True)
class Placement:
    endpoint: str
    accelerator: str
    gpus_per_replica: int
    home: str | None
    placements: tuple[ClusterPlacement, ...] = ()
    unplaced: int = 0
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def cluster(self, name: str) -> ClusterPlacement | None:
        for p in self.placements:
            if p.cluster == name:
                return p
        return None

    @property
    def clusters(self) -> list[str]:
        return [p.cluster for p in self.placements]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # The node sizes only appear for multi-node replicas, so single-node placements keep their JSON shape.
        d["placements"] = [
            {k: v for k, v in asdict(p).items() if v or k not in _MULTI_NODE_KEYS} for p in self.placements
        ]
        d["reasons"] = list(self.reasons)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Placement:
        """Parse the ``--json`` shape. Raises ``ValueError`` (or ``KeyError``/``TypeError``) naming the field."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        placements = data.get("placements", [])
        if not isinstance(placements, list):
            raise ValueError("'placements' must be a list")
        parsed = []
        for i, p in enumerate(placements):
            if not isinstance(p, dict):
                raise ValueError(f"placements[{i}] must be an object")
            item = ClusterPlacement(**p)
            for key in ("replicas", "min_replicas", "max_replicas", "prefill_replicas", *_MULTI_NODE_KEYS):
                value = getattr(item, key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"placements[{i}].{key} must be a non-negative integer, got {value!r}")
            if not isinstance(item.cluster, str) or not item.cluster:
                raise ValueError(f"placements[{i}].cluster must be a cluster name")
            if item.min_replicas > item.max_replicas:
                raise ValueError(f"placements[{i}]: min_replicas exceeds max_replicas")
            parsed.append(item)
        names = [p.cluster for p in parsed]
        if len(set(names)) != len(names):
            raise ValueError("a cluster appears twice in 'placements'")
        if not isinstance(data["endpoint"], str):
            raise ValueError("'endpoint' must be a string")
        return cls(
            endpoint=data["endpoint"],
            accelerator=data["accelerator"],
            gpus_per_replica=int(data["gpus_per_replica"]),
            home=data.get("home"),
            placements=tuple(parsed),
            unplaced=int(data.get("unplaced", 0)),
            reasons=tuple(data.get("reasons", [])),
        )

    @classmethod
    def load(cls, path: str | Path) -> Placement:
        """Read a ``--previous`` file. Anything malformed is ``InvalidInput`` naming the file."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InvalidInput([Problem(str(path), None, None, "", "file not found")]) from None
        except json.JSONDecodeError as exc:
            raise InvalidInput([Problem(str(path), exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")]) from None
        except KeyError as exc:
            raise InvalidInput(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        "",
                        f"not a placement from 'sky endpoint plan --json': missing field {exc}",
                    )
                ]
            ) from None
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                [Problem(str(path), None, None, "", f"not a placement from 'sky endpoint plan --json': {exc}")]
            ) from None
        except (IsADirectoryError, UnicodeDecodeError, OSError) as exc:
            raise InvalidInput([Problem(str(path), None, None, "", f"cannot read file: {exc}")]) from None
