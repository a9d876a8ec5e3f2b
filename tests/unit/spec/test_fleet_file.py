"""Fleet file: format, defaults, and errors with the same quality as the spec."""

from __future__ import annotations

import textwrap

import pytest

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.spec import load_fleet
from skyendpoints_iac.spec.fleet import DEFAULT_DOMAIN

FLEET = textwrap.dedent(
    """\
    clusters:
      - name: gke-us-east            # unique, lowercase DNS label
        context: gke_proj_us-east1   # kubeconfig context; defaults to name
        region: us-east1
        cloud: gcp                   # free-form label
        gpu_prices: {H100: 3.0}      # USD per GPU-hour
        healthy: true
        nodes:
          - {accelerator: H100, gpus: 8, count: 2}
          - {accelerator: H100, gpus: 8, free: 4}
          - {accelerator: H100, gpus: 8, free: 0, reclaimable: 8}
    """
)


def errors_of(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        load_fleet("fleet.yaml", text=textwrap.dedent(text))
    return [str(p) for p in info.value.problems]


def test_published_format_and_defaults():
    fleet = load_fleet("fleet.yaml", text=FLEET)
    (c,) = fleet.clusters
    assert c.kube_context == "gke_proj_us-east1"
    assert c.gpu_prices == {"H100": 3.0}
    groups = c.nodes
    assert (groups[0].count, groups[0].free_gpus, groups[0].reclaimable) == (2, 8, 0)
    assert (groups[1].count, groups[1].free_gpus) == (1, 4)
    assert (groups[2].free_gpus, groups[2].reclaimable) == (0, 8)
    # Fleet-level settings default when only `clusters` is given.
    assert fleet.domain == DEFAULT_DOMAIN
    assert fleet.dns.provider == "none" and fleet.acme.email is None and fleet.otlp_endpoint is None


def test_context_defaults_to_name_and_nodes_optional():
    fleet = load_fleet("f.yaml", text="clusters: [{name: a}]\n")
    assert fleet.clusters[0].kube_context == "a"
    assert fleet.clusters[0].nodes is None  # discovered live


def test_fleet_settings():
    fleet = load_fleet(
        "f.yaml",
        text=textwrap.dedent(
            """\
            domain: llm.example.com
            metrics: {remote_write_url: 'https://mimir/api/v1/push', query_url: 'https://mimir/prometheus'}
            otlp_endpoint: http://otel:4317
            dns: {provider: route53, routing: failover, ttl: 30}
            acme: {email: ops@example.com, server: letsencrypt-staging}
            clusters:
              - name: a
                gpu_taint: {key: nvidia.com/gpu, effect: NoSchedule}
            """
        ),
    )
    assert fleet.domain == "llm.example.com"
    assert fleet.dns.routing == "failover" and fleet.acme.server == "letsencrypt-staging"
    assert fleet.clusters[0].gpu_taint.effect == "NoSchedule"


ERROR_CASES = [
    (
        "free+reclaimable",
        FLEET.replace("free: 4}", "free: 4, reclaimable: 5}"),
        "fleet.yaml:10:44: clusters[0].nodes[1].free: free (4) + reclaimable (5) exceeds gpus (8)",
    ),
    ("dup-name", "clusters: [{name: a}, {name: a}]\n", "fleet.yaml:1:30: clusters[1].name: duplicate cluster name 'a'"),
    ("bad-name", "clusters: [{name: A_B}]\n", "clusters[0].name: must be a lowercase DNS label"),
    (
        "unknown",
        "clusters: [{name: a, regoin: x}]\n",
        "clusters[0].regoin: unknown field 'regoin' — did you mean 'region'?",
    ),
    ("no-clusters", "clusters: []\n", "clusters: list should have at least 1 item"),
    (
        "gpus-zero",
        "clusters: [{name: a, nodes: [{accelerator: H100, gpus: 0}]}]\n",
        "clusters[0].nodes[0].gpus: input should be greater than or equal to 1",
    ),
    (
        "accel-count",
        "clusters: [{name: a, nodes: [{accelerator: 'H100:8', gpus: 8}]}]\n",
        "clusters[0].nodes[0].accelerator: 'H100:8' is not a GPU type name",
    ),
    ("price", "clusters: [{name: a, gpu_prices: {H100: -1}}]\n", "clusters[0].gpu_prices: price of H100 must be >= 0"),
    ("domain", "domain: Bad\nclusters: [{name: a}]\n", "domain: 'Bad' is not a lowercase domain name"),
    (
        "metrics-url",
        "metrics: {query_url: mimir}\nclusters: [{name: a}]\n",
        "metrics.query_url: must be an http(s) URL",
    ),
    ("dns-provider", "dns: {provider: bind}\nclusters: [{name: a}]\n", "dns.provider: input should be"),
]


@pytest.mark.parametrize("case,text,expected", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_classes(case, text, expected):
    errs = errors_of(text)
    assert any(expected in e for e in errs), errs


def test_all_errors_at_once():
    errs = errors_of("clusters:\n  - {name: A}\n  - {name: b, healthy: maybe}\n  - {name: c, nodes: [{gpus: 8}]}\n")
    assert len(errs) == 3
