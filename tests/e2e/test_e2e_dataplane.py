"""The local data plane against real control planes: `LocalFleet.up` (network + controller), our Gateway and
HTTPRoute plus an LLMInferenceService on the API servers; everything else is the controller's: the KServe
stand-in makes the Deployment (pods scheduled by the real scheduler, made Ready by kwok with IPs from the
cluster's range) and the InferencePool, an engine simulator serves on every Ready pod's IP, the gateway
Envoy (and the EPP for kv_cache_aware) routes to them, the front door serves the hostname over TLS.

Its own 2-cluster fleet (small: one GPU node each), not the session fleet. Traffic goes only to the front
door (an address inside the fleet's namespaces) and every request has a timeout and a bounded count.
Which replica served a request is the simulator's ``x-sky-replica`` header (the pod's name), compared
with the Ready pods the API servers list. The routing tests (issue 14 e2e 2) grow the surviving cluster's
pool to 4 replicas and compare the modes on localfleet/prefix_scenario.py's workload, from the simulators'
own prefix-cache counters and the gateway Envoy's live config.

Run: flock /tmp/sky-e2e.lock .venv/bin/python -m pytest tests/e2e/test_e2e_dataplane.py -x
"""

from __future__ import annotations

import base64
import http.client
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import yaml

from skyendpoints_iac.blueprint import gateway as gw
from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.platform import EndpointTls
from skyendpoints_iac.blueprint.routing import MODES, build_epp_config
from skyendpoints_iac.localfleet import LocalFleet, NodePool, binaries, epp, prefix_scenario
from skyendpoints_iac.localfleet.api import ApiError
from skyendpoints_iac.localfleet.client import chat
from skyendpoints_iac.localfleet.netns import list_netns
from skyendpoints_iac.spec import load_fleet
from tests.conftest import EXAMPLES, shared_dir

ENDPOINT = "chat"
NS = names.endpoint_namespace(ENDPOINT)
POOL = f"{ENDPOINT}-inference-pool"
SVC_PATH = f"/apis/serving.kserve.io/v1alpha2/namespaces/{NS}/llminferenceservices/{ENDPOINT}"
CRDS = (
    "gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
    "inference.networking.k8s.io_inferencepools.yaml",
    "serving.kserve.io_llminferenceservices.yaml",
)


def _wait(what, check, timeout=90.0, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def _apply(api, path: str, obj: dict) -> None:
    try:
        api.post(path, obj)
    except ApiError as exc:
        if exc.status != 409:
            raise


def _objects(hostname: str, fleet_doc) -> list[tuple[str, dict]]:
    gateway = gw.gateway(fleet_doc, (EndpointTls(ENDPOINT, hostname, f"{ENDPOINT}-tls"),), http01=False)
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ENDPOINT, "namespace": NS},
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": names.GATEWAY_NAME,
                    "namespace": names.GATEWAY_NAMESPACE,
                    "sectionName": names.https_listener(ENDPOINT),
                }
            ],
            "hostnames": [hostname],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": POOL, "port": 8000}
                    ],
                    "timeouts": {"request": "0s", "backendRequest": "0s"},
                }
            ],
        },
    }
    svc = {
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": ENDPOINT, "namespace": NS},
        "spec": {
            "model": {"uri": "hf://org/model", "name": "model"},
            "replicas": 2,
            "template": {"containers": [{"name": "main"}]},
            "router": {
                "scheduler": {"config": {"inline": build_epp_config(MODES["round_robin"], prefill=False, lora=False)}}
            },
        },
    }
    ns_gw = names.GATEWAY_NAMESPACE
    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns_gw}}),
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        (f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns_gw}/gateways", gateway),
        (f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes", route),
        (f"/apis/serving.kserve.io/v1alpha2/namespaces/{NS}/llminferenceservices", svc),
    ]


def ready_pods(api) -> list[dict]:
    return [
        p
        for p in api.items(f"/api/v1/namespaces/{NS}/pods")
        if p.get("status", {}).get("podIP")
        and not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-dataplane")
    fleet = LocalFleet(root / "fleet")
    fleet_doc = load_fleet(EXAMPLES / "fleet.yaml")
    hostname = f"{ENDPOINT}.{fleet_doc.domain}"
    cert, key = root / "tls.crt", root / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={hostname}",
            "-addext",
            f"subjectAltName=DNS:{hostname}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    try:
        fleet.up([[NodePool("H100", 8, 1)]] * 2, bin_dir=binaries.find_bin_dir(), network=True)
        crds = shared_dir("crds")
        for name in fleet.cluster_names:
            api = fleet.api(name)
            for f in CRDS:
                _apply(
                    api,
                    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    yaml.safe_load((crds / f).read_text()),
                )
        for name in fleet.cluster_names:
            api = fleet.api(name)
            _wait(
                "CRDs established",
                lambda api=api: all(
                    _exists(api, "/apis/" + p)
                    for p in (
                        "gateway.networking.k8s.io/v1/gateways",
                        "inference.networking.k8s.io/v1/inferencepools",
                        "serving.kserve.io/v1alpha2/llminferenceservices",
                    )
                ),
            )
            for path, obj in _objects(hostname, fleet_doc):
                _apply(api, path, obj)
            _apply(
                api,
                f"/api/v1/namespaces/{NS}/secrets",
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "kubernetes.io/tls",
                    "metadata": {"name": f"{ENDPOINT}-tls", "namespace": NS},
                    "data": {
                        "tls.crt": base64.b64encode(cert.read_bytes()).decode(),
                        "tls.key": base64.b64encode(key.read_bytes()).decode(),
                    },
                },
            )
            # 300 s: in the full suite this fleet starts while the session fleet (planes, Prometheus, KEDA)
            # still runs on the same 2 cores; alone it takes seconds.
            try:
                _wait(
                    f"{name}: 2 pods of the stand-in's Deployment Ready",
                    lambda api=api: len(ready_pods(api)) == 2,
                    timeout=300,
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_diagnosis(fleet, api)}") from None
        replicas = {
            pod["metadata"]["name"]: name for name in fleet.cluster_names for pod in ready_pods(fleet.api(name))
        }
        yield {
            "fleet": fleet,
            "hostname": hostname,
            "cert": cert,
            "replicas": replicas,
            "fd_ip": fleet.network().front_door_address(),
            "root": root,
        }
    finally:
        log = fleet.dir / "dataplane" / "controller.log"
        if log.exists():
            (root / "controller.log").write_bytes(log.read_bytes())  # kept for diagnosis after down
        fleet.down()
        assert not [n for n in list_netns() if n.startswith(fleet.prefix)], "namespaces left behind"


def _diagnosis(fleet, api) -> str:
    """What the fixture saw when it gave up: the pods' phases and conditions, and the data-plane
    controller's last log lines (the run's tmp dir is gone by the time CI prints the failure)."""
    lines = []
    for p in api.items(f"/api/v1/namespaces/{NS}/pods"):
        conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
        lines.append(f"pod {p['metadata']['name']}: {p.get('status', {}).get('phase')} {conds}")
    log = fleet.dir / "dataplane" / "controller.log"
    tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else ["(no controller log)"]
    return "\n".join([*lines, "--- dataplane controller log (tail)", *tail])


def _exists(api, path: str) -> bool:
    try:
        api.get(path)
        return True
    except (ApiError, OSError):
        return False


def _chat(plane, timeout: float = 5.0) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(plane["cert"]))
    conn = http.client.HTTPSConnection(plane["hostname"], 443, timeout=timeout, context=ctx)
    conn.sock = ctx.wrap_socket(
        socket.create_connection((plane["fd_ip"], 443), timeout=timeout), server_hostname=plane["hostname"]
    )
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=b'{"model":"model","messages":[{"role":"user","content":"hi"}],"max_tokens":2}',
            headers={"Content-Type": "application/json", "Host": plane["hostname"]},
        )
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("x-sky-replica") or ""
    finally:
        conn.close()


def _try_chat(plane):
    try:
        return _chat(plane, timeout=2)
    except OSError:
        return None


def _admin(plane, where: str, path: str) -> str:
    """An Envoy admin page, read inside the namespace it runs in (diagnostics for failure messages)."""
    net = plane["fleet"].network()
    code = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:9901{path}', timeout=3).read().decode())"
    argv = (
        net.front_door_argv([sys.executable, "-c", code])
        if where == "fd"
        else net.cluster(where).argv([sys.executable, "-c", code])
    )
    return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout


def test_requests_through_the_front_door_reach_every_pod_of_both_clusters(plane):
    # The controller adds a cluster to the front door once its pods are Ready there (weight = Ready replicas).
    clusters: set[str] = set()
    where = plane["replicas"]  # pod name -> cluster, as the API servers listed the Ready pods
    try:
        _wait(
            "answers from both clusters through the front door",
            lambda: (
                clusters.update({where.get((_try_chat(plane) or (0, ""))[1], "?")})
                or {"local-1", "local-2"} <= clusters
            ),
            timeout=180,
            interval=0.2,
        )
    except AssertionError:
        fd = [
            ln
            for ln in _admin(plane, "fd", "/clusters").splitlines()
            if "health_flags" in ln or "cx_connect_fail" in ln
        ]
        gw2 = _admin(plane, "local-2", "/listeners")
        stats2 = [
            ln
            for ln in _admin(plane, "local-2", "/stats").splitlines()
            if ("ssl" in ln and "handshake" in ln) or "downstream_cx_total" in ln
        ]
        raise AssertionError(
            f"seen {clusters}; front door: {fd}; local-2 listeners: {gw2}; local-2 stats: {stats2}"
        ) from None
    seen = set()
    for _ in range(40):
        status, replica = _chat(plane)
        assert status == 200
        seen.add(replica)
    assert seen == set(where), (seen, where)


def test_a_killed_cluster_leaves_rotation_and_every_later_request_succeeds(plane):
    fleet: LocalFleet = plane["fleet"]
    fleet.kill("local-1")
    t_kill = time.monotonic()
    failures, served = [], []
    while time.monotonic() - t_kill < 30 and len(served) < 40:
        try:
            status, replica = _chat(plane, timeout=2)
        except OSError as exc:
            failures.append((round(time.monotonic() - t_kill, 2), repr(exc)))
            continue
        (served if status == 200 else failures).append((round(time.monotonic() - t_kill, 2), replica or status))
    assert len(served) == 40, failures
    assert all(plane["replicas"].get(r) == "local-2" for _, r in served), (served, plane["replicas"])
    assert all(t < 5.0 for t, _ in failures), failures
    assert not fleet.network().link_up("local-1")


def test_kv_cache_aware_routes_through_the_endpoint_picker(plane):
    """Switch the surviving cluster's endpoint to kv_cache_aware: the controller starts the real GAIE EPP for
    the pool and the gateway sends every request through ext_proc to the pod the EPP picks."""
    fleet: LocalFleet = plane["fleet"]
    api = fleet.api("local-2")
    inline = build_epp_config(MODES["kv_cache_aware"], prefill=False, lora=False)
    api.patch(
        f"/apis/serving.kserve.io/v1alpha2/namespaces/{NS}/llminferenceservices/{ENDPOINT}",
        {"spec": {"router": {"scheduler": {"config": {"inline": inline}}}}},
    )
    log = fleet.dir / "clusters" / "local-2" / "dataplane" / "logs" / f"epp-{NS}-{POOL}.log"
    _wait("the EPP's log", log.exists, timeout=60)
    # The EPP answers ext_proc once it has synced the pool and its pods; then requests flow through it.
    _wait("an answer routed by the EPP", lambda: (_try_chat(plane) or (0,))[0] == 200, timeout=120, interval=1)
    served = [_chat(plane) for _ in range(20)]
    assert all(status == 200 for status, _ in served), served
    assert {r for _, r in served} <= {n for n, c in plane["replicas"].items() if c == "local-2"}, served
    # Observed in the gateway Envoy (admin API inside local-2's namespace): ext_proc streams to the EPP, and
    # requests forwarded by the ORIGINAL_DST pool cluster (the address the EPP put in the header).
    code = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9901/stats', timeout=3).read().decode())"
    stats = fleet.network().cluster("local-2").run([sys.executable, "-c", code]).stdout
    values = dict(line.rsplit(": ", 1) for line in stats.splitlines() if ": " in line)
    streams = sum(int(v) for k, v in values.items() if k.endswith("ext_proc.streams_started"))
    assert streams >= 20, {k: v for k, v in values.items() if "ext_proc" in k}
    assert int(values[f"cluster.pool/{NS}/{POOL}.upstream_rq_total"]) >= 20


# --------------------------------------------------------------------------- routing (issue 14, e2e 2)
# On the surviving cluster (local-2, after the kill test; only its replicas answer through the URL), its
# pool grown to prefix_scenario.REPLICAS replicas: the EPP only chooses among the pods of its own cluster's
# pool, so the comparison needs them all in one cluster.


def _in_local2(plane):
    net = plane["fleet"].network().cluster("local-2")
    return lambda argv: net.run(argv).stdout


def _lb(plane) -> str:
    return prefix_scenario.pool_balancer(_in_local2(plane), sys.executable, NS, POOL)


def _epp_prefix_metrics(plane) -> list[str]:
    """The EPP's own view of prefix matches (GAIE ``prefix_indexer_{size,hit_ratio}``, its /metrics on the
    metrics port inside local-2's namespace; the one pool there is slot 0): diagnostics for the figures."""
    url = f"http://127.0.0.1:{epp.ports_for(0).metrics}/metrics"
    code = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=3).read().decode())"
    try:
        text = _in_local2(plane)([sys.executable, "-c", code])
    except subprocess.SubprocessError as exc:
        return [repr(exc)]
    return [ln for ln in text.splitlines() if "prefix_indexer" in ln and not ln.startswith("#") and "_bucket" not in ln]


def _set_routing(api, mode: str, **spec) -> None:
    inline = build_epp_config(MODES[mode], prefill=False, lora=False)
    api.patch(SVC_PATH, {"spec": {**spec, "router": {"scheduler": {"config": {"inline": inline}}}}})


def _ask(plane, text: str, timeout: float = 10.0):
    return chat(
        plane["fd_ip"],
        plane["hostname"],
        ca=plane["cert"],
        model="model",
        messages=[{"role": "user", "content": text}],
        max_tokens=prefix_scenario.workload().max_tokens,
        timeout=timeout,
    )


def _answers_from(plane, names: set[str], timeout: float) -> None:
    """Until requests through the URL have been answered by every replica in ``names`` (x-sky-replica)."""
    seen: set[str] = set()

    def probe():
        try:
            got = _ask(plane, "ping", timeout=3)
        except OSError:
            return False
        if got.status == 200:
            seen.add(got.replica)
        return names <= seen

    _wait(f"answers from {sorted(names)} (seen {sorted(seen)})", probe, timeout=timeout, interval=0.1)


def _run_prefix_workload(plane, tag: str) -> dict:
    """The shared-prefix workload through the URL; the hit rate from the simulators' own counters (their
    /metrics over HTTP on the pods' IPs, inside local-2's namespace) before and after."""
    w = prefix_scenario.workload()
    api = plane["fleet"].api("local-2")
    urls = sorted(f"http://{p['status']['podIP']}:8000" for p in ready_pods(api))
    assert len(urls) == w.replicas, urls
    run = _in_local2(plane)
    before, blocks = prefix_scenario.read_counters(run, sys.executable, urls)
    served: dict[int, list[str]] = {}
    for i, text in w.requests(tag):
        got = _ask(plane, text)
        assert got.status == 200, (got.status, got.error)
        served.setdefault(i, []).append(got.replica)
    after, _ = prefix_scenario.read_counters(run, sys.executable, urls)
    return {
        "hit_rate": round(prefix_scenario.hit_rate(before, after), 3),
        "kv_blocks": blocks,
        "per_replica": prefix_scenario.per_replica(before, after),
        "replicas_per_prefix": [len(set(r)) for _, r in sorted(served.items())],
    }


def _grow(api, mode: str) -> set[str]:
    """local-2's endpoint at the scenario's replica count with its KV cache sized by the pods' engine flags
    (``VLLM_ADDITIONAL_ARGS``, as the product renders engine args), routed by ``mode``; the Ready pods."""
    w = prefix_scenario.workload()
    flags = shlex.join(w.engine_flags())
    _set_routing(
        api,
        mode,
        replicas=w.replicas,
        template={"containers": [{"name": "main", "env": [{"name": "VLLM_ADDITIONAL_ARGS", "value": flags}]}]},
    )

    def sized():
        pods = ready_pods(api)
        envs = [{e["name"]: e.get("value") for e in p["spec"]["containers"][0].get("env", [])} for p in pods]
        return len(pods) == w.replicas and all(e.get("VLLM_ADDITIONAL_ARGS") == flags for e in envs) and pods

    pods = _wait(f"{w.replicas} Ready pods with the sized KV cache", sized, timeout=120)
    return {p["metadata"]["name"] for p in pods}


def test_kv_cache_aware_sends_a_shared_prefix_back_to_its_replica_more_often_than_round_robin(plane):
    """Same workload shape (prefix_scenario), new prefixes per mode, on 4 replicas of one pool: round robin
    (Envoy ROUND_ROBIN, as the local gateway renders it) spreads each prefix over the replicas and their LRU
    caches drop it; kv_cache_aware (the real GAIE EPP with KServe's weights) keeps it where it is cached."""
    w = prefix_scenario.workload()
    api = plane["fleet"].api("local-2")
    names = _grow(api, "round_robin")
    _wait("the gateway on ROUND_ROBIN", lambda: _lb(plane) == "ROUND_ROBIN", timeout=60)
    _answers_from(plane, names, timeout=60)
    rr = _run_prefix_workload(plane, "rr")
    assert set(rr["kv_blocks"].values()) == {w.kv_blocks}, rr  # the engines run with the cache the pods ask for

    _set_routing(api, "kv_cache_aware")
    _wait("the gateway on the EPP", lambda: _lb(plane) == "EPP", timeout=60)
    _answers_from(plane, names, timeout=120)  # the EPP has synced every pod of the pool
    kv = _run_prefix_workload(plane, "kv")
    kv["epp"] = _epp_prefix_metrics(plane)
    print(f"\nprefix hit rate: kv_cache_aware {kv}\nround_robin {rr}")
    assert kv["hit_rate"] >= 1.5 * rr["hit_rate"] and kv["hit_rate"] >= 0.5, (kv, rr)


def test_p2c_spreads_concurrent_requests_over_every_replica(plane):
    """p2c as the local gateway renders it (Envoy LEAST_REQUEST: two random choices, the less loaded wins),
    under concurrent requests: every replica serves, none takes most of the load (x-sky-replica)."""
    names = _grow(plane["fleet"].api("local-2"), "p2c")
    _wait("the gateway on LEAST_REQUEST", lambda: _lb(plane) == "LEAST_REQUEST", timeout=60)
    served: Counter[str] = Counter()
    errors: list[str] = []

    def client(k: int) -> None:
        for n in range(12):
            try:
                got = _ask(plane, f"p2c client {k} request {n}")
            except OSError as exc:
                errors.append(repr(exc))
                continue
            if got.status == 200:
                served[got.replica] += 1
            else:
                errors.append(f"HTTP {got.status}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(f"\np2c: {dict(served)}")
    assert not errors, errors
    assert set(served) == names, (served, names)
    assert max(served.values()) <= 0.6 * sum(served.values()), served
