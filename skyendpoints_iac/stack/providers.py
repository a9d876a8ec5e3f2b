"""One ``kubernetes.Provider`` per cluster, built from the fleet entry.

- ``cluster_identifier`` is the fleet's cluster name, so editing the kubeconfig (rotated certs, a new
  proxy URL) updates the provider instead of replacing it and, with it, every object on the cluster
  (pulumi-kubernetes #4019, #1148).
- The kubeconfig *content* is read at program time and passed as a secret: it holds credentials and is
  stored in state, and content (unlike a path) still works when destroy runs on another machine.
- Context and kubeconfig are always explicit: the SDK would otherwise fill them from ``$KUBECONFIG``. The
  content is the one merge every cluster client uses (``kube.kubeconfig``: every ``$KUBECONFIG`` file, as
  kubectl merges them), so discovery and the provider always reach the same cluster.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..errors import InvalidInput, Problem
from ..kube.kubeconfig import load_kubeconfig
from ..spec.fleet import Cluster


def read_kubeconfig(cluster: Cluster, default: str | None) -> str:
    """The kubeconfig text for the cluster's provider: the fleet entry's file, else the deployment default,
    else every ``$KUBECONFIG`` file merged as kubectl does, else ~/.kube/config (``kube.kubeconfig``)."""
    field = f"clusters.{cluster.name}.kubeconfig"
    try:
        return load_kubeconfig(cluster.kubeconfig or default, field=field).text()
    except InvalidInput as exc:
        first = exc.problems[0]
        raise InvalidInput(
            [
                Problem(
                    first.file,
                    first.line,
                    first.column,
                    field,
                    f"cannot read the kubeconfig of cluster '{cluster.name}' ({first.message}); set 'kubeconfig' on the "
                    "cluster in the fleet file or 'skyendpoints:kubeconfig' in the stack config",
                )
            ]
        ) from None


def provider_name(cluster: str) -> str:
    return f"k8s-{cluster}"


def cluster_provider(
    cluster: Cluster, kubeconfig_text: str, opts: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    return k8s.Provider(
        provider_name(cluster.name),
        kubeconfig=pulumi.Output.secret(kubeconfig_text),
        context=cluster.kube_context,
        cluster_identifier=cluster.name,
        enable_server_side_apply=True,
        opts=opts,
    )
