"""``TrainingJob``: one training job's objects on the one cluster placement chose, plus its stack program.

Each job is its own Pulumi stack (``<env>.job.<name>``): a job starts and ends on its own schedule and
``sky jobs cancel`` must not touch endpoints. The job relies on the cluster platform the environment's
endpoint stack installed (the ``skyendpoints-training`` PriorityClass); ``sky jobs launch`` checks for it
before deploying.

Children are the blueprint's objects, each a ``KubeObject`` with ``parent=self`` and the cluster's
provider. The job's namespace is *not* retained on delete (unlike endpoint namespaces): it belongs to this
job alone, and a leftover would make the next launch of the same name fail on create.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pulumi

from ..blueprint.training import TrainingBlueprint, build_training
from ..errors import SkyError
from ..spec.fleet import Cluster
from ..spec.job import TrainingJobSpec
from . import manifests as mf
from .kube import KubeObject
from .providers import cluster_provider, read_kubeconfig

TYPE = "skyendpoints:index:TrainingJob"


@dataclass(frozen=True)
class TrainingJobArgs:
    blueprint: TrainingBlueprint


class TrainingJob(pulumi.ComponentResource):
    """A training job: namespace (when created), checkpoint claim (when created), headless Service
    (multi-node) and the indexed Job, in that dependency order."""

    job: pulumi.Output[str]
    cluster: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: TrainingJobArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
        if opts is None or opts.provider is None:
            raise SkyError(f"TrainingJob {name}: no provider given (default providers are disabled)")
        bp = args.blueprint
        self.objects: dict[str, KubeObject] = {}
        deps: list[pulumi.Resource] = []
        for kind in ("Namespace", "PersistentVolumeClaim", "Service", "Job"):
            made = [self._object(name, o, list(deps), opts.provider) for o in bp.objects if o["kind"] == kind]
            deps += made
        self.job = pulumi.Output.from_input(bp.job)
        self.cluster = pulumi.Output.from_input(bp.cluster)
        self.namespace = pulumi.Output.from_input(bp.namespace)
        self.register_outputs({"job": self.job, "cluster": self.cluster, "namespace": self.namespace})

    def _object(self, prefix: str, obj: dict[str, Any], deps: list[pulumi.Resource], provider) -> KubeObject:
        made = KubeObject(
            mf.child_name(prefix, obj),
            copy.deepcopy(obj),
            pulumi.ResourceOptions(parent=self, provider=provider, depends_on=deps or None),
        )
        self.objects[mf.object_key(obj)] = made
        return made


def deploy_job(spec: TrainingJobSpec, cluster: Cluster, kubeconfig: str | None = None) -> TrainingJob:
    """The stack program of one job: the cluster's provider, the ``TrainingJob``, and its outputs."""
    provider = cluster_provider(cluster, read_kubeconfig(cluster, kubeconfig))
    job = TrainingJob(
        spec.name, TrainingJobArgs(build_training(spec, cluster)), pulumi.ResourceOptions(provider=provider)
    )
    pulumi.export("job", job.job)
    pulumi.export("cluster", job.cluster)
    pulumi.export("namespace", job.namespace)
    return job
