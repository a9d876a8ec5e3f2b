"""One engine simulator per running serving pod of a cluster: started on the pod's IP and engine port, stopped
when the pod goes away. And the kubelet's readiness prober for those pods. DEV TOOLING (local fleet).

Readiness works as on a real node: kwok starts a pod whose containers declare a ``readinessProbe`` with
``Ready=False`` (``localfleet/stages.yaml``, stage ``pod-ready``); the runner performs the main container's
``httpGet`` probe against the pod's simulator and, once it answers 200, sets the pod's ``Ready`` and
``ContainersReady`` conditions (the status subresource, as the kubelet's prober does). So a pod is Ready
only once its engine serves, and nothing that routes by readiness (the EPP, the gateway, the front door's
weights) sends a request to an engine that is still starting. KServe's vLLM preset probes ``/health`` on
the engine port (``config-llm-template.yaml``, serving-facts.md §2); the product renders the same probe
for SGLang and custom engines (``blueprint/serving._http_probes``).

Usage::

    runner = SimulatorRunner(fleet.api("local-1"), spawn=net.spawn_for("local-1"), log_dir=state / "sims",
                             sim_args=["--ttft-ms", "20", "--itl-ms", "5"])
    runner.start()            # a background thread polls the API server every ``interval`` seconds
    runner.simulators()       # {"ns/pod": Simulator(host, port, served names, pid)}
    runner.stop()             # stops the thread and every simulator it started

- ``api``: anything with ``items(path)`` and ``get(path)`` like ``localfleet.api.Api`` (the cluster's API
  server). Pods are listed with ``app.kubernetes.io/part-of=llminferenceservice`` and kept when their
  ``app.kubernetes.io/component`` is a KServe workload value (``llminferenceservice-workload*``, KServe
  v0.20.0 ``pkg/controller/v1alpha2/llmisvc/workload_single_node.go``, ``workload.go``) or they carry the
  InferencePool's ``kserve.io/component=workload``; multi-node workers other than the leader are skipped.
- ``spawn(argv, log_path) -> subprocess.Popen``: how a process starts. The default is a plain ``Popen``
  (a pod IP is then only bindable when it is local, e.g. inside the cluster's network namespace, which
  ``localfleet.netns`` provides with its own ``spawn``). The pid of the Popen must be the simulator's.
- What runs comes from the pod spec, as the engine would read it: the main container's ``vllm serve
  <model>`` (also inside KServe's ``/bin/bash -c`` entrypoint script, with ``$VLLM_ADDITIONAL_ARGS``
  expanded from the container's env), or ``python3 -m sglang.launch_server --model-path``; a vLLM
  container without a command gets what KServe's preset ``config-llm-template.yaml`` runs (``vllm serve
  /mnt/models --served-model-name <service> --port 8000 $VLLM_ADDITIONAL_ARGS``; 8001 on P/D decode pods
  behind the routing sidecar, serving-facts.md §2). Recognised engine flags: served model name, port,
  ``--max-num-seqs``, ``--block-size``, ``--max-model-len``, ``--num-gpu-blocks-override``, ``--api-key`` (SGLang: ``--max-running-requests``,
  ``--page-size``, ``--context-length``). An API key (flag, or ``VLLM_API_KEY`` from a literal or a Secret)
  reaches the simulator in a 0600 file, never on its command line.
"""

from __future__ import annotations

import base64
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...blueprint.engines import ENGINE_PORT, ENGINE_TYPE_LABEL, PD_DECODE_ENGINE_PORT
from ...blueprint.names import LABEL_ENGINE
from ..api import ApiError

Spawn = Callable[[Sequence[str], Path], subprocess.Popen]

POD_SELECTOR = "app.kubernetes.io/part-of=llminferenceservice"
COMPONENT_LABEL = "app.kubernetes.io/component"
WORKLOAD_COMPONENT = "llminferenceservice-workload"
POOL_LABEL = ("kserve.io/component", "workload")
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
ROUTING_SIDECAR = "llm-d-routing-sidecar"
PRESET_MODEL_PATH = "/mnt/models"
API_KEY_ENV = "VLLM_API_KEY"
MAIN_CONTAINER = "main"


class ApiLike(Protocol):
    def items(self, path: str) -> list[dict[str, Any]]: ...
    def get(self, path: str, **kw: Any) -> Any: ...
    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any: ...


Probe = Callable[[str], bool]
"""``probe(url) -> passed``: one HTTP GET, True on a 2xx/3xx answer (the kubelet's httpGet success)."""


def http_probe(url: str, timeout: float = 1.0) -> bool:
    """The kubelet's httpGet probe from this process's network namespace."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 400
    except (OSError, ValueError):
        return False


def default_spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


# --------------------------------------------------------------------------- reading the pod


def is_serving_pod(pod: dict[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if labels.get(WORKER_INDEX_LABEL, "0") != "0":
        return False
    return labels.get(COMPONENT_LABEL, "").startswith(WORKLOAD_COMPONENT) or labels.get(POOL_LABEL[0]) == POOL_LABEL[1]


def pod_running(pod: dict[str, Any]) -> bool:
    """Its containers run (phase Running, an IP, not being deleted): its engine should be up."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP"))


def pod_ready(pod: dict[str, Any]) -> bool:
    return pod_running(pod) and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def readiness_url(pod: dict[str, Any]) -> str | None:
    """The URL the main container's ``readinessProbe.httpGet`` checks, or None without one. A named port
    resolves through the container's ports, as the kubelet resolves it."""
    containers = (pod.get("spec") or {}).get("containers") or []
    main = next((c for c in containers if c.get("name") == MAIN_CONTAINER), containers[0] if containers else {})
    get = (main.get("readinessProbe") or {}).get("httpGet")
    if not get:
        return None
    port = get.get("port")
    if isinstance(port, str) and not port.isdigit():
        port = next((p.get("containerPort") for p in main.get("ports") or [] if p.get("name") == port), None)
    if port is None:
        return None
    scheme = str(get.get("scheme") or "HTTP").lower()
    path = get.get("path") or "/"
    return (
        f"{scheme}://{(pod.get('status') or {}).get('podIP')}:{int(port)}{path if path.startswith('/') else '/' + path}"
    )


def _has_readiness_probe(pod: dict[str, Any]) -> bool:
    return any(c.get("readinessProbe") for c in (pod.get("spec") or {}).get("containers") or [])


@dataclass(frozen=True)
class Launch:
    """What one pod's engine is: enough to start (and to compare) its simulator."""

    host: str
    port: int
    model: str
    served_names: tuple[str, ...]
    engine: str = "vllm"
    options: tuple[tuple[str, str], ...] = ()
    api_key: str | None = field(default=None, repr=False)


_VLLM_OPTIONS = {
    "--max-num-seqs": "--max-num-seqs",
    "--block-size": "--block-size",
    "--max-model-len": "--max-model-len",
    "--num-gpu-blocks-override": "--kv-blocks",
}
"""vLLM flag -> simulator flag. ``--num-gpu-blocks-override`` is vLLM's KV-cache size in blocks
(vllm/engine/arg_utils.py, ``EngineArgs.num_gpu_blocks_override``): the simulator's ``--kv-blocks``."""
_SGLANG_OPTIONS = {
    "--max-running-requests": "--max-num-seqs",
    "--page-size": "--block-size",
    "--context-length": "--max-model-len",
}


def _flags(tokens: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(positionals, {--flag: [values]}) from an argparse-style command line; ``--a=b`` and ``--a b c``."""
    positional: list[str] = []
    flags: dict[str, list[str]] = {}
    current: str | None = None
    for tok in tokens:
        if tok.startswith("--"):
            name, eq, value = tok.partition("=")
            flags[name] = [value] if eq else []
            current = None if eq else name
        elif current is not None:
            flags[current].append(tok)
        else:
            positional.append(tok)
    return positional, flags


_VAR = re.compile(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+|@)")


def _expand(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2) or "", ""), text)


def _engine_tokens(container: dict[str, Any], env: dict[str, str]) -> tuple[str, list[str]] | None:
    """("vllm"|"sglang", the tokens after the engine's entry point) from the container's command line."""
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    if not argv:
        return None
    texts: list[str] = []
    if len(argv) >= 2 and argv[1] == "-c" and argv[0].rsplit("/", 1)[-1] in ("sh", "bash"):
        texts = [line for part in argv[2:] for line in part.splitlines()]  # an entrypoint script
    else:
        texts = [shlex.join(argv)]
    for line in texts:
        for marker, engine in (
            ("vllm serve", "vllm"),
            ("vllm.entrypoints.openai.api_server", "vllm"),
            ("sglang.launch_server", "sglang"),
        ):
            at = line.find(marker)
            if at < 0:
                continue
            rest = _expand(line[at + len(marker) :].rstrip().rstrip('"'), env)
            try:
                return engine, shlex.split(rest)
            except ValueError:
                return engine, rest.split()
    return None


def launch_for(pod: dict[str, Any], secret: Callable[[str, str, str], str | None]) -> Launch | None:
    """The simulator a Ready serving pod needs, or None when its main container runs no known engine.

    ``secret(namespace, name, key)`` reads one Secret value (for env ``valueFrom.secretKeyRef``).
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    labels = meta.get("labels") or {}
    containers = spec.get("containers") or []
    main = next((c for c in containers if c.get("name") == MAIN_CONTAINER), containers[0] if containers else None)
    if main is None:
        return None
    env: dict[str, str] = {}
    for e in main.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif ((e.get("valueFrom") or {}).get("secretKeyRef")) and e["name"] == API_KEY_ENV:
            ref = e["valueFrom"]["secretKeyRef"]
            value = secret(meta.get("namespace", "default"), ref["name"], ref["key"])
            if value is not None:
                env[e["name"]] = value
    parsed = _engine_tokens(main, env)
    sidecar = any(c.get("name") == ROUTING_SIDECAR for c in [*containers, *(spec.get("initContainers") or [])])
    if parsed is None:
        if main.get("command") or labels.get(LABEL_ENGINE, "vllm") != "vllm":
            return None  # a custom entry point we cannot read
        # No command: KServe's preset supplies it (config-llm-template.yaml / config-llm-decode-template.yaml).
        port = PD_DECODE_ENGINE_PORT if sidecar else ENGINE_PORT
        preset = (
            f"{PRESET_MODEL_PATH} --served-model-name {shlex.quote(labels.get('app.kubernetes.io/name', ''))} "
            f"--port {port} {env.get('VLLM_ADDITIONAL_ARGS', '')}"
        )
        parsed = ("vllm", shlex.split(preset))
    engine, tokens = parsed
    if labels.get(ENGINE_TYPE_LABEL) == "sglang" or labels.get(LABEL_ENGINE) == "sglang":
        engine = "sglang"
    positional, flags = _flags(tokens)
    if engine == "sglang":
        model = (flags.get("--model-path") or flags.get("--model") or [""])[0]
        table = _SGLANG_OPTIONS
    else:
        model = positional[0] if positional else (flags.get("--model") or [""])[0]
        table = _VLLM_OPTIONS
    served = tuple(v for v in flags.get("--served-model-name", []) if v) or ((model,) if model else ())
    if not served:
        return None
    default_port = PD_DECODE_ENGINE_PORT if sidecar and engine == "vllm" else ENGINE_PORT
    port = int((flags.get("--port") or [str(default_port)])[0])
    options = tuple((ours, flags[theirs][0]) for theirs, ours in table.items() if flags.get(theirs))
    api_key = (flags.get("--api-key") or [None])[0] or env.get(API_KEY_ENV) or None
    return Launch(
        host=(pod.get("status") or {})["podIP"],
        port=port,
        model=model or served[0],
        served_names=served,
        engine=engine,
        options=options,
        api_key=api_key,
    )


# --------------------------------------------------------------------------- the runner


@dataclass
class Simulator:
    pod: str
    launch: Launch
    proc: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://{self.launch.host}:{self.launch.port}"


class SimulatorRunner:
    """Keeps one simulator per running serving pod of one cluster, and marks the pod Ready once its
    readiness probe passes (see the module docstring)."""

    def __init__(
        self,
        api: ApiLike,
        spawn: Spawn | None = None,
        log_dir: Path | str = ".",
        *,
        sim_args: Sequence[str] = (),
        python: str = sys.executable,
        interval: float = 0.5,
        restart_after: float = 2.0,
        probe: Probe | None = None,
    ):
        self.api = api
        self.spawn = spawn or default_spawn
        self.probe = probe or http_probe
        self.log_dir = Path(log_dir)
        self.sim_args = list(sim_args)
        self.python = python
        self.interval = interval
        self.restart_after = restart_after
        self.errors: list[str] = []
        self._sims: dict[str, Simulator] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> SimulatorRunner:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="enginesim-runner", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            for key in list(self._sims):
                self._terminate(key)

    def __enter__(self) -> SimulatorRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def simulators(self) -> dict[str, Simulator]:
        with self._lock:
            return {k: s for k, s in self._sims.items() if s.proc.poll() is None}

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except (ApiError, OSError) as exc:  # API server down (a killed cluster): keep what runs, retry
                self._note(f"sync: {exc}")
            self._stop.wait(self.interval)

    # -- one reconciliation -------------------------------------------------------------------------------
    def sync(self) -> None:
        pods = self.api.items("/api/v1/pods?labelSelector=" + urllib.parse.quote(POD_SELECTOR, safe=""))
        want: dict[str, Launch] = {}
        unready: dict[str, dict[str, Any]] = {}
        for pod in pods:
            if not (is_serving_pod(pod) and pod_running(pod)):
                continue
            meta = pod["metadata"]
            key = f"{meta.get('namespace', 'default')}/{meta['name']}"
            try:
                launch = launch_for(pod, self._secret)
            except (ApiError, ValueError, KeyError) as exc:
                self._note(f"{key}: {exc}")
                continue
            if launch is not None:
                want[key] = launch
                if _has_readiness_probe(pod) and not pod_ready(pod):
                    unready[key] = pod
        with self._lock:
            for key in [k for k in self._sims if k not in want or self._sims[k].launch != want[k]]:
                self._terminate(key)
            for key, launch in want.items():
                sim = self._sims.get(key)
                if sim is not None and sim.proc.poll() is not None:
                    if time.monotonic() - sim.started < self.restart_after:
                        continue  # died just now: do not spin
                    self._note(f"{key}: simulator exited with {sim.proc.returncode}; restarting (log {sim.log})")
                    self._terminate(key)
                if key not in self._sims:
                    self._sims[key] = self._launch(key, launch)
        for key, pod in unready.items():
            url = readiness_url(pod)
            if url is None:
                self._note(f"{key}: readinessProbe is not an httpGet on a known port; the pod stays unready")
            elif self.probe(url):
                self._mark_ready(pod)

    def _mark_ready(self, pod: dict[str, Any]) -> None:
        """What the kubelet writes when a pod's readiness probes pass: ``Ready`` and ``ContainersReady``
        True, every container ready (strategic merge: conditions by type, container statuses by name)."""
        meta = pod["metadata"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = {
            "status": {
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now} for t in ("Ready", "ContainersReady")
                ],
                "containerStatuses": [{"name": c["name"], "ready": True} for c in pod["spec"]["containers"]],
            }
        }
        self.api.request(
            "PATCH",
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
            body,
            content_type="application/strategic-merge-patch+json",
        )

    def _secret(self, namespace: str, name: str, key: str) -> str | None:
        try:
            data = (self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}") or {}).get("data") or {}
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return base64.b64decode(data[key]).decode() if key in data else None

    def argv(self, key: str, launch: Launch) -> list[str]:
        argv = [
            self.python,
            "-m",
            "skyendpoints_iac.localfleet.enginesim",
            "--host",
            launch.host,
            "--port",
            str(launch.port),
            "--model",
            launch.model,
            "--served-model-name",
            *launch.served_names,
            "--replica",
            key.split("/", 1)[1],
            "--engine",
            launch.engine,
        ]
        for flag, value in launch.options:
            argv += [flag, value]
        if launch.api_key:
            argv += ["--api-key-file", str(self._key_file(key, launch.api_key))]
        return argv + self.sim_args

    def _key_file(self, key: str, value: str) -> Path:
        path = self.log_dir / "keys" / (key.replace("/", "_") + ".key")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(value)
        return path

    def _launch(self, key: str, launch: Launch) -> Simulator:
        log = self.log_dir / (key.replace("/", "_") + ".log")
        proc = self.spawn(self.argv(key, launch), log)
        return Simulator(pod=key, launch=launch, proc=proc, log=log)

    def _terminate(self, key: str) -> None:
        sim = self._sims.pop(key)
        if sim.proc.poll() is None:
            sim.proc.terminate()
            try:
                sim.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sim.proc.kill()
                sim.proc.wait(timeout=5)
        (self.log_dir / "keys" / (key.replace("/", "_") + ".key")).unlink(missing_ok=True)

    def _note(self, message: str) -> None:
        self.errors.append(message)
        del self.errors[:-100]
