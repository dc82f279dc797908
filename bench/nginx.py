"""nginx serving the instance files as they are: the floor of WADO-RS MB/s.

A retrieve cannot be faster than a static web server sending the same file from
the same disk over the same loopback. nginx runs as the current user with its
own prefix (``-p``) and configuration (``-c``) in the run's folder, in the
foreground (``daemon off``), one worker, on a free port; no root needed.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .servers import Running, free_port


def configuration(folder: Path, port: int, documents: Path) -> str:
    # `user` makes sense only when started as root (nginx then drops to that
    # user); otherwise nginx ignores it with a notice.
    return f"""\
user {getpass.getuser()};
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    types {{ application/dicom dcm; }}
    server {{
        listen 127.0.0.1:{port};
        root {documents};
    }}
}}
"""


def available() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


@contextmanager
def nginx(folder: Path, documents: Path) -> Iterator[Running]:
    """Serve `documents` at http://127.0.0.1:PORT/; yields once it answers."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(configuration(folder, port, documents))
    log_path = folder / "nginx.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: nginx exited; see {log_path}")
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: nginx did not answer; see {log_path}")
            time.sleep(0.1)
        yield Running("nginx", url, url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
