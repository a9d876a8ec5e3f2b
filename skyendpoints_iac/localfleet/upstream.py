"""Where the pinned upstream material lives for dev tooling: an explicit folder, else ``$SKY_SHARED_DIR``,
else ``<checkout>/../shared``.

It holds the upstream CRDs (``crds/``) and Helm values schemas (``chart-schemas/``) at the versions the
components catalogue pins. Only dev tooling reads it (the strict schema check in ``schemas.py``, the local
fleet's API-only stand-in charts in ``charts.py``, tests and benches); the installed product never does.
Nothing from it is copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SkyError

ENV_VAR = "SKY_SHARED_DIR"
CHECKOUT_DEFAULT = Path(__file__).resolve().parents[3] / "shared"
"""``<checkout>/../shared``: where a clone next to the shared folder finds it."""


class UpstreamFilesMissing(SkyError):
    """An upstream file we need is not there (the shared folder missing or incomplete)."""


def shared_dir(explicit: Path | None = None, environ: dict[str, str] | None = None) -> Path:
    """The upstream folder: ``explicit``, else ``$SKY_SHARED_DIR``, else ``<checkout>/../shared``.

    Raises ``UpstreamFilesMissing`` naming the folder tried and how to provide one.
    """
    env = os.environ if environ is None else environ
    if explicit is not None:
        path, how = Path(explicit), "the folder given"
    elif env.get(ENV_VAR):
        path, how = Path(env[ENV_VAR]), f"${ENV_VAR}"
    else:
        path, how = CHECKOUT_DEFAULT, f"the default (../shared next to the checkout; ${ENV_VAR} unset)"
    if not path.is_dir():
        raise UpstreamFilesMissing(
            f"{path} ({how}) does not exist: the pinned upstream CRDs and chart schemas are needed here. "
            f"Set {ENV_VAR} to a folder holding crds/ (the upstream CRD YAML files of the versions in components/) "
            "and chart-schemas/ (<chart>-<version>.values.schema.json)."
        )
    return path
