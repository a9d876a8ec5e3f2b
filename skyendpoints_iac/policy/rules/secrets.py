"""Secret rule: env vars named like a credential come from a Secret, never inline.

Why: an inline ``HF_TOKEN`` ends up in Pulumi state, rendered manifests, ``kubectl get -o yaml`` and
every log that prints the pod spec. The name pattern is the one spec validation uses
(``SECRET_LIKE_ENV_NAME``), so the spec and the policy agree on what counts as a credential.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...spec.common import SECRET_LIKE_ENV_NAME
from ..model import Obj, Rule
from ..workloads import as_list, container_label, containers, pod_specs


def check_secret_env(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    allowed = set(cfg["allowedNames"])
    for ref in pod_specs(obj):
        for path, container in containers(ref.spec):
            for env in as_list(container.get("env")):
                if not isinstance(env, Mapping):
                    continue
                name = str(env.get("name") or "")
                if name in allowed or not SECRET_LIKE_ENV_NAME.search(name):
                    continue
                value_from = env.get("valueFrom")
                if isinstance(value_from, Mapping) and value_from.get("secretKeyRef"):
                    continue
                who = f"{ref.path}: {container_label(path, container)} env {name}"
                if "value" in env:
                    # Never echo the value: it may be the secret itself.
                    yield f"{who} carries an inline value; take it from valueFrom.secretKeyRef"
                elif isinstance(value_from, Mapping) and value_from:
                    source = next(iter(value_from))
                    yield f"{who} comes from valueFrom.{source}; take it from valueFrom.secretKeyRef"


RULES = [
    Rule(
        name="secret-env-from-secret-ref",
        description="Container env vars named like a token or key (HF_TOKEN, *_API_KEY, ...) come from "
        "valueFrom.secretKeyRef, never an inline value.",
        severity="critical",
        enforcement="mandatory",
        scope="resource",
        check=check_secret_env,
        config={
            "allowedNames": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Env var names exempt from the rule (not credentials despite the name).",
            }
        },
        remediation="Move the value into a Secret and reference it with valueFrom.secretKeyRef "
        "(in an endpoint spec: engine.secret_env or hf_token).",
    ),
]
