"""The local fleet's PodMonitor -> Prometheus translator (localfleet/promconfig.py), on the PodMonitors the
product renders. Expected relabellings are prometheus-operator v0.93.1's ``generatePodMonitorConfig``
(pkg/prometheus/promcfg.go), written out by hand from that source. Pure."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from skyendpoints_iac.blueprint import monitoring, names
from skyendpoints_iac.blueprint.engines import (
    ENGINE_METRICS_PORTS,
    ENGINE_TRANSPORT,
    EPP_METRICS_PORT,
    SIGNAL_SCRAPE_INTERVAL,
)
from skyendpoints_iac.localfleet import promconfig

API = promconfig.ApiServer("https://127.0.0.1:6443", "/s/ca.crt", "/s/token")


def _creds(calls):
    def credentials_file(ns, name, key):
        calls.append((ns, name, key))
        return f"/s/{ns}_{name}_{key}"

    return credentials_file


def _by_name(name):
    (pm,) = [p for p in monitoring.pod_monitors() if p["metadata"]["name"] == name]
    return pm


def test_vllm_monitor_gives_one_job_per_engine_port_with_the_operators_relabelling():
    pm = _by_name("skyendpoints-vllm")
    configs, problems = promconfig.scrape_configs([pm], API, _creds([]))
    assert problems == []
    assert [c["job_name"] for c in configs] == [
        f"podMonitor/monitoring/skyendpoints-vllm/{i}" for i in range(len(ENGINE_METRICS_PORTS))
    ]
    first = configs[0]
    assert first["scheme"] == ENGINE_TRANSPORT.scheme == "http"
    assert first["metrics_path"] == "/metrics"
    assert first["scrape_interval"] == SIGNAL_SCRAPE_INTERVAL
    assert first["honor_labels"] is False
    (sd,) = first["kubernetes_sd_configs"]
    assert sd == {
        "role": "pod",
        "api_server": API.url,
        "authorization": {"type": "Bearer", "credentials_file": "/s/token"},
        "tls_config": {"ca_file": "/s/ca.crt"},
    }  # namespaceSelector.any: no namespaces key
    rl = first["relabel_configs"]
    assert rl[0] == {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}
    assert rl[1] == {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}
    # matchLabels sorted by key, then matchExpressions (NotIn -> drop)
    assert rl[2] == {
        "action": "keep",
        "source_labels": [
            "__meta_kubernetes_pod_label_app_kubernetes_io_part_of",
            "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_part_of",
        ],
        "regex": "(llminferenceservice);true",
    }
    assert rl[3]["source_labels"][0] == "__meta_kubernetes_pod_label_kserve_io_component"
    engine = promconfig.sanitize_label_name(names.LABEL_ENGINE)
    assert rl[4] == {
        "action": "drop",
        "source_labels": [f"__meta_kubernetes_pod_label_{engine}", f"__meta_kubernetes_pod_labelpresent_{engine}"],
        "regex": "(sglang);true",
    }
    assert rl[5] == {
        "action": "keep",
        "source_labels": ["__meta_kubernetes_pod_container_port_number"],
        "regex": str(ENGINE_METRICS_PORTS[0]),
    }
    assert [r["target_label"] for r in rl[6:9]] == ["namespace", "container", "pod"]
    endpoint = promconfig.sanitize_label_name(names.LABEL_ENDPOINT)
    assert rl[9] == {
        "source_labels": [f"__meta_kubernetes_pod_label_{endpoint}"],
        "target_label": endpoint,
        "regex": "(.+)",
        "replacement": "${1}",
    }
    assert rl[10] == {"target_label": "job", "replacement": "monitoring/skyendpoints-vllm"}
    assert rl[11] == {"target_label": "endpoint", "replacement": str(ENGINE_METRICS_PORTS[0])}
    # the PodMonitor's own relabelling last, keys in Prometheus spelling, action lower-cased
    assert rl[12] == {"action": "drop", "source_labels": ["__meta_kubernetes_pod_container_init"], "regex": "true"}
    assert configs[1]["relabel_configs"][5]["regex"] == str(ENGINE_METRICS_PORTS[1])


def test_the_dashboards_endpoint_label_is_what_the_translation_produces():
    from skyendpoints_iac.blueprint.dashboard import ENDPOINT_LABEL

    assert promconfig.sanitize_label_name(names.LABEL_ENDPOINT) == ENDPOINT_LABEL


def test_epp_monitor_reads_its_bearer_token_from_a_file_never_inline():
    calls = []
    configs, problems = promconfig.scrape_configs([_by_name("skyendpoints-epp")], API, _creds(calls))
    assert problems == []
    (cfg,) = configs
    assert calls == [("monitoring", monitoring.EPP_TOKEN_SECRET, "token")]
    assert cfg["authorization"] == {
        "type": "Bearer",
        "credentials_file": f"/s/monitoring_{monitoring.EPP_TOKEN_SECRET}_token",
    }
    assert cfg["relabel_configs"][4]["regex"] == str(EPP_METRICS_PORT)
    assert "credentials" not in yaml.safe_dump(cfg).replace("credentials_file", "")


def test_tls_skip_verify_is_translated():
    pm = copy.deepcopy(_by_name("skyendpoints-sglang"))
    pm["spec"]["podMetricsEndpoints"][0]["tlsConfig"] = {"insecureSkipVerify": True}
    pm["spec"]["podMetricsEndpoints"][0]["scheme"] = "https"
    cfg = promconfig.scrape_config(pm, 0, API, _creds([]))
    assert cfg["tls_config"] == {"insecure_skip_verify": True}
    assert cfg["scheme"] == "https"


@pytest.mark.parametrize(
    "where, patch, field",
    [
        ("spec", {"jobLabel": "app"}, "spec.jobLabel"),
        ("endpoint", {"port": "http"}, "spec.podMetricsEndpoints[0].port"),
        (
            "endpoint",
            {"tlsConfig": {"ca": {"secret": {"name": "x", "key": "y"}}}},
            "spec.podMetricsEndpoints[0].tlsConfig",
        ),
    ],
)
def test_fields_outside_what_the_product_renders_are_refused_by_name(where, patch, field):
    pm = copy.deepcopy(_by_name("skyendpoints-sglang"))
    target = pm["spec"] if where == "spec" else pm["spec"]["podMetricsEndpoints"][0]
    target.update(patch)
    with pytest.raises(
        promconfig.UnsupportedField, match=re.escape(f"PodMonitor monitoring/skyendpoints-sglang: {field}")
    ):
        promconfig.scrape_config(pm, 0, API, _creds([]))
    configs, problems = promconfig.scrape_configs([pm, _by_name("skyendpoints-epp")], API, _creds([]))
    kept = ["podMonitor/monitoring/skyendpoints-sglang/1"] if where == "endpoint" else []
    assert [c["job_name"] for c in configs if "sglang" in c["job_name"]] == kept
    assert any(field in p for p in problems)


def test_match_names_and_selector_operators():
    pm = {
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {
            "namespaceSelector": {"matchNames": ["a", "b"]},
            "selector": {
                "matchExpressions": [
                    {"key": "x", "operator": "In", "values": ["1", "2"]},
                    {"key": "y", "operator": "Exists"},
                    {"key": "z.io/w", "operator": "DoesNotExist"},
                ]
            },
            "podMetricsEndpoints": [{"portNumber": 80}],
        },
    }
    cfg = promconfig.scrape_config(pm, 0, API, _creds([]))
    assert cfg["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["a", "b"]}
    rl = cfg["relabel_configs"][2:5]
    assert rl == [
        {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_pod_label_x", "__meta_kubernetes_pod_labelpresent_x"],
            "regex": "(1|2);true",
        },
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_labelpresent_y"], "regex": "true"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_labelpresent_z_io_w"], "regex": "true"},
    ]
    del pm["spec"]["namespaceSelector"]
    cfg = promconfig.scrape_config(pm, 0, API, _creds([]))
    assert cfg["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["ns"]}


def test_cluster_config_labels_the_cluster_and_remote_writes_to_the_store():
    cfg = promconfig.cluster_config("local-2", [{"job_name": "j"}], "http://10.249.0.2:9090/api/v1/write")
    assert cfg["global"]["external_labels"] == {"cluster": "local-2"}
    assert cfg["remote_write"][0]["url"] == "http://10.249.0.2:9090/api/v1/write"
    assert "remote_write" not in promconfig.cluster_config("local-2", [], None)


def test_the_epp_monitor_scrapes_the_local_epp_processes_as_static_targets():
    epps = [
        promconfig.LocalEpp("sky-b", "b-inference-pool", "127.0.0.1:19012"),
        promconfig.LocalEpp("sky-a", "a-inference-pool", "127.0.0.1:19002"),
    ]
    (cfg,) = promconfig.local_epp_scrapes(monitoring.pod_monitors(), epps)
    assert cfg["job_name"] == "localEpp/monitoring/skyendpoints-epp/0"
    assert cfg["static_configs"] == [
        {"targets": ["127.0.0.1:19002"], "labels": {"namespace": "sky-a", "job": "monitoring/skyendpoints-epp"}},
        {"targets": ["127.0.0.1:19012"], "labels": {"namespace": "sky-b", "job": "monitoring/skyendpoints-epp"}},
    ]
    assert (cfg["scrape_interval"], cfg["metrics_path"], cfg["scheme"]) == (SIGNAL_SCRAPE_INTERVAL, "/metrics", "http")
    # The engine monitors select workload pods, not the EPP: they get no static targets; no EPP, no job.
    assert promconfig.local_epp_scrapes([_by_name("skyendpoints-vllm")], epps) == []
    assert promconfig.local_epp_scrapes(monitoring.pod_monitors(), []) == []
