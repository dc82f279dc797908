"""dicomhub's application for ASGI servers other than ``dicomhub serve``.

Granian (and any server that takes a factory) calls ``app()``; the settings come
from the environment alone (``DICOMHUB_SERVER_DATA_DIR`` and the other
``DICOMHUB_<TABLE>_<KEY>`` variables), and the log goes to stderr as under
``dicomhub serve``, so both servers do the same work per request.
"""

from __future__ import annotations

import logging
import sys

from starlette.types import ASGIApp

from dicomhub.app import create_app
from dicomhub.config import load_settings


def app() -> ASGIApp:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return create_app(load_settings())
