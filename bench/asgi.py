"""ASGI applications for servers other than ``dicomhub serve``.

``app``: dicomhub itself, for granian (and any server that takes a factory);
the settings come from the environment alone (``DICOMHUB_SERVER_DATA_DIR`` and
the other ``DICOMHUB_<TABLE>_<KEY>`` variables), and the log goes to stderr as
under ``dicomhub serve``, so both servers do the same work per request.

``bare``: the floor of a request under an ASGI server: 204 No Content, no
header of its own, no body, whatever the method and path. What a server
answers faster than this is beyond any application's reach.

``cors_bare``: ``bare`` behind dicomhub's CORS layer, with the ``[cors]``
settings of the environment: what the CORS layer alone adds to the floor; a
preflight is answered by the layer and never reaches ``bare``.

``logged_bare``: ``bare`` behind dicomhub's access-log layer, with the log
configured as ``dicomhub serve`` configures it: what one log line a request
adds to the floor.
"""

from __future__ import annotations

import logging
import sys

from starlette.types import ASGIApp, Receive, Scope, Send

from dicomhub.accesslog import AccessLogMiddleware
from dicomhub.app import create_app
from dicomhub.config import load_settings
from dicomhub.cors import CORSMiddleware, PolicyHolder, parse_cors_settings


def _configure_log() -> None:
    # The format and level of `dicomhub serve` (src/dicomhub/cli.py).
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def app() -> ASGIApp:
    _configure_log()
    return create_app(load_settings())


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """204 for every HTTP request; run it with ``--lifespan off``."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def cors_bare() -> ASGIApp:
    # create_app's policy: the same validator, the same settings.
    policy, _ = parse_cors_settings(load_settings().cors)
    return CORSMiddleware(bare, PolicyHolder(policy))


def logged_bare() -> ASGIApp:
    _configure_log()
    return AccessLogMiddleware(bare)
