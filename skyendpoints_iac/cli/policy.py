"""``sky policy check`` (rendered manifests against the policy rules) and ``sky policy rules``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..errors import EXIT_FAILURE, InvalidInput, Problem
from .app import err, out, policy_app

_CONFIG_HELP = "Policy config JSON, the same file 'pulumi preview --policy-pack-config' takes."
_FLEET_HELP = "Fleet file: takes each cluster's accelerator_label and gpu_taint into the GPU rules' settings."


def _settings(config: Path | None, fleet: Path | None) -> tuple[dict, str]:
    """The policy config: fleet-derived settings, overlaid by the --config file."""
    from ..policy import load_config_file
    from ..policy.fleetconfig import fleet_policy_config, merge
    from ..spec import load_fleet

    base = fleet_policy_config(load_fleet(fleet)) if fleet is not None else {}
    user = load_config_file(config) if config is not None else {}
    source = " + ".join(str(p) for p in (fleet, config) if p is not None) or "policy config"
    return merge(base, user), source


@policy_app.command("check")
def check_cmd(
    directory: Path = typer.Argument(
        ..., metavar="DIR", help="Output folder of 'sky endpoint render'.", show_default=False
    ),
    config: Path | None = typer.Option(None, "--config", metavar="CONFIG", help=_CONFIG_HELP, show_default=False),
    fleet: Path | None = typer.Option(None, "--fleet", metavar="FLEET", help=_FLEET_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: violations and counts."),
) -> None:
    """Check rendered manifests against the GPU, TLS, auth and secret rules, offline.

    Prints one line per violation: LEVEL rule-name cluster/kind/namespace/name: message.
    Exit 1 when a mandatory rule is violated, 0 otherwise (advisory findings only), 2 for unreadable input.

    Examples:

      sky endpoint render examples/glm-prod.yaml --fleet examples/fleet.yaml --out rendered/

      sky policy check rendered/ --fleet examples/fleet.yaml

      sky policy check rendered/ --config policy-config.json
    """
    from ..policy import RuleCrashed, evaluate, has_mandatory, resolve
    from ..policy.rendered import load_rendered

    settings, source = _settings(config, fleet)
    configs = resolve(settings, source=source)
    rendered = load_rendered(directory)
    try:
        violations = evaluate(rendered.objects, configs)
    except RuleCrashed as exc:
        raise InvalidInput([Problem(str(directory), None, None, "", str(exc))]) from None
    mandatory = sum(v.level == "mandatory" for v in violations)
    charts = sum(len(c) for c in rendered.charts.values())
    if as_json:
        import json

        doc = {
            "ok": not has_mandatory(violations),
            "objects": len(rendered.objects),
            "clusters": rendered.clusters,
            "chart_releases": charts,
            "mandatory": mandatory,
            "advisory": len(violations) - mandatory,
            "violations": [
                {"level": v.level, "rule": v.rule, "where": v.where, "message": v.message} for v in violations
            ],
        }
        out.file.write(json.dumps(doc, indent=2) + "\n")
        if has_mandatory(violations):
            raise typer.Exit(EXIT_FAILURE)
        return
    for violation in violations:
        out.print(violation.line(), markup=False)
    err.print(
        f"{len(rendered.objects)} objects in {len(rendered.clusters)} folders checked "
        f"({charts} chart releases: their objects are checked by the Pulumi policy pack); "
        f"{mandatory} mandatory, {len(violations) - mandatory} advisory violations",
        markup=False,
    )
    if has_mandatory(violations):
        raise typer.Exit(EXIT_FAILURE)


@policy_app.command("config")
def config_cmd(
    fleet: Path | None = typer.Option(None, "--fleet", metavar="FLEET", help=_FLEET_HELP, show_default=False),
    config: Path | None = typer.Option(
        None, "--config", metavar="CONFIG", help="Settings to lay over the fleet's.", show_default=False
    ),
) -> None:
    """Print the policy config JSON (fleet-derived settings plus --config) for pulumi --policy-pack-config.

    The output is checked against every rule's config schema before it is printed.

    Examples:

      sky policy config --fleet examples/fleet.yaml > policy-config.json

      pulumi preview --policy-pack "$(sky policy pack-path)" --policy-pack-config policy-config.json
    """
    import json

    from ..policy import resolve

    settings, source = _settings(config, fleet)
    resolve(settings, source=source)
    out.file.write(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _default_pack_dir() -> Path:
    """``<cache>/skyendpoints/policy-pack/<version>-<environment hash>``: one pack per installation."""
    import hashlib
    import os
    import sys

    from .. import __version__

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]
    return cache / "skyendpoints" / "policy-pack" / f"{__version__}-{env}"


@policy_app.command("pack-path")
def pack_path_cmd(
    directory: Path | None = typer.Option(
        None,
        "--dir",
        metavar="DIR",
        show_default=False,
        help="Write the pack here (default: a folder in the user cache).",
    ),
    shim: Path | None = typer.Option(
        None,
        "--shim",
        metavar="FILE",
        show_default=False,
        help="The pulumi-analyzer-policy-python shim: link it into the pack and "
        "print the link (binary-analyzer form, no pulumi-language-python).",
    ),
) -> None:
    """Write the CrossGuard pack for this installation and print what to pass to --policy-pack.

    The pack (the same rules as 'sky policy check') runs in this Python environment: its
    PulumiPolicy.yaml names it as the virtualenv, so it works from an installed package as from a checkout.

    Examples:

      pulumi preview --policy-pack "$(sky policy pack-path)"

      pulumi preview --policy-pack "$(sky policy pack-path --shim $BIN/pulumi-analyzer-policy-python)"
    """
    import sys

    from .. import __version__
    from ..packaged import write_policy_pack

    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    out.print(str(write_policy_pack(directory or _default_pack_dir(), __version__, venv, shim)), markup=False)


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
