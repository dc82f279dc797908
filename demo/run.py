"""Run the demo: dicomhub with the sample studies, and a viewer beside it.

What ``scripts/demo`` runs (``python -m demo.run --viewer ohif`` from the
repository root) once the virtual environment and OHIF are ready:

1. ``dicomhub serve`` on 127.0.0.1:8080 with ./dicomhub-data and
   demo/dicomhub-demo.toml, whose [cors] table allows the viewer's origin only;
2. the samples (demo/samples.py) stored with ``dicomhub upload`` (STOW-RS);
3. the viewer on a second origin, http://127.0.0.1:8081: with ``--viewer
   ohif``, OHIF Viewer's prebuilt dist/ (demo/ohif/server.py); with ``--viewer
   page`` (the default of ``python -m demo.run``), the small page of demo/site;

then waits for Ctrl-C (or SIGTERM) and stops both servers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from . import samples, static_server
from .ohif import OhifMissing
from .ohif import server as ohif_server

HOST = "127.0.0.1"
DEMO_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = DEMO_DIR / "dicomhub-demo.toml"
DEFAULT_DEMO_PORT = 8081


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def start_dicomhub(
    config: Path, port: int, data_dir: Path, page_origin: str
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if page_origin != f"http://{HOST}:{DEFAULT_DEMO_PORT}":
        # Environment variables win over the file (src/dicomhub/config.py).
        env["DICOMHUB_CORS_ORIGINS"] = json.dumps([page_origin])
    command = [
        sys.executable, "-m", "dicomhub", "serve",
        "--config", str(config),
        "--host", HOST,
        "--port", str(port),
        "--data-dir", str(data_dir),
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)


def wait_healthy(process: subprocess.Popen[bytes], url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(
                f"dicomhub exited with status {process.returncode} before it "
                "answered /health; its messages are above"
            )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise DemoError(f"dicomhub did not answer {url}/health within {seconds:.0f} s")


def store_samples(root: str) -> None:
    """Store the samples with ``dicomhub upload``; those already there count as done."""
    paths = [str(sample.path) for sample in samples.samples()]
    command = [sys.executable, "-m", "dicomhub", "upload", *paths, "--url", root]
    result = subprocess.run(command)
    if result.returncode != 0:
        raise DemoError(
            f"dicomhub upload exited with status {result.returncode} while storing "
            "the samples; its messages are above"
        )


def warn_unless_allowed(url: str, origin: str, data_dir: Path) -> None:
    """Say so when the viewer's origin is refused: CORS settings stored
    through /admin/cors in an earlier run win over the demo's [cors] table
    (docs/admin.md), and the viewer would then only show a connection error."""
    preflight = httpx.options(
        f"{url}/v2/studies",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    if preflight.status_code == 204:
        return
    print(
        f"\nwarning: dicomhub refuses the viewer's origin {origin}: the CORS "
        f"settings stored in {data_dir} by PUT /admin/cors in an earlier run win "
        "over the demo's. Return to the demo's settings with\n"
        f"  curl -X DELETE {url}/admin/cors\n"
        "or start with another --data-dir.",
        file=sys.stderr,
        flush=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    for port in (args.port, args.demo_port):
        if not port_is_free(port):
            raise DemoError(
                f"port {port} on {HOST} is in use; stop what listens there or "
                "choose others with --port and --demo-port"
            )

    url = f"http://{HOST}:{args.port}"
    root = f"{url}/v2"
    if args.viewer == "ohif":
        try:
            page = ohif_server.make_server(HOST, args.demo_port, root)
        except OhifMissing as exc:
            raise DemoError(str(exc)) from None
    else:
        page = static_server.make_server(HOST, args.demo_port)
    page_origin = static_server.origin(page)

    # SIGTERM (from a supervisor or a test) stops the demo like Ctrl-C does; and
    # Ctrl-C works even when the shell started us with SIGINT ignored (a job
    # put in the background with & by a non-interactive shell).
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    process = start_dicomhub(args.config, args.port, args.data_dir, page_origin)
    serving = None
    try:
        wait_healthy(process, url, args.startup_timeout)

        store_samples(root)
        warn_unless_allowed(url, page_origin, args.data_dir)

        serving = static_server.serve_in_thread(page)
        page_url = f"{page_origin}/"
        if args.viewer == "ohif":
            # Our app-config.js names the root (demo/ohif/server.py).
            label = "OHIF Viewer (other origin):"
        else:
            label = "demo page (other origin):"
            if args.port != 8080:
                page_url += f"?root={root}"
        print(
            f"\n  {'dicomhub (DICOMweb root):':28} {root}\n"
            f"  {label:28} {page_url}\n"
            f"  {'data dir:':28} {args.data_dir.resolve()}\n"
            "\nready; press Ctrl-C to stop both servers\n",
            flush=True,
        )

        while process.poll() is None:
            time.sleep(0.5)
        raise DemoError(f"dicomhub exited with status {process.returncode}")
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
        return 0
    finally:
        if serving is not None:
            page.shutdown()
        page.server_close()
        stop(process)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=8080, help="dicomhub's port")
    parser.add_argument(
        "--viewer",
        choices=["ohif", "page"],
        default="page",
        help="OHIF Viewer (scripts/demo's choice; needs ensure_ohif) or the "
        "small page of demo/site",
    )
    parser.add_argument(
        "--demo-port",
        type=int,
        default=DEFAULT_DEMO_PORT,
        help="the viewer's port (its origin is allowed in [cors])",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("dicomhub-data"),
        help="dicomhub's index and instances",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="dicomhub's TOML file"
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=60, help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
