"""The dicomhub benchmark (``bench/run``): store, retrieve and search, measure the
cost of CORS, then compare ASGI servers, and print one table.

1. Make the instances (bench/data.py) and start ``dicomhub serve`` on an empty
   data folder under bench/.work.
2. STOW-RS: half of the instances from one client, the other half from four,
   ten instances a request.
3. WADO-RS: retrieve instances (multipart/related; type="application/dicom")
   from one client and from four; MB/s of response bodies.
4. QIDO-RS: OHIF's study-list query, a PatientID query and a wildcard name
   query; latency p50/p95 from one client, one request at a time, then the
   request rate under concurrency (wrk when installed, else Python threads).
5. The cost of CORS (bench/corscost.py): preflights/s against a bare ASGI
   endpoint, and the PatientID and study-list queries with and without an
   ``Origin`` header, alternated in rounds.
6. ASGI servers: the same application under uvicorn (``dicomhub serve``) and
   under granian, requests/s on /health and on the study-list query.

The results go to stdout and to bench/results/. Times vary with the machine and
its load; compare figures from one run, never across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx

from . import corscost, data, load
from .servers import GRANIAN_DIR, REPOSITORY, server
from .table import Row, table

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"

# OHIF Viewer v3's first request (BRIEF.md §4; cases/dicomweb-04).
OHIF_INCLUDE = "00081030,00080060,00080090,00100030"
OHIF_QUERY = (
    "limit=101&offset=0&fuzzymatching=false&includefield="
    + OHIF_INCLUDE.replace(",", "%2C")
)
QIDO_HEADERS = {"Accept": "application/dicom+json"}


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def measure_stow(root: str, instances: list[data.Instance]) -> list[Row]:
    half = len(instances) // 2
    rows = []
    for clients, part in ((1, instances[:half]), (4, instances[half:])):
        progress(f"STOW-RS, {len(part)} instances, {clients} client(s)")
        result = load.stow(root, load.stow_batches(part, 10), clients)
        rows.append(
            Row(
                f"STOW-RS, {clients} client{'s' * (clients > 1)}, 10 instances/request",
                f"{result.per_second:,.0f} instances/s",
                f"{result.count} stored, {result.errors} not, "
                f"{result.size / 1e6:.1f} MB in {result.seconds:.1f} s",
            )
        )
    return rows


def measure_wado(root: str, instances: list[data.Instance], count: int) -> list[Row]:
    step = max(1, len(instances) // count)
    chosen = instances[::step][:count]
    rows = []
    for clients in (1, 4):
        progress(f"WADO-RS, {len(chosen)} instances, {clients} client(s)")
        result = load.wado_instances(root, chosen, clients)
        rows.append(
            Row(
                f"WADO-RS instance, {clients} client{'s' * (clients > 1)}",
                f"{result.megabytes_per_second:,.1f} MB/s",
                f"{result.per_second:,.0f} instances/s, {result.errors} failed",
            )
        )
    return rows


def qido_queries(instances: list[data.Instance]) -> dict[str, str]:
    """The three searches: OHIF's list, one patient, and a name wildcard that
    matches inside the first patient's family name (PS3.4 C.2.2.2.4)."""
    first = instances[0]
    family = first.patient_name.split("^")[0]
    fragment = family[1:4] if len(family) > 3 else family
    return {
        "QIDO OHIF study list": f"/studies?{OHIF_QUERY}",
        "QIDO PatientID": f"/studies?PatientID={quote(first.patient_id)}&{OHIF_QUERY}",
        f"QIDO PatientName=*{fragment}*": (
            f"/studies?PatientName=*{quote(fragment)}*&{OHIF_QUERY}"
        ),
    }


def measure_qido(
    root: str, instances: list[data.Instance], seconds: float
) -> list[Row]:
    rows = []
    for name, path in qido_queries(instances).items():
        progress(name)
        url = root + path
        matches = len(httpx.get(url, headers=QIDO_HEADERS, timeout=60).json())
        latencies, failed = load.sequential_latencies(url, QIDO_HEADERS, seconds)
        rate = load.rate(url, QIDO_HEADERS, seconds)
        rows.append(
            Row(
                name,
                f"p50 {load.percentile(latencies, 50):.1f} ms, "
                f"p95 {load.percentile(latencies, 95):.1f} ms; "
                f"{rate.per_second:,.0f} requests/s",
                f"{matches} studies a response; latency: 1 client, "
                f"{len(latencies)} requests, {failed} failed; rate: {rate.tool}, "
                f"p50 {rate.p50_ms:.1f} ms, p95 {rate.p95_ms:.1f} ms, "
                f"{rate.errors} failed",
            )
        )
    return rows


def measure_servers(data_dir: Path, log_dir: Path, seconds: float) -> list[Row]:
    kinds = ["uvicorn"]
    if (GRANIAN_DIR / "granian").is_dir():
        kinds.append("granian")
    else:
        progress(f"granian is not in {GRANIAN_DIR}; bench/run installs it")
    rows = []
    for kind in kinds:
        with server(kind, data_dir, log_dir) as url:
            for name, path in (("/health", "/health"), ("QIDO study list", None)):
                progress(f"{kind}: {name}")
                target = url + (path or f"/v2/studies?{OHIF_QUERY}")
                load.sequential_latencies(target, QIDO_HEADERS, 1)  # warm-up
                rate = load.rate(target, QIDO_HEADERS, seconds)
                rows.append(
                    Row(
                        f"{kind}: {name}",
                        f"{rate.per_second:,.0f} requests/s",
                        f"{rate.tool}, p50 {rate.p50_ms:.1f} ms, "
                        f"p95 {rate.p95_ms:.1f} ms, {rate.errors} failed",
                    )
                )
    return rows


def machine() -> dict[str, str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "commit": commit or "unknown",
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="instances to store")
    parser.add_argument("--wado", type=int, default=200, help="instances to retrieve")
    parser.add_argument(
        "--seconds", type=float, default=5, help="length of each rate measurement"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="alternated rounds of each CORS comparison",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's dicomhub data folder"
    )
    args = parser.parse_args(argv)

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = WORK / f"run-{stamp}"
    progress(f"making {args.count} instances")
    instances, source = data.instances(args.count, WORK / "instances", args.seed)

    rows: list[Row] = []
    data_dir = run_dir / "data"
    with server("uvicorn", data_dir, run_dir) as url:
        root = url + "/v2"
        rows += measure_stow(root, instances)
        rows += measure_wado(root, instances, args.wado)
        rows += measure_qido(root, instances, args.seconds)
        queries = qido_queries(instances)
        cors_queries = {
            name: queries[name] for name in ("QIDO PatientID", "QIDO OHIF study list")
        }
        rows += corscost.measure(
            url,
            instances[0],
            cors_queries,
            data_dir,
            run_dir,
            args.seconds,
            args.rounds,
            progress,
        )
    rows += measure_servers(data_dir, run_dir, args.seconds)
    if not args.keep:
        shutil.rmtree(data_dir)

    about = machine() | {"instances": f"{len(instances)} ({source})"}
    heading = ", ".join(f"{k}: {v}" for k, v in about.items())
    report = f"dicomhub bench {stamp}\n{heading}\n\n{table(rows)}\n"
    print(report)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench-{stamp}.md").write_text(report)
    (RESULTS / f"bench-{stamp}.json").write_text(
        json.dumps({"about": about, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    progress(f"written to {RESULTS}/bench-{stamp}.md and .json; logs in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
