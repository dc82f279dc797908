"""OHIF Viewer on its own origin, pointed at dicomhub.

OHIF is a single-page application built ahead of time: the npm package
``@ohif/app`` ships it ready in ``dist/``. ``scripts/_setup.sh`` (``ensure_ohif``)
unpacks the version named in ``demo/ohif/VERSION`` into ``.cache/ohif/VERSION``;
``demo/ohif/server.py`` serves that folder with our own ``app-config.js``
(``demo/ohif/app-config.js``) in place of the package's.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
VERSION = (HERE / "VERSION").read_text().strip()
INSTALL_DIR = REPOSITORY / ".cache" / "ohif" / VERSION
APP_CONFIG = HERE / "app-config.js"


class OhifMissing(Exception):
    """OHIF's dist/ is not unpacked; the message says how to get it."""


def dist_dir() -> Path:
    """The unpacked ``dist/`` of @ohif/app at VERSION; OhifMissing when absent."""
    dist = INSTALL_DIR / "dist"
    if not (dist / "index.html").is_file():
        raise OhifMissing(
            f"OHIF Viewer {VERSION} is not installed in {INSTALL_DIR}; "
            "scripts/test and scripts/demo install it (ensure_ohif in "
            "scripts/_setup.sh, from the npm registry)"
        )
    return dist
