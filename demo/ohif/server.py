"""Serve OHIF Viewer's prebuilt dist/ on its own origin, with our app-config.js.

The viewer must come from another origin than dicomhub (another port is
enough: an origin is scheme, host and port, RFC 6454 §4), so that every QIDO-RS
and WADO-RS request it makes is a cross-origin fetch that dicomhub's [cors]
table has to allow.

What differs from a plain static server:

- ``/app-config.js`` is demo/ohif/app-config.js, preceded by one line that sets
  ``window.dicomhubRoot``, the DICOMweb root the viewer talks to;
- OHIF is a single-page application: its router owns paths such as
  ``/viewer?StudyInstanceUIDs=...``. A path that names no file and does not
  look like a file (no known static suffix) gets index.html, as the package's
  own ``_redirects`` asks; a missing script or stylesheet stays a 404.

Run on its own, from the repository root, with
``python -m demo.ohif.server --port 8081 --root http://127.0.0.1:8080/v2``.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from ..static_server import origin
from . import APP_CONFIG, OhifMissing, dist_dir

DEFAULT_ROOT = "http://127.0.0.1:8080/v2"

# Suffixes of the files in dist/; a missing path with one of them is a 404,
# not the application's page.
STATIC_SUFFIXES = frozenset(
    ".js .mjs .css .wasm .map .json .json5 .jsonc .png .svg .ico .jpg .woff"
    " .woff2 .ttf .txt .xml .html .onnx".split()
)


def app_config(root: str) -> bytes:
    """Our app-config.js with the DICOMweb root set in front of it."""
    prefix = f"window.dicomhubRoot = {json.dumps(root)};\n"
    return prefix.encode() + APP_CONFIG.read_bytes()


class OhifServer(ThreadingHTTPServer):
    """The viewer's HTTP server, with the DICOMweb root its app-config.js names.

    `dicomweb_root` may be changed after binding: tests bind the viewer first,
    to list its origin in the [cors] table of a dicomhub started after it.
    """

    daemon_threads = True
    dicomweb_root = DEFAULT_ROOT
    quiet = False


class OhifHandler(SimpleHTTPRequestHandler):
    """dist/ as static files, our app-config.js, and index.html for app paths."""

    server: OhifServer

    def end_headers(self) -> None:
        # Revalidate every time (If-Modified-Since gives 304): a new install or
        # an edited app-config.js shows on the next load.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def send_head(self) -> BinaryIO | None:
        path = unquote(urlsplit(self.path).path)
        if path == "/app-config.js":
            return self.send_app_config()
        if self.is_app_path(path):
            self.path = "/index.html"
        return super().send_head()

    def send_app_config(self) -> BinaryIO:
        body = app_config(self.server.dicomweb_root)
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def is_app_path(self, path: str) -> bool:
        """A path OHIF's router handles: no file there, and no file suffix."""
        if Path(self.translate_path(path)).exists():
            return False
        return PurePosixPath(path).suffix.lower() not in STATIC_SUFFIXES

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"ohif: {format % args}\n")


def make_server(
    host: str = "127.0.0.1",
    port: int = 8081,
    dicomweb_root: str = DEFAULT_ROOT,
    quiet: bool = False,
) -> OhifServer:
    """Bind the server; port 0 picks a free port (see ``server_address``).

    Raises OhifMissing when OHIF's dist/ is not installed.
    """
    bound = functools.partial(OhifHandler, directory=str(dist_dir()))
    server = OhifServer((host, port), bound)
    server.dicomweb_root = dicomweb_root
    server.quiet = quiet
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="dicomhub's DICOMweb root")
    args = parser.parse_args()

    try:
        server = make_server(args.host, args.port, args.root)
    except OhifMissing as exc:
        print(f"ohif: {exc}", file=sys.stderr)
        return 1
    print(f"OHIF Viewer on {origin(server)}/ using {args.root}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
