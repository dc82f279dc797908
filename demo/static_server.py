"""A tiny static file server for the demo page: the page's own origin.

The page must come from a different origin than dicomhub (another port is
enough: an origin is scheme, host and port, RFC 6454 §4), so that every search
and retrieve it makes is a cross-origin fetch that dicomhub's [cors] table has
to allow.

Run on its own, from the repository root, with
``python -m demo.static_server --port 8081``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITE = Path(__file__).with_name("site")


class DemoPageHandler(SimpleHTTPRequestHandler):
    """Serves the files of demo/site, never cached, with a short log line."""

    def end_headers(self) -> None:
        # The page is edited while the demo runs; a cached copy would hide that.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"demo page: {format % args}\n")


class QuietDemoPageHandler(DemoPageHandler):
    """The same handler without the log lines (for tests)."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def make_server(
    host: str = "127.0.0.1",
    port: int = 8081,
    directory: Path = SITE,
    quiet: bool = False,
) -> ThreadingHTTPServer:
    """Bind the server; port 0 picks a free port (see ``server_address``)."""
    handler = QuietDemoPageHandler if quiet else DemoPageHandler
    bound = functools.partial(handler, directory=str(directory))
    return ThreadingHTTPServer((host, port), bound)


def serve_in_thread(
    server: ThreadingHTTPServer, name: str = "demo-page"
) -> threading.Thread:
    """Serve until ``server.shutdown()``; the thread does not block exit."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return thread


def origin(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()

    server = make_server(args.host, args.port)
    print(f"demo page on {origin(server)}/", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
