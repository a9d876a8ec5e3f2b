"""Leader election for the control loop: a ``coordination.k8s.io/v1`` Lease, so two copies never act.

Run ``sky endpoint reconcile --watch --leader-elect`` in two places (two Deployment replicas on a
management cluster, or two laptops): both probe, only the holder of the Lease changes anything.

Semantics follow client-go's ``tools/leaderelection`` (kubernetes/client-go
``tools/leaderelection/leaderelection.go``): a candidate takes the Lease when it does not exist or when its
record has not changed for ``lease_seconds`` *as observed on the candidate's own clock* (so clock skew
between copies does not matter); every write is a ``replace`` carrying the ``resourceVersion`` just read, so
two candidates racing for an expired Lease cannot both win (the API server answers 409 to the loser).
The leader renews every ``retry_seconds`` from a background thread, also while an update runs; it counts
as leading only while its last successful renewal is younger than ``renew_deadline_seconds``
(< ``lease_seconds``), so a leader cut off from the Lease's API server stops acting before anyone else can
take over. (The ``kubernetes`` package's own ``leaderelection`` module ships only a ConfigMap lock and keeps
its callback thread running after leadership is lost, hence this small Lease elector.)
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str = "default"
    name: str = "skyendpoints-reconcile"
    lease_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_seconds: float = 2.0


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class LeaseElector:
    """``api`` is a ``kubernetes.client.CoordinationV1Api`` (or anything with its three Lease methods)."""

    def __init__(
        self,
        api: Any,
        settings: LeaseSettings = LeaseSettings(),
        identity: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.api, self.settings = api, settings
        self.identity = identity or default_identity()
        self.clock = clock
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        self.holder: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one attempt --------------------------------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        from kubernetes.client import V1Lease, V1LeaseSpec, V1ObjectMeta
        from kubernetes.client.rest import ApiException

        s = self.settings
        now = self.clock()
        stamp = dt.datetime.now(dt.timezone.utc)
        try:
            lease = self.api.read_namespaced_lease(s.name, s.namespace)
        except ApiException as exc:
            if exc.status != 404:
                return self._failed()
            body = V1Lease(
                metadata=V1ObjectMeta(name=s.name, namespace=s.namespace),
                spec=V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=int(s.lease_seconds),
                    acquire_time=stamp,
                    renew_time=stamp,
                    lease_transitions=0,
                ),
            )
            try:
                self.api.create_namespaced_lease(s.namespace, body)
            except ApiException:
                return self._failed()
            return self._won(now)
        spec = lease.spec
        record = (spec.holder_identity, spec.renew_time, spec.acquire_time, spec.lease_transitions)
        if record != self._observed:
            self._observed, self._observed_at = record, now
        self.holder = spec.holder_identity
        duration = float(spec.lease_duration_seconds or s.lease_seconds)
        held_by_other = spec.holder_identity not in (None, "", self.identity)
        if held_by_other and now - self._observed_at < duration:
            return self._failed()
        if spec.holder_identity != self.identity:
            spec.acquire_time = stamp
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity, spec.renew_time = self.identity, stamp
        spec.lease_duration_seconds = int(s.lease_seconds)
        try:  # carries the resourceVersion just read: a concurrent writer makes this a 409
            self.api.replace_namespaced_lease(s.name, s.namespace, lease)
        except ApiException:
            return self._failed()
        return self._won(now)

    def _won(self, now: float) -> bool:
        self._renewed_at, self.holder = now, self.identity
        return True

    def _failed(self) -> bool:
        return False

    @property
    def leading(self) -> bool:
        """Safe to act: we hold the Lease and renewed it within the renew deadline."""
        return (
            self._renewed_at is not None
            and self.holder == self.identity
            and self.clock() - self._renewed_at < self.settings.renew_deadline_seconds
        )

    # -- background renewal ---------------------------------------------------------------------------
    def start(self) -> None:
        """Keep trying to acquire / renew every ``retry_seconds`` in a daemon thread."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.try_acquire_or_renew()
                except Exception:  # a broken connection is a failed renewal, not a crash
                    pass
                self._stop.wait(self.settings.retry_seconds)

        self._thread = threading.Thread(target=loop, name="lease-elector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and, if we hold it, release the Lease (holder cleared) so a standby takes over now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.retry_seconds + 5)
        if self.leading:
            from kubernetes.client.rest import ApiException

            try:
                lease = self.api.read_namespaced_lease(self.settings.name, self.settings.namespace)
                if lease.spec.holder_identity == self.identity:
                    lease.spec.holder_identity = None
                    self.api.replace_namespaced_lease(self.settings.name, self.settings.namespace, lease)
            except ApiException:
                pass
        self._renewed_at = None


def lease_api(kubeconfig: str | None, context: str | None) -> Any:
    """CoordinationV1Api for the management cluster: in-cluster credentials when running in a pod and no
    kubeconfig is named, else the named kubeconfig/context (default: $KUBECONFIG's current context)."""
    from kubernetes import client, config

    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.CoordinationV1Api()
    return client.CoordinationV1Api(config.new_client_from_config(config_file=kubeconfig, context=context))
