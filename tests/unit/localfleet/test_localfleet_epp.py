"""The local EPP's config is the product's routing config, reduced to what GAIE v1.5.0 has. Pure."""

from __future__ import annotations

import pytest
import yaml

from skyendpoints_iac.blueprint.routing import MODES, build_epp_config
from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.localfleet import epp


def test_kv_cache_aware_keeps_kserves_weights_and_drops_only_llm_d_plugins():
    product = build_epp_config(MODES["kv_cache_aware"], prefill=False, lora=False)
    cfg, dropped = epp.gaie_config(product)
    assert cfg["apiVersion"] == "inference.networking.x-k8s.io/v1alpha1"
    assert dropped == ["no-hit-lru-scorer"]
    (profile,) = cfg["schedulingProfiles"]
    weights = {r["pluginRef"]: r.get("weight") for r in profile["plugins"]}
    assert weights == {
        "queue-scorer": 2,
        "kv-cache-utilization-scorer": 2,
        "prefix-cache-scorer": 3,
        "max-score-picker": None,
    }
    assert {p["type"] for p in cfg["plugins"]} <= epp.GAIE_PLUGIN_TYPES
    assert epp.routing_mode(product) == "epp"


@pytest.mark.parametrize("mode, local", [("p2c", "p2c"), ("round_robin", "round_robin")])
def test_p2c_and_round_robin_are_read_back_from_the_render(mode, local):
    product = build_epp_config(MODES[mode], prefill=False, lora=False)
    assert epp.routing_mode(product) == local
    _cfg, dropped = epp.gaie_config(product)
    assert dropped == []


def test_prefill_decode_is_refused():
    product = build_epp_config(MODES["kv_cache_aware"], prefill=True, lora=False)
    with pytest.raises(SkyError, match="prefill/decode"):
        epp.gaie_config(product)


def test_argv_passes_the_config_as_text_and_keeps_secure_serving():
    cfg, _ = epp.gaie_config(build_epp_config(MODES["kv_cache_aware"], prefill=False, lora=True))
    argv = epp.epp_argv(epp.Path("/bin/epp"), "sky-chat", "chat-inference-pool", epp.ports_for(1), cfg)
    assert "--pool-name=chat-inference-pool" in argv and "--grpc-port=19010" in argv
    assert "--secure-serving=true" in argv
    text = next(a for a in argv if a.startswith("--config-text="))[len("--config-text=") :]
    assert yaml.safe_load(text) == cfg
    assert "lora-affinity-scorer" in text


def test_find_epp_names_the_build_script_when_missing(tmp_path):
    with pytest.raises(SkyError, match=r"build-dataplane-bins.sh"):
        epp.find_epp({"SKY_BIN_CACHE": str(tmp_path), "HOME": str(tmp_path)})


def test_feature_gates_pass_through_to_gaie():
    product = build_epp_config(MODES["kv_cache_aware"], prefill=False, lora=False, hold_at_zero=True)
    cfg, _ = epp.gaie_config(product)
    assert cfg["featureGates"] == ["flowControl"]
    assert (
        "featureGates" not in epp.gaie_config(build_epp_config(MODES["kv_cache_aware"], prefill=False, lora=False))[0]
    )
