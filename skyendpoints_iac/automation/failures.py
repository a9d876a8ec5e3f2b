"""Turn a failed update into one screen: which cluster, which resource, why, and what to do next.

Built from the structured engine events the progress model collected (reliable) and, when the engine
failed before emitting any (bad backend, program error), from the CLI's stderr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .progress import ProgressModel

MAX_LINES = 12
"""One screen: beyond this the rest is counted, not printed."""

HINTS: tuple[tuple[str, str], ...] = (
    (
        r"connection refused|no such host|i/o timeout|unreachable|dial tcp|context deadline exceeded",
        "the cluster's API server is unreachable; if it stays down run 'sky endpoint reconcile' to move its replicas",
    ),
    (
        r"timed out waiting|timeout while waiting|Resource operation was cancelled",
        "objects were created but never became ready; check 'sky endpoint logs NAME --cluster C'",
    ),
    (
        r"already exists",
        "an object with that name exists outside this stack; remove it or adopt it, then run 'up' again",
    ),
    (
        r"no matches for kind|could not find the requested resource",
        "a CRD is missing on that cluster: its platform did not install; run 'up' again once the cause is fixed",
    ),
    (
        r"forbidden|Unauthorized|certificate",
        "the kubeconfig credentials for that cluster were rejected; check its context and token",
    ),
    (r"exceeded quota|Insufficient", "the cluster lacks capacity or quota for this request"),
    (
        r"no resource plugin|plugin .* not found|could not find plugin",
        "a Pulumi provider plugin is missing: put pulumi-resource-<name> next to the pulumi CLI "
        "(tools/build-local-fleet-bins.sh builds the kubernetes one) or install it with 'pulumi plugin install'",
    ),
    (
        r"passphrase|incorrect passphrase|failed to decrypt",
        "the state passphrase does not match the one the stack was created with (PULUMI_CONFIG_PASSPHRASE[_FILE])",
    ),
)


@dataclass(frozen=True)
class FailureLine:
    cluster: str
    slice: str
    resource: str
    why: str
    hint: str = ""


def hint_for(message: str) -> str:
    for pattern, hint in HINTS:
        if re.search(pattern, message, re.IGNORECASE):
            return hint
    return ""


def _first_meaningful(message: str) -> str:
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for ln in lines:
        if not ln.lower().startswith(("error: update failed", "resource ", "pulumi:pulumi:stack")):
            return ln
    return lines[0] if lines else "failed"


def collect(model: ProgressModel, stderr: str = "") -> list[FailureLine]:
    """Failed resources first (with their own error), then errors not tied to a resource."""
    out: list[FailureLine] = []
    seen: set[str] = set()
    for row in model.failed:
        why = _first_meaningful(row.error) if row.error else "operation failed"
        out.append(FailureLine(row.cluster, row.slice, f"{row.type} {row.name} ({row.op})", why, hint_for(row.error)))
        seen.add(row.urn)
    for urn, severity, message in model.diagnostics:
        if severity != "error" or (urn and urn in seen):
            continue
        if urn and urn in model.rows:
            row = model.rows[urn]
            out.append(
                FailureLine(
                    row.cluster, row.slice, f"{row.type} {row.name}", _first_meaningful(message), hint_for(message)
                )
            )
        elif not out or "update failed" not in message:
            why = _first_meaningful(message)
            # the engine often repeats a program error wrapped ("an unhandled error occurred: <same>")
            if not any(why in ln.why or ln.why in why for ln in out):
                out.append(FailureLine("-", "-", "(stack)", why, hint_for(message)))
    if not out and stderr:
        errors = [ln.strip() for ln in stderr.splitlines() if re.match(r"\s*error:", ln)]
        text = errors[0] if errors else _first_meaningful(stderr)
        out.append(FailureLine("-", "-", "(engine)", re.sub(r"^\s*error:\s*", "", text), hint_for(stderr)))
    return out


def render(lines: list[FailureLine], action: str = "update") -> str:
    """The one-screen message (plain text; the CLI prints it without markup)."""
    if not lines:
        return f"{action} failed (no details from the engine)"
    head = [f"{action} failed: {len(lines)} problem(s)"]
    for ln in lines[:MAX_LINES]:
        where = f"{ln.cluster}/{ln.slice}" if ln.cluster != "-" else "stack"
        head.append(f"  {where}: {ln.resource}: {ln.why}")
        if ln.hint:
            head.append(f"      -> {ln.hint}")
    if len(lines) > MAX_LINES:
        head.append(f"  ... and {len(lines) - MAX_LINES} more")
    if action.startswith("preview"):
        head.append("  Nothing was changed.")
    else:
        head.append("  The stack keeps what succeeded; fix the cause and run the same command again to repair it.")
    return "\n".join(head)
