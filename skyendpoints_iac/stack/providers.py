"""One ``kubernetes.Provider`` per cluster, built from the fleet entry.

- ``cluster_identifier`` is the fleet's cluster name, so editing the kubeconfig (rotated certs, a new
  proxy URL) updates the provider instead of replacing it and, with it, every object on the cluster
  (pulumi-kubernetes #4019, #1148).
- The kubeconfig *content* is read at program time and passed as a secret: it holds credentials and is
  stored in state, and content (unlike a path) still works when destroy runs on another machine.
- Context and kubeconfig are always explicit: the SDK would otherwise fill them from ``$KUBECONFIG``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from ..errors import InvalidInput, Problem
from ..spec.fleet import Cluster


def kubeconfig_path(cluster: Cluster, default: str | None) -> Path:
    """The fleet entry's kubeconfig, else the deployment default, else $KUBECONFIG, else ~/.kube/config."""
    chosen = cluster.kubeconfig or default or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
    return Path(chosen).expanduser()


def read_kubeconfig(cluster: Cluster, default: str | None) -> str:
    path = kubeconfig_path(cluster, default)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput([Problem(
            str(path), None, None, f"clusters.{cluster.name}.kubeconfig",
            f"cannot read the kubeconfig of cluster '{cluster.name}' ({exc.strerror}); set 'kubeconfig' on the "
            "cluster in the fleet file or 'skyendpoints:kubeconfig' in the stack config",
        )]) from None


def provider_name(cluster: str) -> str:
    return f"k8s-{cluster}"


def cluster_provider(cluster: Cluster, kubeconfig_text: str, opts: pulumi.ResourceOptions | None = None) -> k8s.Provider:
    return k8s.Provider(
        provider_name(cluster.name),
        kubeconfig=pulumi.Output.secret(kubeconfig_text),
        context=cluster.kube_context,
        cluster_identifier=cluster.name,
        enable_server_side_apply=True,
        opts=opts,
    )
