"""The only place that touches private Pulumi SDK names. Each use says why no public API does the job, and
``tests/unit/stack/test_sdk_internals.py`` fails as soon as an SDK upgrade moves or changes one of them
(pyproject pins pulumi to one minor series for that reason).

- ``start_callback_server``: the SDK starts its transform callback server lazily and keeps it in a context
  variable that each registration task copies, so without starting it once in the program's own context
  every transform-carrying resource starts its own gRPC server (measured: one per chart; bench/program.py).
  There is no public way to start it (``pulumi.runtime.settings._get_callbacks``, ``sync_await._sync_await``).
- ``WIRE_SIG_KEY`` / ``WIRE_SECRET_SIG``: how a secret looks on the wire (``{sig: secret-sig, "value": ...}``),
  read by the mock runner to prove secrets reach the engine as secrets. They are protocol constants
  (pulumi-policy exports the same values publicly as ``pulumi_policy.deserialize.SPECIAL_SIG_KEY`` and
  ``SPECIAL_SECRET_SIG``; the test checks the two agree); the Python SDK keeps them private in
  ``pulumi.runtime.rpc``.
"""

from __future__ import annotations

from pulumi.runtime import rpc

WIRE_SIG_KEY: str = rpc._special_sig_key
WIRE_SECRET_SIG: str = rpc._special_secret_sig


def start_callback_server() -> bool:
    """Start the SDK's transform callback server once, in the calling program's context. Returns whether it
    is running. An optimisation only: if the SDK refuses, it starts the server itself when a transform needs
    it, so a failure here costs speed, never correctness (the test catches an SDK change up front)."""
    from pulumi.runtime import settings
    from pulumi.runtime.sync_await import _sync_await

    try:
        settings.SETTINGS.callbacks = _sync_await(settings._get_callbacks())
    except Exception:  # e.g. no monitor yet; see the docstring
        return False
    return settings.SETTINGS.callbacks is not None
