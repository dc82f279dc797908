"""The dicomhub benchmark (``bench/run``): dicomhub beside Orthanc and its
DICOMweb plugin, phase by phase, in one table.

1. Make the instances (bench/data.py): small CT slices and fewer large ones, a
   fresh set of each per STOW-RS repeat; start ``dicomhub serve`` (SQLite and a
   folder, its embedded default) and Orthanc (bench/orthanc.py), each on an
   empty folder under bench/.work.
2. Run each phase against both servers (bench/phases.py): the servers take
   turns within a repeat, the first one changes every repeat, and every figure
   is measured ``--repeats`` times. Floors are measured in the same turns: nginx
   sending the same files (WADO-RS MB/s), a bare ASGI endpoint (request rate).
3. Phases: stow, wado, frames, metadata, qido, then dicomhub alone: cors (the
   cost of CORS, bench/corscost.py; Orthanc has none) and asgi (uvicorn against
   granian for the same application), then big (bench/big.py): a 2 GB study
   stored in one STOW-RS request and retrieved in one WADO-RS answer, with the
   servers' peak memory. ``--scale`` reruns the QIDO-RS mix after loading that
   many instances into both servers.
4. Print one table (bench/compare.py) and write it with the raw values to
   bench/results/.

Times vary with the machine and its load; compare figures from one run, never
across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from . import big, corscost, data, load, nginx, orthanc, phases
from .compare import Figure, Line, line, table
from .servers import GRANIAN_DIR, REPOSITORY, Running, server, started
from .table import Row

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
INSTANCES = WORK / "instances"
RESULTS = BENCH / "results"

PHASES = ("stow", "wado", "frames", "metadata", "qido", "cors", "asgi", "big")
LARGE_SIZE = 512  # Rows = Columns of the large slices, 16-bit: 512 KB each
SCALE_CLIENTS = 8
NOT_COMPARED = "n/a (dicomhub only)"


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    about: dict[str, str]
    figures: list[Figure]
    lines: list[Line]
    differences: list[str]


def text_line(row: Row, peer: str = NOT_COMPARED) -> Line:
    """A dicomhub-only row (CORS, ASGI servers) in the comparison's table."""
    if row.measure.startswith("CORS layer alone"):
        client = "in process"
    else:
        client = "wrk, 8 connections" if load.wrk_available() else "python, 4 threads"
    return Line(row.measure, client, row.result, peer, "", "", row.detail)


def measure_asgi_servers(data_dir: Path, log_dir: Path, seconds: float) -> list[Line]:
    """The same application under uvicorn (`dicomhub serve`) and granian, on
    the same data folder: requests/s on /health and on OHIF's study list."""
    kinds = ["uvicorn"]
    if (GRANIAN_DIR / "granian").is_dir():
        kinds.append("granian")
    else:
        progress(f"granian is not in {GRANIAN_DIR}; bench/run installs it")
    lines = []
    for kind in kinds:
        with server(kind, data_dir, log_dir) as url:
            for name, path in (
                ("/health", "/health"),
                ("QIDO OHIF study list", f"/v2/studies?{phases.OHIF_QUERY}"),
            ):
                progress(f"{kind}: {name}")
                target = url + path
                load.sequential_latencies(target, phases.DICOM_JSON, 1)  # warm-up
                rate = load.rate(target, phases.DICOM_JSON, seconds)
                lines.append(
                    Line(
                        f"ASGI server {kind}: {name}",
                        rate.tool,
                        f"{rate.per_second:,.0f} requests/s",
                        NOT_COMPARED,
                        "",
                        "",
                        f"p50 {rate.p50_ms:.1f} ms, p95 {rate.p95_ms:.1f} ms, "
                        f"{rate.errors} failed",
                    )
                )
    return lines


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
        "load average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "platform": platform.platform(),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--count", type=int, default=1000, help="small instances in each set"
    )
    parser.add_argument(
        "--wado", type=int, default=200, help="instances in each WADO-RS measure"
    )
    parser.add_argument(
        "--seconds", type=float, default=5, help="length of each rate measurement"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternated repeats of each figure"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternated rounds of each CORS cost"
    )
    parser.add_argument(
        "--scale",
        default="",
        help="rerun the QIDO-RS mix at these instance counts, e.g. 10000,100000",
    )
    parser.add_argument(
        "--only", default="", help=f"these phases only, of {','.join(PHASES)}"
    )
    parser.add_argument("--peer", choices=("orthanc", "none"), default="orthanc")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers",
        default=None,
        help="dicomhub's worker processes, a number or auto "
        "(default: the server's default, 1)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's data folders"
    )
    args = parser.parse_args(argv)
    args.phases = [p for p in args.only.split(",") if p] or list(PHASES)
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"--only {','.join(sorted(unknown))}: expected {','.join(PHASES)}")
    try:
        args.scales = sorted(int(n) for n in args.scale.split(",") if n)
    except ValueError:
        parser.error(f"--scale {args.scale!r}: expected counts like 10000,100000")
    if args.workers is not None and not (
        args.workers == "auto" or (args.workers.isdigit() and int(args.workers) > 0)
    ):
        parser.error(f"--workers {args.workers!r}: expected a positive number or auto")
    if args.count < 20 or args.repeats < 1 or args.rounds < 1:
        parser.error("--count must be at least 20, --repeats and --rounds at least 1")
    return args


def make_sets(
    args: argparse.Namespace,
) -> tuple[list[tuple[list[data.Instance], list[data.Instance]]], str]:
    """One set of small and large slices per STOW-RS repeat (set 0 only when
    STOW-RS is not measured); each set has its own seed, so its own UIDs."""
    large_count = max(20, args.count // 10)
    sets = []
    source = ""
    for repeat in range(args.repeats if "stow" in args.phases else 1):
        progress(f"making set {repeat}: {args.count} + {large_count} instances")
        small, source = data.instances(args.count, INSTANCES, args.seed + repeat)
        large, _ = data.instances(
            large_count, INSTANCES, args.seed + 500 + repeat, LARGE_SIZE
        )
        sets.append((small, large))
    return sets, source


def run(args: argparse.Namespace, run_dir: Path) -> Outcome:
    # The sets feed every phase but big, which brings its own study.
    with_sets = bool(set(args.phases) - {"big"} or args.scales)
    sets, source = make_sets(args) if with_sets else ([([], [])], "")
    figures: list[Figure] = []
    lines: list[Line] = []
    about: dict[str, str] = machine() | {"dicomhub": version("dicomhub")}
    about["dicomhub workers"] = args.workers or "the server's default (1)"
    data_dir = run_dir / "dicomhub"

    with ExitStack() as stack:
        hub = stack.enter_context(
            started("uvicorn", data_dir, run_dir, args.workers)
        )
        targets = [hub]
        if args.peer == "orthanc":
            peer = stack.enter_context(orthanc.orthanc(run_dir / "orthanc"))
            targets.append(peer)
            about["peer"] = orthanc.version(peer.url)
        ctx = phases.Context(
            targets, args.repeats, args.seconds, args.wado, progress,
            small=sets[0][0], large=sets[0][1],
        )  # fmt: skip
        if with_sets:
            about["instances"] = (
                f"{source}: sets of {len(sets[0][0])} × "
                f"{phases.describe(sets[0][0])} and {len(sets[0][1])} × "
                f"{phases.describe(sets[0][1])}"
            )

        if "stow" in args.phases:
            figures += phases.peaks(ctx, "STOW-RS", lambda: phases.stow(ctx, sets))
        elif with_sets:
            small, large = sets[0]
            figures += phases.load_into_all(ctx, small + large, 4, "set 0")

        if "wado" in args.phases:
            floor = None
            if nginx.available():
                floor = stack.enter_context(nginx.nginx(run_dir / "nginx", INSTANCES))
            else:
                progress("nginx is not installed: no floor for WADO-RS")
            figures += phases.peaks(
                ctx, "WADO-RS", lambda: phases.wado(ctx, floor, INSTANCES)
            )
        if "frames" in args.phases:
            figures += phases.peaks(ctx, "frames", lambda: phases.frames(ctx))
        if "metadata" in args.phases:
            figures += phases.peaks(
                ctx, "series metadata", lambda: phases.metadata(ctx)
            )

        bare: Running | None = None
        if "qido" in args.phases or args.scales:
            bare = stack.enter_context(started("bare", data_dir, run_dir))
        if "qido" in args.phases:
            figures += phases.peaks(ctx, "QIDO-RS", lambda: phases.qido(ctx, bare))
        for scale in args.scales:
            missing = scale - len(ctx.stored)
            if missing > 0:
                more, _ = data.instances(missing, INSTANCES, args.seed + 900 + scale)
                figures += phases.load_into_all(
                    ctx, more, SCALE_CLIENTS, f"{missing:,} more instances"
                )
            suffix = f" @ {len(ctx.stored):,} instances"
            figures += phases.peaks(
                ctx, f"QIDO-RS{suffix}", lambda s=suffix: phases.qido(ctx, bare, s)
            )

        lines += [line(f) for f in figures]
        if "cors" in args.phases:
            queries = {
                q.name: q.path
                for q in phases.qido_queries(ctx.stored, ctx.small)
                if q.name in ("QIDO PatientID", "QIDO OHIF study list")
            }
            rows = corscost.measure(
                hub.url, ctx.small[0], queries, data_dir, run_dir,
                args.seconds, args.rounds, progress,
            )  # fmt: skip
            lines += [text_line(r, peer="n/a (no CORS in Orthanc)") for r in rows]
        if "asgi" in args.phases:
            lines += measure_asgi_servers(data_dir, run_dir, args.seconds)

        # Last: the 2 GB study would change what the other phases count.
        if "big" in args.phases:
            study = big.make(WORK, args.seed, progress)
            about["big study"] = study.describe()
            results = big.run(targets, study, progress)
            figures += [figure for figure, _ in results]
            lines += big.lines(results)

    about["options"] = (
        f"--count {args.count} --wado {args.wado} --seconds {args.seconds:g} "
        f"--repeats {args.repeats} --rounds {args.rounds} --peer {args.peer}"
        + (f" --only {args.only}" if args.only else "")
        + (f" --scale {args.scale}" if args.scale else "")
        + (f" --workers {args.workers}" if args.workers else "")
    )
    return Outcome(about, figures, lines, ctx.differences)


def report(stamp: str, outcome: Outcome) -> str:
    heading = "\n".join(f"- {k}: {v}" for k, v in outcome.about.items())
    noted = "\n".join(f"- {d}" for d in outcome.differences) or "- none"
    return (
        f"# dicomhub and Orthanc, {stamp}\n\n{heading}\n\n"
        f"{table(outcome.lines)}\n\n"
        "Ratio: dicomhub's figure over Orthanc's, median of the per-repeat "
        "ratios; above 1 favours dicomhub where higher is better, below 1 where "
        "lower is better.\n\n"
        f"## What the servers answered differently\n\n{noted}\n"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = WORK / f"run-{stamp}"
    started_at = datetime.now()
    outcome = run(args, run_dir)
    outcome.about["duration"] = str(datetime.now() - started_at).split(".")[0]
    if not args.keep:
        # The servers' data; their logs and configurations stay.
        shutil.rmtree(run_dir / "dicomhub", ignore_errors=True)
        for folder in ("storage", "index"):
            shutil.rmtree(run_dir / "orthanc" / folder, ignore_errors=True)

    text = report(stamp, outcome)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench-{stamp}.md").write_text(text)
    raw = {
        "about": outcome.about,
        "figures": [asdict(f) for f in outcome.figures],
        "table": [asdict(x) for x in outcome.lines],
        "differences": outcome.differences,
    }
    (RESULTS / f"bench-{stamp}.json").write_text(
        json.dumps(raw, indent=2, ensure_ascii=False)
    )
    progress(f"written to {RESULTS}/bench-{stamp}.md and .json; logs in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
