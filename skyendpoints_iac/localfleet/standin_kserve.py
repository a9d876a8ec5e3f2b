"""STAND-IN for the KServe llmisvc controller. DEV TOOLING (local fleet): used by tests/e2e and bench/, never by the product.

KServe's controller cannot run here (no container runtime). This stand-in does exactly one thing and
nothing else: for each LLMInferenceService it creates (and keeps at the right replica count) the
Deployment KServe would create for the main pool, ``<name>-kserve``, from ``spec.template`` and
``spec.replicas``, owned by the LLMInferenceService (so the real garbage collector removes it when the
service goes). It sets no status, creates no router, scheduler, Service or InferencePool, and does not
handle prefill pools or multi-node (LeaderWorkerSet) workloads. The real kube-controller-manager turns
the Deployment into pods, the real scheduler places them by GPU capacity and priority, and kwok marks
them Running.
"""

from __future__ import annotations

import threading
from typing import Any

from .api import ApiError
from .manager import LocalFleet

LLMISVC_PATH = "/apis/serving.kserve.io/v1alpha2/llminferenceservices"
WORKLOAD_LABELS = {"app.kubernetes.io/part-of": "llminferenceservice", "kserve.io/component": "workload"}
"""The labels KServe's workload pods carry (the platform's PodMonitor selects them)."""


PRESET_IMAGE = "standin.invalid/kserve-preset-vllm:from-llminferenceserviceconfig"
"""Real KServe merges the template with its preset LLMInferenceServiceConfig, which supplies the engine
image; the stand-in has no presets, so a container without an image gets this placeholder (never pulled:
kwok runs no container)."""


def deployment_for(svc: dict[str, Any]) -> dict[str, Any]:
    meta = svc["metadata"]
    spec = svc.get("spec") or {}
    template = dict(spec.get("template") or {})
    template["containers"] = [c if c.get("image") else {**c, "image": PRESET_IMAGE}
                              for c in template.get("containers") or [{"name": "main"}]]
    name = meta["name"]
    selector = {**WORKLOAD_LABELS, "app.kubernetes.io/name": name}
    pod_labels = {**(spec.get("labels") or {}), **selector}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{name}-kserve", "namespace": meta["namespace"], "labels": dict(pod_labels),
            "ownerReferences": [{"apiVersion": svc["apiVersion"], "kind": svc["kind"], "name": name,
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": pod_labels}, "spec": template},
        },
    }


class StandInKServe:
    """Polls every live cluster of the fleet; one background thread."""

    def __init__(self, fleet: LocalFleet, interval: float = 0.5):
        self.fleet = fleet
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="standin-kserve", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> "StandInKServe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name in self.fleet.cluster_names:
                try:
                    self.sync(name)
                except (ApiError, OSError) as exc:  # a killed cluster: expected, just skip it
                    if isinstance(exc, ApiError) and exc.status not in (404, 503):
                        self.errors.append(f"{name}: {exc}")

    def sync(self, cluster: str) -> None:
        api = self.fleet.api(cluster)
        try:
            services = api.items(LLMISVC_PATH)
        except ApiError as exc:
            if exc.status == 404:  # CRD not installed yet
                return
            raise
        for svc in services:
            if svc["metadata"].get("deletionTimestamp"):
                continue
            want = deployment_for(svc)
            ns, dname = want["metadata"]["namespace"], want["metadata"]["name"]
            path = f"/apis/apps/v1/namespaces/{ns}/deployments"
            try:
                have = api.get(f"{path}/{dname}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                api.post(path, want)
                continue
            if have["spec"].get("replicas") != want["spec"]["replicas"] or \
                    have["spec"]["template"]["spec"] != _defaulted(have, want):
                api.patch(f"{path}/{dname}", {"spec": {"replicas": want["spec"]["replicas"],
                                                       "template": want["spec"]["template"]}})


def _defaulted(have: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """Compare templates only on the fields we set (the API server adds defaults to the stored one)."""
    stored = have["spec"]["template"]["spec"]
    wanted = want["spec"]["template"]["spec"]
    same = all(_subset(wanted.get(k), stored.get(k)) for k in wanted)
    return stored if same else wanted


def _subset(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and all(_subset(v, b.get(k)) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_subset(x, y) for x, y in zip(a, b))
    return a == b
