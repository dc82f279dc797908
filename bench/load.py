"""Load generators: STOW-RS and WADO-RS from Python threads, request rates from wrk.

Python clients share the machine's cores with the server, so their figures are
a floor; wrk (Debian's package) costs far less per request and is used for
request rates when it is installed, with Python threads as the fallback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from .data import Instance

WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")
WRK_METHOD_SCRIPT = Path(__file__).with_name("wrk_method.lua")
DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


@dataclass
class Throughput:
    """`count` items (instances) and `size` bytes moved in `seconds`."""

    count: int
    seconds: float
    size: int = 0
    errors: int = 0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.size / 1e6 / self.seconds if self.seconds else 0.0


@dataclass
class Rate:
    """A request rate under concurrency, with the latency percentiles seen."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class StowBatch:
    body: bytes
    content_type: str
    count: int


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def stow_batches(instances: Sequence[Instance], size: int) -> list[StowBatch]:
    """multipart/related bodies of `size` instances each (PS3.18 §10.5.1.1)."""
    batches = []
    for start in range(0, len(instances), size):
        chunk = instances[start : start + size]
        boundary = f"bench-{uuid.uuid4().hex}"
        body = bytearray()
        for instance in chunk:
            body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            body += instance.path.read_bytes() + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        content_type = f"{MULTIPART_DICOM}; boundary={boundary}"
        batches.append(StowBatch(bytes(body), content_type, len(chunk)))
    return batches


def run_threads(
    clients: int, items: Iterable[object], work: Callable[[httpx.Client, object], int]
) -> tuple[int, int, int, float]:
    """Let `clients` threads take items until none is left; each has its own
    connection. `work` returns the bytes received or raises. Returns the items
    done, failures, bytes and seconds."""
    pending = iter(items)
    lock = threading.Lock()
    done = failed = received = 0

    def client_loop() -> None:
        nonlocal done, failed, received
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    item = next(pending, None)
                if item is None:
                    return
                try:
                    size = work(client, item)
                except (httpx.HTTPError, ValueError):
                    with lock:
                        failed += 1
                    continue
                with lock:
                    done += 1
                    received += size

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done, failed, received, time.perf_counter() - started


def stow(root: str, batches: Sequence[StowBatch], clients: int) -> Throughput:
    """Store the batches; counts the instances the server acknowledged."""
    stored = 0
    lock = threading.Lock()

    def store(client: httpx.Client, batch: object) -> int:
        nonlocal stored
        assert isinstance(batch, StowBatch)
        response = client.post(
            f"{root}/studies",
            content=batch.body,
            headers={"Content-Type": batch.content_type, "Accept": DICOM_JSON},
        )
        response.raise_for_status()
        # ReferencedSOPSequence (0008,1199): the instances stored, PS3.18 §10.5.3.
        referenced = response.json().get("00081199", {}).get("Value", [])
        with lock:
            stored += len(referenced)
        return len(response.content)

    _, _, _, seconds = run_threads(clients, batches, store)
    sent = sum(b.count for b in batches)
    size = sum(len(b.body) for b in batches)
    return Throughput(stored, seconds, size, sent - stored)


def wado_instances(
    root: str, instances: Sequence[Instance], clients: int
) -> Throughput:
    """Retrieve each instance as multipart/related application/dicom (PS3.18 §10.4)."""

    def retrieve(client: httpx.Client, instance: object) -> int:
        assert isinstance(instance, Instance)
        url = (
            f"{root}/studies/{instance.study}/series/{instance.series}"
            f"/instances/{instance.sop}"
        )
        response = client.get(url, headers={"Accept": MULTIPART_DICOM})
        response.raise_for_status()
        return len(response.content)

    done, failed, size, seconds = run_threads(clients, instances, retrieve)
    return Throughput(done, seconds, size, failed)


def sequential_latencies(
    url: str, headers: dict[str, str], seconds: float, at_most: int = 2000
) -> tuple[list[float], int]:
    """One client, one request at a time: sorted latencies in ms, and failures."""
    latencies = []
    failed = 0
    deadline = time.perf_counter() + seconds
    with httpx.Client(timeout=60) as client:
        client.get(url, headers=headers)  # warm-up: connection and caches
        while time.perf_counter() < deadline and len(latencies) < at_most:
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 300:
                failed += 1
    return sorted(latencies), failed


def python_rate(
    url: str,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    method: str = "GET",
) -> Rate:
    """Requests/s from `clients` Python threads, each with keep-alive."""
    lock = threading.Lock()
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds

    def client_loop() -> None:
        nonlocal failed
        mine = []
        errors = 0
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = client.request(method, url, headers=headers)
                    ok = response.status_code < 300
                except httpx.HTTPError:
                    ok = False
                mine.append((time.perf_counter() - started) * 1000)
                errors += not ok
        with lock:
            latencies.extend(mine)
            failed += errors

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Rate(
        len(latencies),
        elapsed,
        failed,
        percentile(latencies, 50),
        percentile(latencies, 95),
        f"python, {clients} threads",
    )


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_rate(
    url: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    method: str = "GET",
) -> Rate:
    """Requests/s from wrk (2 threads, keep-alive connections)."""
    script = WRK_SCRIPT if method == "GET" else WRK_METHOD_SCRIPT
    command = [
        "wrk", "--threads", "2", "--connections", str(connections),
        "--duration", f"{max(1, round(seconds))}s", "--timeout", "30s",
        "--script", str(script),
    ]  # fmt: skip
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_WRK_METHOD": method},
    ).stdout
    report = json.loads(output.strip().splitlines()[-1])
    return Rate(
        report["requests"],
        report["duration_us"] / 1e6,
        report["socket_errors"] + report["non_2xx"],
        report["p50_us"] / 1000,
        report["p95_us"] / 1000,
        f"wrk, {connections} connections",
    )


def rate(
    url: str, headers: dict[str, str], seconds: float, method: str = "GET"
) -> Rate:
    if wrk_available():
        return wrk_rate(url, headers, 8, seconds, method)
    return python_rate(url, headers, 4, seconds, method)
