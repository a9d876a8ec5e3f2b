"""Small hand-built blueprints for the Pulumi layer tests, so they do not depend on the blueprint builder."""

from __future__ import annotations

from pathlib import Path

from skyendpoints_iac.blueprint.model import (
    ChartRelease,
    ClusterBlueprint,
    CrdBundle,
    DnsTarget,
    EndpointSlice,
    FleetBlueprint,
    FrontDoor,
    PlatformBlueprint,
    SecretSpec,
)
from skyendpoints_iac.spec.fleet import Fleet
from skyendpoints_iac.stack.inputs import DeploymentInputs

GATEWAY_KINDS = ("gateway.networking.k8s.io/Gateway", "gateway.networking.k8s.io/HTTPRoute")


def fleet(clusters: list[str], kubeconfig: Path) -> Fleet:
    return Fleet.model_validate(
        {"dns": {"provider": "none"}, "clusters": [{"name": c, "kubeconfig": str(kubeconfig)} for c in clusters]}
    )


def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n"
        "users: [{name: u, user: {client-key-data: SECRET-KUBECONFIG-MATERIAL}}]\n"
    )
    return path


def platform(cluster: str, *, hooks: bool = False) -> PlatformBlueprint:
    return PlatformBlueprint(
        cluster=cluster,
        crd_bundles=[
            CrdBundle(
                "gateway-api",
                "https://example.invalid/gateway-api/standard-install.yaml",
                "v1.4.0",
                kinds=GATEWAY_KINDS,
            )
        ],
        charts=[
            ChartRelease(
                "cert-manager",
                "cert-manager",
                "https://charts.jetstack.io",
                "v1.21.1",
                "cert-manager",
                {"crds": {"enabled": True}},
            ),
            ChartRelease("keda", "keda", "https://kedacore.github.io/charts", "2.18.1", "keda", {}),
            ChartRelease(
                "kserve",
                "oci://ghcr.io/kserve/charts/kserve-llmisvc",
                None,
                "v0.16.0",
                "kserve",
                {},
                depends_on=("cert-manager", "gateway-api"),
                uses_hooks=hooks,
            ),
        ],
        objects=[
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "skyendpoints-system"}},
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": "skyendpoints-inference"},
                "value": 1000000,
            },
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "skyendpoints", "namespace": "skyendpoints-system"},
                "spec": {
                    "gatewayClassName": "istio",
                    "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS"}],
                },
            },
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "ClusterIssuer",
                "metadata": {"name": "skyendpoints-selfsigned"},
                "spec": {"selfSigned": {}},
            },
        ],
    )


def endpoint_slice(
    endpoint: str, cluster: str, replicas: int, *, autoscaled: bool = False, env_secret: str | None = None
) -> EndpointSlice:
    ns = f"sky-{endpoint}"
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "serving.kserve.io/v1alpha2",
            "kind": "LLMInferenceService",
            "metadata": {"name": endpoint, "namespace": ns},
            "spec": {"replicas": replicas, "model": {"uri": "hf://zai-org/GLM-5.2"}},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": endpoint, "namespace": ns},
            "spec": {"hostnames": [f"{endpoint}.example.com"]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{endpoint}-dashboard", "namespace": ns, "labels": {"grafana_dashboard": "1"}},
            "data": {"dashboard.json": "{}"},
        },
    ]
    if autoscaled:
        objects.append(
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": endpoint, "namespace": ns},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "serving.kserve.io/v1alpha2",
                        "kind": "LLMInferenceService",
                        "name": endpoint,
                    },
                    "minReplicaCount": replicas,
                    "maxReplicaCount": 6,
                },
            }
        )
    sources = {"api-key": "generated"}
    if env_secret:
        sources["hf-token"] = f"env:{env_secret}"
    return EndpointSlice(
        endpoint=endpoint,
        cluster=cluster,
        objects=objects,
        secrets=[SecretSpec(f"{endpoint}-keys", ns, sources)],
        replicas=replicas,
        min_replicas=replicas,
        max_replicas=6 if autoscaled else replicas,
    )


def blueprint(placement: dict[str, dict[str, int]], **slice_kw) -> FleetBlueprint:
    """``placement``: endpoint -> cluster -> replicas."""
    clusters = sorted({c for per in placement.values() for c in per})
    bp = FleetBlueprint(clusters={c: ClusterBlueprint(c, platform(c)) for c in clusters})
    for ep, per in placement.items():
        for c, n in per.items():
            bp.clusters[c].slices[ep] = endpoint_slice(ep, c, n, **slice_kw)
        bp.front_doors.append(
            FrontDoor(ep, f"{ep}.example.com", "weighted", 60, tuple(DnsTarget(c, n) for c, n in sorted(per.items())))
        )
    return bp


def inputs(clusters: list[str], kubeconfig_path: Path, **kw) -> DeploymentInputs:
    return DeploymentInputs(fleet=fleet(clusters, kubeconfig_path), **kw)
