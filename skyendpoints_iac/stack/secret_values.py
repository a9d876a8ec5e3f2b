"""Secret values for ``SecretSpec`` sources, always as ``pulumi.Output.secret`` so they are encrypted in
state and masked in logs.

- ``generated``: one value per endpoint (not per cluster), so every cluster behind the endpoint's URL
  accepts the same API key. Where it comes from is the stack config ``skyendpoints:apiKeySource``:

  - ``random`` (default): a ``pulumi_random.RandomPassword``.
  - ``seed``: ``HMAC-SHA256(skyendpoints:secretSeed, "<endpoint>/<secret>/<key>")``, the seed being an
    encrypted stack config secret. For engines without the ``pulumi-resource-random`` plugin: the local
    fleet's engine is built from Go modules, and the proxy serves no pulumi-random provider module
    (tools/README.md). ``sky endpoint up`` creates the seed when ``SKY_API_KEY_SOURCE=seed``; with
    ``pulumi up``, set it once: ``pulumi config set --secret skyendpoints:secretSeed "$(openssl rand -hex 32)"``.
    Changing the seed rotates every generated key.
- ``env:NAME``: read from the deploying machine's environment at program time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

import pulumi
import pulumi_random as random

from ..blueprint.model import SecretSpec
from ..errors import InvalidInput, Problem

GENERATED = "generated"
ENV_PREFIX = "env:"
API_KEY_LENGTH = 48
"""Alphanumeric only: keys travel in HTTP headers and shell commands unescaped."""
CONFIG_NAMESPACE = "skyendpoints"
API_KEY_SOURCE = "apiKeySource"
SECRET_SEED = "secretSeed"
KEY_SOURCES = ("random", "seed")
MIN_SEED_LENGTH = 32
SEED_OUTPUT = "sky_api_key_seed"
"""The seed as a secret stack output: the backend's copy. Stack config lives in each operator's workspace
(``Pulumi.<env>.yaml``), so a second operator's workspace has no seed; ``sky`` takes it from this output
instead of creating a new one, which would rotate every generated key (automation/engine.py)."""


def key_source() -> str:
    return pulumi.Config(CONFIG_NAMESPACE).get(API_KEY_SOURCE) or "random"


def _seed() -> pulumi.Output[str] | None:
    """The stack's seed (a secret Output) when generated keys derive from it, else None."""
    return pulumi.Config(CONFIG_NAMESPACE).get_secret(SECRET_SEED) if key_source() == "seed" else None


def export_seed() -> None:
    """Export the seed (secret, encrypted in state) when generated keys derive from it; see ``SEED_OUTPUT``."""
    seed = _seed()
    if seed is not None:
        pulumi.export(SEED_OUTPUT, seed)


def derive(seed: str, endpoint: str, secret: str, key: str) -> str:
    """A stable per-endpoint key from the stack's seed: hex, so alphanumeric like RandomPassword's."""
    return hmac.new(seed.encode(), f"{endpoint}/{secret}/{key}".encode(), hashlib.sha256).hexdigest()[:API_KEY_LENGTH]


def _config_problems(specs: list[SecretSpec]) -> list[Problem]:
    if not any(src == GENERATED for s in specs for src in s.sources.values()):
        return []
    source = key_source()
    where = f"{CONFIG_NAMESPACE}:{API_KEY_SOURCE}"
    if source not in KEY_SOURCES:
        return [Problem("<stack config>", None, None, where, f"'{source}' is not one of {', '.join(KEY_SOURCES)}")]
    seed = pulumi.Config(CONFIG_NAMESPACE).get(SECRET_SEED) if source == "seed" else None
    if source == "seed" and (seed is None or len(seed) < MIN_SEED_LENGTH):
        return [
            Problem(
                "<stack config>",
                None,
                None,
                f"{CONFIG_NAMESPACE}:{SECRET_SEED}",
                f"apiKeySource 'seed' needs a secret seed of at least {MIN_SEED_LENGTH} characters: "
                f'pulumi config set --secret {CONFIG_NAMESPACE}:{SECRET_SEED} "$(openssl rand -hex 32)"',
            )
        ]
    return []


SecretValues = dict[str, dict[str, pulumi.Output[str]]]
"""Secret name -> key -> secret value."""


def check_sources(endpoint: str, specs: Iterable[SecretSpec]) -> None:
    """Reject unknown sources and unset env vars up front, all at once, before anything is registered."""
    specs = list(specs)
    problems = _config_problems(specs)
    for s in specs:
        for key, source in s.sources.items():
            where = f"endpoint {endpoint}: secret {s.namespace}/{s.name} key '{key}'"
            if source == GENERATED:
                continue
            if source.startswith(ENV_PREFIX):
                var = source[len(ENV_PREFIX) :]
                if var not in os.environ:
                    problems.append(
                        Problem(
                            "<environment>",
                            None,
                            None,
                            var,
                            f"{where} reads ${var}, which is not set; export it before deploying",
                        )
                    )
            else:
                problems.append(
                    Problem(
                        "<blueprint>",
                        None,
                        None,
                        key,
                        f"{where}: unknown source '{source}' (expected 'generated' or 'env:NAME')",
                    )
                )
    if problems:
        raise InvalidInput(problems)


def resolve(prefix: str, specs: Iterable[SecretSpec], parent: pulumi.Resource) -> SecretValues:
    """One value per (secret name, key) across all clusters: ``<prefix>-<secret>-<key>`` for generated ones."""
    values: SecretValues = {}
    seed = _seed()
    for s in specs:
        bucket = values.setdefault(s.name, {})
        for key, source in sorted(s.sources.items()):
            if key in bucket:
                continue
            if source == GENERATED and seed is not None:
                bucket[key] = pulumi.Output.secret(seed.apply(lambda v, n=s.name, k=key: derive(v, prefix, n, k)))
            elif source == GENERATED:
                pw = random.RandomPassword(
                    f"{prefix}-{s.name}-{key}",
                    length=API_KEY_LENGTH,
                    special=False,
                    opts=pulumi.ResourceOptions(parent=parent),
                )
                bucket[key] = pulumi.Output.secret(pw.result)
            else:
                bucket[key] = pulumi.Output.secret(os.environ[source[len(ENV_PREFIX) :]])
    return values
