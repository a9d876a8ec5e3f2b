"""Where the pinned upstream material lives: ``$SKY_SHARED_DIR``, else ``<repo>/../shared``.

It holds the upstream CRDs (``crds/``) and Helm values schemas (``chart-schemas/``) at the versions the
components catalogue pins. Schema validation and the local fleet's API-only charts read it; nothing from
it is copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SkyError


class UpstreamFilesMissing(SkyError):
    """An upstream file we need is not there (``../shared`` missing or incomplete)."""


def shared_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    path = Path(env["SKY_SHARED_DIR"]) if env.get("SKY_SHARED_DIR") else Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        raise UpstreamFilesMissing(
            f"{path} does not exist: the upstream CRDs and chart schemas are required "
            "(set SKY_SHARED_DIR to the folder holding crds/ and chart-schemas/)"
        )
    return path
