"""Orthanc with its DICOMweb plugin, the peer dicomhub is compared with.

Debian's ``orthanc`` and ``orthanc-dicomweb`` packages (bench/run installs them).
Each run starts its own Orthanc: loopback only, a free HTTP port, no DICOM
(DIMSE) listener, no authentication, storage and index under the run's folder
in bench/.work, and a JSON configuration written there. A system Orthanc that
the Debian package may have started on 8042 is neither used nor touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .servers import Running, free_port

PLUGIN_PACKAGE = "orthanc-dicomweb"
PLUGIN_NAME = "libOrthancDicomWeb.so"
DICOMWEB_ROOT = "/dicom-web/"


def binary() -> str | None:
    return shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )


def plugin_path() -> Path | None:
    """The DICOMweb plugin's shared library, as the Debian package lists it."""
    listed = subprocess.run(
        ["dpkg", "-L", PLUGIN_PACKAGE], capture_output=True, text=True
    ).stdout.splitlines()
    for line in listed:
        if line.endswith("/" + PLUGIN_NAME):
            return Path(line)
    return None


def available() -> str | None:
    """None when Orthanc can run here, else what is missing."""
    if binary() is None:
        return "Orthanc is not installed (Debian package orthanc)"
    if plugin_path() is None:
        return f"the DICOMweb plugin is not installed (Debian package {PLUGIN_PACKAGE})"
    return None


def configuration(folder: Path, port: int, plugin: Path) -> dict[str, object]:
    """Orthanc's settings (Orthanc Book, "Configuration of Orthanc"); the rest
    stay at Orthanc's defaults, as dicomhub's stay at its own."""
    return {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "DefaultEncoding": "Utf8",
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": DICOMWEB_ROOT},
    }


def version(url: str) -> str:
    about = httpx.get(url + "/system", timeout=10).json()
    plugin = httpx.get(url + "/plugins/dicom-web", timeout=10).json()
    return f"Orthanc {about.get('Version')}, DICOMweb plugin {plugin.get('Version')}"


@contextmanager
def orthanc(folder: Path) -> Iterator[Running]:
    """Run Orthanc with a fresh configuration in `folder`; yields it once
    /system answers."""
    missing = available()
    if missing:
        raise SystemExit(f"bench: {missing}; bench/run installs it, or --peer none")
    plugin = plugin_path()
    assert plugin is not None
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "orthanc.json"
    config.write_text(json.dumps(configuration(folder, port, plugin), indent=2))
    log_path = folder / "orthanc.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary()), str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: Orthanc exited; see {log_path}")
            try:
                if httpx.get(url + "/system", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: Orthanc did not answer; see {log_path}")
            time.sleep(0.2)
        yield Running("Orthanc", url, url + DICOMWEB_ROOT.rstrip("/"), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
