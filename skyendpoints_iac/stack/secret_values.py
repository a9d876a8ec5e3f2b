"""Secret values for ``SecretSpec`` sources, always as ``pulumi.Output.secret`` so they are encrypted in
state and masked in logs.

- ``generated``: a ``pulumi_random.RandomPassword``, created once per endpoint (not per cluster) so every
  cluster behind the endpoint's URL accepts the same API key.
- ``env:NAME``: read from the deploying machine's environment at program time.
"""

from __future__ import annotations

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

SecretValues = dict[str, dict[str, pulumi.Output[str]]]
"""Secret name -> key -> secret value."""


def check_sources(endpoint: str, specs: Iterable[SecretSpec]) -> None:
    """Reject unknown sources and unset env vars up front, all at once, before anything is registered."""
    problems = []
    for s in specs:
        for key, source in s.sources.items():
            where = f"endpoint {endpoint}: secret {s.namespace}/{s.name} key '{key}'"
            if source == GENERATED:
                continue
            if source.startswith(ENV_PREFIX):
                var = source[len(ENV_PREFIX):]
                if var not in os.environ:
                    problems.append(Problem("<environment>", None, None, var,
                                            f"{where} reads ${var}, which is not set; export it before deploying"))
            else:
                problems.append(Problem("<blueprint>", None, None, key,
                                        f"{where}: unknown source '{source}' (expected 'generated' or 'env:NAME')"))
    if problems:
        raise InvalidInput(problems)


def resolve(prefix: str, specs: Iterable[SecretSpec], parent: pulumi.Resource) -> SecretValues:
    """One value per (secret name, key) across all clusters: ``<prefix>-<secret>-<key>`` for generated ones."""
    values: SecretValues = {}
    for s in specs:
        bucket = values.setdefault(s.name, {})
        for key, source in sorted(s.sources.items()):
            if key in bucket:
                continue
            if source == GENERATED:
                pw = random.RandomPassword(f"{prefix}-{s.name}-{key}", length=API_KEY_LENGTH, special=False,
                                           opts=pulumi.ResourceOptions(parent=parent))
                bucket[key] = pulumi.Output.secret(pw.result)
            else:
                bucket[key] = pulumi.Output.secret(os.environ[source[len(ENV_PREFIX):]])
    return values
