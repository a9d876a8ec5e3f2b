"""``sky policy check`` (rendered manifests against the policy rules) and ``sky policy rules``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import EXIT_FAILURE, InvalidInput, Problem
from .app import err, out, policy_app


@policy_app.command("check")
def check_cmd(
    directory: Path = typer.Argument(..., help="Output folder of 'sky endpoint render'.", show_default=False),
    config: Optional[Path] = typer.Option(
        None, "--config", help="Policy config JSON, the same file 'pulumi preview --policy-pack-config' takes.",
        show_default=False),
) -> None:
    """Check rendered manifests against the GPU, TLS, auth and secret rules, offline.

    Prints one line per violation: LEVEL rule-name cluster/kind/namespace/name: message.
    Exit 1 when a mandatory rule is violated, 0 otherwise (advisory findings only), 2 for unreadable input.

    Examples:

      sky endpoint render examples/glm-prod.yaml --fleet examples/fleet.yaml --out rendered/

      sky policy check rendered/

      sky policy check rendered/ --config policy-config.json
    """
    from ..policy import RuleCrashed, evaluate, has_mandatory, load_config_file, resolve
    from ..policy.rendered import load_rendered

    settings = load_config_file(config) if config is not None else {}
    configs = resolve(settings, source=str(config) if config is not None else "policy config")
    rendered = load_rendered(directory)
    try:
        violations = evaluate(rendered.objects, configs)
    except RuleCrashed as exc:
        raise InvalidInput([Problem(str(directory), None, None, "", str(exc))]) from None
    for violation in violations:
        out.print(violation.line(), markup=False)
    mandatory = sum(v.level == "mandatory" for v in violations)
    charts = sum(len(c) for c in rendered.charts.values())
    err.print(f"{len(rendered.objects)} objects in {len(rendered.clusters)} folders checked "
              f"({charts} chart releases: their objects are checked by the Pulumi policy pack); "
              f"{mandatory} mandatory, {len(violations) - mandatory} advisory violations", markup=False)
    if has_mandatory(violations):
        raise typer.Exit(EXIT_FAILURE)


@policy_app.command("rules")
def rules_cmd() -> None:
    """List the policy rules: name, scope, default enforcement level, severity and settings.

    Examples:

      sky policy rules
    """
    from ..policy import RULES

    table = Table(title="policy rules")
    for col in ("rule", "scope", "level", "severity", "settings (defaults)", "description"):
        table.add_column(col)
    for rule in RULES:
        settings = "\n".join(f"{k}={v}" for k, v in rule.defaults().items())
        table.add_row(rule.name, rule.scope, rule.enforcement, rule.severity, settings, rule.description)
    out.print(table)
