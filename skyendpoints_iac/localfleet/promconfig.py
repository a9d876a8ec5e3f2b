"""Prometheus configuration for the local fleet, translated from the PodMonitors on a cluster's API server.
DEV TOOLING (local fleet): the product never imports it. Pure: objects in, config dicts out.

prometheus-operator is not built here (it is a controller with its own CRDs, config-reloader and
StatefulSets; the local fleet runs Prometheus as a plain process), so this module does the one part of it the
fleet needs: ``generatePodMonitorConfig`` of prometheus-operator v0.93.1 (the version kube-prometheus-stack
88.5.3 ships, ``../shared/crds/crd-podmonitors.yaml``; upstream ``pkg/prometheus/promcfg.go``), for **exactly
the PodMonitor fields the product emits** (``blueprint/monitoring.py``): ``namespaceSelector.any``,
``selector.matchLabels``/``matchExpressions``, ``podTargetLabels``, and per endpoint ``portNumber``,
``scheme``, ``path``, ``interval``, ``relabelings``, ``tlsConfig.insecureSkipVerify`` and
``authorization`` (type + credentials Secret). Any other field is refused with the PodMonitor and field
named (``UnsupportedField``) rather than silently scraped differently.

Discovery is Prometheus's own ``kubernetes_sd_configs`` (role ``pod``) against the cluster's API server,
exactly what the operator emits when ``Prometheus.spec.apiserverConfig`` is set: the same ``__meta_kubernetes_*``
labels, so the operator's relabelling below runs unchanged. The API server is reached inside the cluster's
network namespace at the kubeconfig URL (``netns.py`` bridges it); credentials are files (0600), never
values in the config: the admin token file for discovery, and each ``authorization.credentials`` Secret value
written to a file by the caller (``credentials_file``). The operator inlines Secret values into its config
Secret; a local config file must not hold them.

Operator behaviour reproduced, in its order (promcfg.go ``generatePodMonitorConfig``): job name
``podMonitor/<ns>/<name>/<i>``; relabellings ``job -> __tmp_prometheus_job_name``; drop pods in phase
Failed/Succeeded (``filterRunning`` default); keep by selector (``__meta_kubernetes_pod_label_<l>`` and
``labelpresent``); keep the port (``__meta_kubernetes_pod_container_port_number`` for ``portNumber``);
``namespace``, ``container``, ``pod`` target labels; ``podTargetLabels`` (sanitised names); ``job =
<ns>/<name>``; ``endpoint`` = the port; then the endpoint's own ``relabelings``. Not reproduced: the shard
``hashmod`` rules (one shard: they keep every target) and scrape classes (the product sets none).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SkyError

OPERATOR_VERSION = "v0.93.1"
"""prometheus-operator whose config generation this mirrors (kube-prometheus-stack 88.5.3)."""

POD_MONITOR_FIELDS = frozenset({"namespaceSelector", "selector", "podMetricsEndpoints", "podTargetLabels"})
ENDPOINT_FIELDS = frozenset({"portNumber", "scheme", "path", "interval", "relabelings", "tlsConfig", "authorization"})
RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}
"""PodMonitor ``RelabelConfig`` -> Prometheus ``relabel_config`` keys (promcfg.go ``generateRelabelConfig``)."""

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")

CredentialsFile = Callable[[str, str, str], str]
"""``(namespace, secret name, key) -> path`` of a 0600 file holding that Secret value (the caller writes it)."""


class UnsupportedField(SkyError):
    """A PodMonitor uses a field this translator does not cover."""


def sanitize_label_name(name: str) -> str:
    """prometheus-operator's ``sanitizeLabelName``: every character outside ``[a-zA-Z0-9_]`` becomes ``_``."""
    return _INVALID_LABEL_CHARS.sub("_", name)


@dataclass(frozen=True)
class ApiServer:
    """How Prometheus reaches the cluster's API server for pod discovery (files, not values)."""

    url: str
    ca_file: str
    token_file: str


def _where(pm: Mapping[str, Any]) -> str:
    m = pm.get("metadata") or {}
    return f"PodMonitor {m.get('namespace', 'default')}/{m.get('name', '?')}"


def _refuse(pm: Mapping[str, Any], field: str, why: str) -> UnsupportedField:
    return UnsupportedField(
        f"{_where(pm)}: {field}: {why} (localfleet/promconfig.py covers only the fields the "
        "product renders; extend it, or drop the field)"
    )


def _selector_relabelings(pm: Mapping[str, Any]) -> list[dict[str, Any]]:
    sel = (pm.get("spec") or {}).get("selector") or {}
    out: list[dict[str, Any]] = []
    for key in sorted(sel.get("matchLabels") or {}):
        s = sanitize_label_name(key)
        out.append(
            {
                "action": "keep",
                "source_labels": [f"__meta_kubernetes_pod_label_{s}", f"__meta_kubernetes_pod_labelpresent_{s}"],
                "regex": f"({sel['matchLabels'][key]});true",
            }
        )
    for i, exp in enumerate(sel.get("matchExpressions") or []):
        s = sanitize_label_name(exp["key"])
        values = "|".join(exp.get("values") or [])
        both = [f"__meta_kubernetes_pod_label_{s}", f"__meta_kubernetes_pod_labelpresent_{s}"]
        present = [f"__meta_kubernetes_pod_labelpresent_{s}"]
        op = exp.get("operator")
        if op == "In":
            out.append({"action": "keep", "source_labels": both, "regex": f"({values});true"})
        elif op == "NotIn":
            out.append({"action": "drop", "source_labels": both, "regex": f"({values});true"})
        elif op == "Exists":
            out.append({"action": "keep", "source_labels": present, "regex": "true"})
        elif op == "DoesNotExist":
            out.append({"action": "drop", "source_labels": present, "regex": "true"})
        else:
            raise _refuse(pm, f"spec.selector.matchExpressions[{i}].operator", f"unknown operator {op!r}")
    return out


def _relabel(pm: Mapping[str, Any], path: str, rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, rule in enumerate(rules):
        extra = sorted(set(rule) - set(RELABEL_FIELDS))
        if extra:
            raise _refuse(pm, f"{path}[{i}].{extra[0]}", "not a RelabelConfig field")
        item = {RELABEL_FIELDS[k]: (v.lower() if k == "action" else v) for k, v in rule.items()}
        out.append(item)
    return out


def scrape_config(
    pm: Mapping[str, Any], index: int, api: ApiServer, credentials_file: CredentialsFile
) -> dict[str, Any]:
    """The scrape config of endpoint ``index`` of one PodMonitor (raises ``UnsupportedField``)."""
    meta = pm.get("metadata") or {}
    ns, name = meta.get("namespace", "default"), meta["name"]
    spec = pm.get("spec") or {}
    extra = sorted(set(spec) - POD_MONITOR_FIELDS)
    if extra:
        raise _refuse(pm, f"spec.{extra[0]}", "not translated")
    nsel = spec.get("namespaceSelector") or {}
    if set(nsel) - {"any", "matchNames"}:
        raise _refuse(pm, "spec.namespaceSelector", "only 'any' and 'matchNames' are translated")
    ep = spec["podMetricsEndpoints"][index]
    path = f"spec.podMetricsEndpoints[{index}]"
    extra = sorted(set(ep) - ENDPOINT_FIELDS)
    if extra:
        raise _refuse(pm, f"{path}.{extra[0]}", "not translated")
    if "portNumber" not in ep:
        raise _refuse(pm, f"{path}.portNumber", "missing (the product always scrapes by port number)")
    port = str(int(ep["portNumber"]))

    sd: dict[str, Any] = {
        "role": "pod",
        "api_server": api.url,
        "authorization": {"type": "Bearer", "credentials_file": api.token_file},
        "tls_config": {"ca_file": api.ca_file},
    }
    # getNamespacesFromNamespaceSelector: any -> all namespaces; matchNames -> those; neither -> the monitor's own.
    if not nsel.get("any"):
        sd["namespaces"] = {"names": list(nsel.get("matchNames") or [ns])}
    cfg: dict[str, Any] = {
        "job_name": f"podMonitor/{ns}/{name}/{index}",
        "honor_labels": False,
        "kubernetes_sd_configs": [sd],
    }
    if ep.get("interval"):
        cfg["scrape_interval"] = ep["interval"]
    if ep.get("path"):
        cfg["metrics_path"] = ep["path"]
    if ep.get("scheme"):
        cfg["scheme"] = ep["scheme"]
    tls = ep.get("tlsConfig")
    if tls is not None:
        if set(tls) - {"insecureSkipVerify"}:
            raise _refuse(pm, f"{path}.tlsConfig", "only insecureSkipVerify is translated")
        cfg["tls_config"] = {"insecure_skip_verify": bool(tls.get("insecureSkipVerify"))}
    auth = ep.get("authorization")
    if auth is not None:
        cred = auth.get("credentials") or {}
        if not cred.get("name") or not cred.get("key"):
            raise _refuse(pm, f"{path}.authorization.credentials", "needs a Secret name and key")
        # The Secret is read from the PodMonitor's namespace, as the operator's asset store does.
        cfg["authorization"] = {
            "type": auth.get("type") or "Bearer",
            "credentials_file": credentials_file(ns, cred["name"], cred["key"]),
        }

    rl: list[dict[str, Any]] = [
        {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
    ]
    rl += _selector_relabelings(pm)
    rl.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": port})
    rl += [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    for label in spec.get("podTargetLabels") or []:
        s = sanitize_label_name(label)
        rl.append(
            {
                "source_labels": [f"__meta_kubernetes_pod_label_{s}"],
                "target_label": s,
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )
    rl.append({"target_label": "job", "replacement": f"{ns}/{name}"})
    rl.append({"target_label": "endpoint", "replacement": port})
    rl += _relabel(pm, f"{path}.relabelings", ep.get("relabelings") or [])
    cfg["relabel_configs"] = rl
    return cfg


def scrape_configs(
    pod_monitors: Sequence[Mapping[str, Any]], api: ApiServer, credentials_file: CredentialsFile
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every endpoint of every PodMonitor, sorted by job name; endpoints that cannot be translated are left
    out and named in the problems list (one bad object must not stop the others' scrapes)."""
    configs, problems = [], []
    for pm in pod_monitors:
        for i in range(len((pm.get("spec") or {}).get("podMetricsEndpoints") or [])):
            try:
                configs.append(scrape_config(pm, i, api, credentials_file))
            except (SkyError, KeyError, TypeError, ValueError) as exc:
                problems.append(str(exc) if isinstance(exc, SkyError) else f"{_where(pm)}: endpoint {i}: {exc!r}")
    configs.sort(key=lambda c: c["job_name"])
    return configs, problems


@dataclass(frozen=True)
class LocalEpp:
    """One EPP the data plane runs as a process (``dataplane.ClusterDataPlane``): its pool and where its
    /metrics listens inside the cluster's namespace."""

    namespace: str
    pool: str
    address: str


def local_epp_scrapes(pod_monitors: Sequence[Mapping[str, Any]], epps: Sequence[LocalEpp]) -> list[dict[str, Any]]:
    """STAND-IN for the EPP pods' targets. Real KServe runs the EPP as a pod labelled
    ``standin_kserve.SCHEDULER_LABELS`` and the product's EPP PodMonitor selects it; the local fleet runs
    it as a process, so no pod carries those labels. Each PodMonitor whose ``matchLabels`` such a pod would
    satisfy gets the running EPPs as static targets instead, with its endpoint's scheme, path and interval
    and the labels the pod target would have had (``namespace``, ``job``). Its ``authorization`` is not
    sent: the local EPP serves /metrics without auth (``epp.epp_argv``)."""
    from .standin_kserve import SCHEDULER_LABELS

    out: list[dict[str, Any]] = []
    for pm in pod_monitors:
        meta, spec = pm.get("metadata") or {}, pm.get("spec") or {}
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        if not match or any(SCHEDULER_LABELS.get(k) != v for k, v in match.items()) or not epps:
            continue
        ns, name = meta.get("namespace", "default"), meta["name"]
        for i, ep in enumerate(spec.get("podMetricsEndpoints") or []):
            cfg: dict[str, Any] = {
                "job_name": f"localEpp/{ns}/{name}/{i}",
                "honor_labels": False,
                "static_configs": [
                    {"targets": [e.address], "labels": {"namespace": e.namespace, "job": f"{ns}/{name}"}}
                    for e in sorted(epps, key=lambda e: (e.namespace, e.pool))
                ],
            }
            for field, key in (("interval", "scrape_interval"), ("path", "metrics_path"), ("scheme", "scheme")):
                if ep.get(field):
                    cfg[key] = ep[field]
            out.append(cfg)
    return out


def cluster_config(
    cluster: str, scrapes: Sequence[Mapping[str, Any]], remote_write_url: str | None, *, scrape_interval: str = "15s"
) -> dict[str, Any]:
    """One cluster's Prometheus: its scrapes, ``cluster=<name>`` as an external label and, when the fleet
    store is up, a remote write to it. That is the product's Alloy pipeline (``blueprint/monitoring.py``:
    the same PodMonitors remote-written with ``external_labels = { cluster = ... }``), so the fleet store
    holds the series in the shape the fleet dashboard and the spill-over queries read."""
    cfg: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
            "external_labels": {"cluster": cluster},
        },
        "scrape_configs": list(scrapes),
    }
    if remote_write_url:
        # Small batches, short deadline: the fleet signal should trail the local one by seconds, not minutes.
        cfg["remote_write"] = [
            {"url": remote_write_url, "queue_config": {"batch_send_deadline": "1s", "max_samples_per_send": 2000}}
        ]
    return cfg


def fleet_store_config() -> dict[str, Any]:
    """The fleet-wide store: scrapes nothing, receives every cluster's remote writes."""
    return {"global": {"evaluation_interval": "15s"}, "scrape_configs": []}
