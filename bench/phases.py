"""The phases of the comparison, each measured on dicomhub and on the peer.

Every phase first checks each server's answer to the requests it will time
(status, number of results, the bytes of a frame) so that a misconfigured
server stops the run instead of being timed answering errors; differences in
what the servers answer (counts, attributes) are noted for the report. Then it
measures its figures in alternated repeats (bench/compare.py), with the same
data, the same client and the same requests for every server.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pydicom

from . import load, memory
from .compare import DICOMHUB, PEER, Figure
from .data import Instance
from .servers import Running

# Every request accepts gzip and deflate, as a browser's do (Fetch), wrk's
# included: a server may compress (Orthanc does by default, dicomhub does not),
# and what compressing costs it is part of its figures.
ACCEPT_ENCODING = {"Accept-Encoding": "gzip, deflate"}
DICOM_JSON = {"Accept": "application/dicom+json", **ACCEPT_ENCODING}
MULTIPART_DICOM = {"Accept": load.MULTIPART_DICOM, **ACCEPT_ENCODING}
MULTIPART_OCTETS = {
    "Accept": 'multipart/related; type="application/octet-stream"',
    **ACCEPT_ENCODING,
}

# OHIF Viewer v3's study list (BRIEF.md §4; cases/dicomweb-04).
OHIF_INCLUDE = "00081030,00080060,00080090,00100030"
OHIF_QUERY = (
    "limit=101&offset=0&fuzzymatching=false&includefield="
    + OHIF_INCLUDE.replace(",", "%2C")
)
LIMIT = 101
STOW_BATCH = 10


@dataclass
class Context:
    """What every phase needs: the servers, the options and the data."""

    targets: list[Running]  # dicomhub, then the peer when there is one
    repeats: int
    seconds: float
    wado: int
    progress: Callable[[str], None]
    small: list[Instance]  # set 0 of the small slices: what later phases read
    large: list[Instance]  # set 0 of the large slices
    stored: list[Instance] = field(default_factory=list)  # in every server
    differences: list[str] = field(default_factory=list)

    def differ(self, text: str) -> None:
        if text not in self.differences:
            self.differences.append(text)
            self.progress(f"difference: {text}")

    @property
    def latency_requests(self) -> int:
        # The same number of requests for every server: 40 per --seconds.
        return max(20, round(40 * self.seconds))


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1 and not word.endswith('s'))}"


def turns(ctx: Context, repeat: int, floors: Sequence[Running]) -> list[Running]:
    """The order of one repeat: dicomhub and the peer swap places every
    repeat; the floors come last."""
    order = ctx.targets if repeat % 2 == 0 else ctx.targets[::-1]
    return [*order, *floors]


def alternate(
    ctx: Context,
    phase: str,
    figures: Sequence[Figure],
    measure: Callable[[Running, int], dict[str, float]],
    floors: Sequence[Running] = (),
) -> None:
    """Fill `figures` with `measure`'s values (by figure name), repeat after
    repeat; a floor's measure returns the figures it is the floor of."""
    by_name = {f.name: f for f in figures}
    for repeat in range(ctx.repeats):
        for target in turns(ctx, repeat, floors):
            ctx.progress(f"{phase}, repeat {repeat + 1}/{ctx.repeats}: {target.name}")
            for name, value in measure(target, repeat).items():
                by_name[name].add(target.name, value)


def peaks(ctx: Context, phase: str, run: Callable[[], list[Figure]]) -> list[Figure]:
    """Run a phase and add the peak resident memory of each server during it."""
    for target in ctx.targets:
        memory.reset_peak(target.pid)
    figures = run()
    peak = Figure(phase, f"peak RSS during {phase}", "MB", False, "/proc VmHWM")
    for target in ctx.targets:
        value = memory.peak_megabytes(target.pid)
        if value is not None:
            peak.add(target.name, value)
    return [*figures, peak]


# -- checks --------------------------------------------------------------


def first_part(response: httpx.Response) -> bytes:
    """The body of the first part of a multipart/related answer (RFC 2046)."""
    content_type = response.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/related"):
        raise ValueError(f"Content-Type {content_type!r}, not multipart/related")
    boundary = ""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    delimiter = b"--" + boundary.encode()
    body = response.content
    opening = body.find(delimiter) if boundary else -1
    headers_end = body.find(b"\r\n\r\n", max(opening, 0))
    start = headers_end + 4
    end = body.find(b"\r\n" + delimiter, start)
    if opening < 0 or headers_end < 0 or end < 0:
        raise ValueError("no complete first part")
    return body[start:end]


def checked_part(target: Running, response: httpx.Response, what: str) -> bytes:
    """The first part, or stop the run when the answer is not multipart."""
    try:
        return first_part(response)
    except ValueError as exc:
        raise SystemExit(f"bench: {target.name}'s answer to {what}: {exc}") from None


def get_checked(
    target: Running, url: str, headers: dict[str, str], what: str
) -> httpx.Response:
    """GET that stops the run unless the server answers 200."""
    response = httpx.get(url, headers=headers, timeout=120)
    if response.status_code != 200:
        # The path only: a query may hold a patient's name or ID.
        raise SystemExit(
            f"bench: {target.name} answered {response.status_code} to {what} "
            f"(GET {httpx.URL(url).path}): {response.text[:300]}"
        )
    return response


def note_encoding(ctx: Context, target: Running, response: httpx.Response, what: str):
    """Compressing an answer costs the server time: say who does."""
    encoding = response.headers.get("content-encoding")
    if encoding:
        ctx.differ(
            f"{what}: {target.name} answers with Content-Encoding {encoding} "
            f"(the client accepts gzip and deflate, as browsers do)"
        )


def compare_keys(
    ctx: Context, what: str, answers: dict[str, dict[str, object]]
) -> None:
    """Note the attributes one server returns and the other does not."""
    if DICOMHUB not in answers or PEER not in answers:
        return
    ours, theirs = set(answers[DICOMHUB]), set(answers[PEER])
    if ours - theirs:
        ctx.differ(f"{what}: only dicomhub returns {', '.join(sorted(ours - theirs))}")
    if theirs - ours:
        ctx.differ(f"{what}: only Orthanc returns {', '.join(sorted(theirs - ours))}")


# -- STOW-RS ---------------------------------------------------------------


def store(
    ctx: Context, target: Running, batches: list[load.StowBatch], clients: int
) -> load.Throughput:
    result = load.stow(target.root, batches, clients)
    if result.errors:
        raise SystemExit(
            f"bench: {target.name} acknowledged {result.count} of "
            f"{result.count + result.errors} instances in ReferencedSOPSequence "
            f"(PS3.18 §10.5.3); see its log"
        )
    return result


def load_into_all(
    ctx: Context, instances: list[Instance], clients: int, what: str
) -> list[Figure]:
    """Store `instances` into every server (not a phase's figure: loading);
    one figure, a single repeat, of the rate each server stored them at."""
    batches = load.stow_batches(instances, STOW_BATCH)
    figure = Figure(
        "load",
        f"STOW-RS loading {what}, {clients} clients",
        "instances/s",
        True,
        f"python, {clients} threads",
    )
    for target in ctx.targets:
        ctx.progress(f"loading {what} into {target.name}")
        figure.add(target.name, store(ctx, target, batches, clients).per_second)
    ctx.stored += instances
    return [figure]


def stow(ctx: Context, sets: list[tuple[list[Instance], list[Instance]]]) -> list:
    """Store set `r` (small and large slices) in repeat `r`: half from one
    client, half from four, ten instances a request (PS3.18 §10.5)."""
    small_size, large_size = describe(sets[0][0]), describe(sets[0][1])
    figures = []
    for label, unit in ((small_size, "instances/s"), (large_size, "MB/s")):
        for clients in (1, 4):
            figures.append(
                Figure(
                    "stow",
                    f"STOW-RS {label}, {plural(clients, 'client')}, "
                    f"{STOW_BATCH} instances/request",
                    unit,
                    True,
                    f"python, {plural(clients, 'thread')}",
                )
            )
    bodies = [
        (load.stow_batches(small, STOW_BATCH), load.stow_batches(large, STOW_BATCH))
        for small, large in sets
    ]

    def measure(target: Running, repeat: int) -> dict[str, float]:
        values = {}
        for batches, label, megabytes in (
            (bodies[repeat][0], small_size, False),
            (bodies[repeat][1], large_size, True),
        ):
            half = len(batches) // 2
            for clients, part in ((1, batches[:half]), (4, batches[half:])):
                result = store(ctx, target, part, clients)
                name = (
                    f"STOW-RS {label}, {plural(clients, 'client')}, "
                    f"{STOW_BATCH} instances/request"
                )
                values[name] = (
                    result.megabytes_per_second if megabytes else result.per_second
                )
        return values

    alternate(ctx, "STOW-RS", figures, measure)
    for small, large in sets:
        ctx.stored += small + large
    return figures


def describe(instances: Sequence[Instance]) -> str:
    ds = pydicom.dcmread(instances[0].path, stop_before_pixels=True)
    return f"{ds.Columns}×{ds.Rows} {ds.Modality} ({ds.BitsAllocated}-bit)"


# -- WADO-RS ---------------------------------------------------------------


def fetch_all(
    urls: Sequence[str], headers: dict[str, str], clients: int
) -> load.Throughput:
    """GET every URL once, `clients` threads with a connection each."""

    def get(client: httpx.Client, url: object) -> int:
        assert isinstance(url, str)
        response = client.get(url, headers=headers)
        response.raise_for_status()
        return len(response.content)

    done, failed, size, seconds = load.run_threads(clients, urls, get)
    return load.Throughput(done, seconds, size, failed)


def instance_url(root: str, instance: Instance) -> str:
    return (
        f"{root}/studies/{instance.study}/series/{instance.series}"
        f"/instances/{instance.sop}"
    )


def spaced(instances: Sequence[Instance], count: int) -> list[Instance]:
    step = max(1, len(instances) // count)
    return list(instances[::step][:count])


def wado(ctx: Context, nginx: Running | None, documents: Path) -> list[Figure]:
    """Retrieve whole instances (multipart/related; type="application/dicom",
    PS3.18 §10.4); nginx sending the same files is the floor."""
    groups = [
        (describe(ctx.small), spaced(ctx.small, ctx.wado)),
        (describe(ctx.large), spaced(ctx.large, ctx.wado)),
    ]
    for target in ctx.targets:
        for _, chosen in groups:
            response = get_checked(
                target, instance_url(target.root, chosen[0]), MULTIPART_DICOM, "WADO-RS"
            )
            note_encoding(ctx, target, response, "WADO-RS instance")
            part = checked_part(target, response, "WADO-RS")
            if part != chosen[0].path.read_bytes():
                ctx.differ(
                    f"WADO-RS instance: {target.name} does not return the "
                    f"stored bytes ({len(part)} bytes for a "
                    f"{chosen[0].path.stat().st_size}-byte file)"
                )
    if nginx is not None:
        for _, chosen in groups:
            path = chosen[0].path.relative_to(documents)
            get_checked(nginx, f"{nginx.url}/{path}", ACCEPT_ENCODING, "a file")

    figures = {}
    for label, chosen in groups:
        for clients in (1, 4):
            name = (
                f"WADO-RS instance, {plural(len(chosen), 'instance')} {label}, "
                f"{plural(clients, 'client')}"
            )
            figures[name] = (
                Figure(
                    "wado",
                    name,
                    "MB/s",
                    True,
                    f"python, {plural(clients, 'thread')}",
                    floor="nginx" if nginx else "",
                ),
                chosen,
                clients,
            )

    def measure(target: Running, repeat: int) -> dict[str, float]:
        values = {}
        for name, (_, chosen, clients) in figures.items():
            if target.name == "nginx":
                urls = [f"{target.url}/{i.path.relative_to(documents)}" for i in chosen]
                result = fetch_all(urls, ACCEPT_ENCODING, clients)
            else:
                urls = [instance_url(target.root, i) for i in chosen]
                result = fetch_all(urls, MULTIPART_DICOM, clients)
            if result.errors:
                raise SystemExit(f"bench: {target.name}: {result.errors} failed GETs")
            values[name] = result.megabytes_per_second
        return values

    alternate(
        ctx, "WADO-RS", [f for f, _, _ in figures.values()], measure,
        [nginx] if nginx else [],
    )  # fmt: skip
    return [f for f, _, _ in figures.values()]


# -- frames ----------------------------------------------------------------


def frame_bytes(instance: Instance) -> int:
    ds = pydicom.dcmread(instance.path, stop_before_pixels=True)
    return ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8


def frames(ctx: Context) -> list[Figure]:
    """frames/1 of many instances as multipart/related;
    type="application/octet-stream" (PS3.18 §9.5, §8.7.3.3.1), what a viewer
    asks for a slice."""
    cases = [
        (describe(ctx.small), ctx.small, 1),
        (describe(ctx.small), ctx.small, 4),
        (describe(ctx.large), ctx.large, 4),
    ]
    for target in ctx.targets:
        for _, instances, _ in cases[::2]:
            url = instance_url(target.root, instances[0]) + "/frames/1"
            response = get_checked(target, url, MULTIPART_OCTETS, "frames/1")
            note_encoding(ctx, target, response, "frames/1")
            part = checked_part(target, response, "frames/1")
            if len(part) != frame_bytes(instances[0]):
                raise SystemExit(
                    f"bench: {target.name} sent a {len(part)}-byte frame; the "
                    f"native frame has {frame_bytes(instances[0])} bytes"
                )

    figures = {}
    for label, instances, clients in cases:
        name = (
            f"frames/1 of {plural(len(instances), 'instance')} {label}, "
            f"{plural(clients, 'client')}"
        )
        figure = Figure(
            "frames", name, "frames/s", True, f"python, {plural(clients, 'thread')}"
        )
        figures[name] = (figure, instances, clients)

    def measure(target: Running, repeat: int) -> dict[str, float]:
        values = {}
        for name, (_, instances, clients) in figures.items():
            urls = [instance_url(target.root, i) + "/frames/1" for i in instances]
            result = fetch_all(urls, MULTIPART_OCTETS, clients)
            if result.errors:
                raise SystemExit(f"bench: {target.name}: {result.errors} failed GETs")
            values[name] = result.per_second
        return values

    alternate(ctx, "frames", [f for f, _, _ in figures.values()], measure)
    return [f for f, _, _ in figures.values()]


# -- latency: series metadata and QIDO-RS ------------------------------------


def latencies(
    urls: Sequence[str], headers: dict[str, str], requests: int
) -> list[float]:
    """One client, one request at a time, `requests` requests cycling through
    `urls` after one warm-up each: sorted milliseconds."""
    result = []
    with httpx.Client(timeout=120) as client:
        for url in urls[:requests]:
            client.get(url, headers=headers)
        for index in range(requests):
            started = time.perf_counter()
            response = client.get(urls[index % len(urls)], headers=headers)
            result.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"bench: {response.status_code} while timing")
    return sorted(result)


def latency_figures(phase: str, name: str, requests: int) -> list[Figure]:
    client = f"python, 1 client, {requests} requests one at a time"
    return [
        Figure(phase, f"{name}: latency p{p}", "ms", False, client) for p in (50, 95)
    ]


def metadata(ctx: Context) -> list[Figure]:
    """Series metadata (PS3.18 §10.4.1.1.2, application/dicom+json) of every
    series of the small set, in turn."""
    sizes = Counter((i.study, i.series) for i in ctx.small)
    series = list(sizes)
    answers = {}
    for target in ctx.targets:
        study, serie = series[0]
        url = f"{target.root}/studies/{study}/series/{serie}/metadata"
        response = get_checked(target, url, DICOM_JSON, "series metadata")
        note_encoding(ctx, target, response, "series metadata")
        body = response.json()
        if len(body) != sizes[series[0]]:
            ctx.differ(
                f"series metadata: {target.name} returns {len(body)} instances "
                f"of a series of {sizes[series[0]]}"
            )
        answers[target.name] = body[0]
    compare_keys(ctx, "series metadata", answers)

    name = f"series metadata, {plural(len(series), 'series')} in turn"
    figures = latency_figures("metadata", name, ctx.latency_requests)

    def measure(target: Running, repeat: int) -> dict[str, float]:
        urls = [f"{target.root}/studies/{s}/series/{e}/metadata" for s, e in series]
        values = latencies(urls, DICOM_JSON, ctx.latency_requests)
        return {
            figures[0].name: load.percentile(values, 50),
            figures[1].name: load.percentile(values, 95),
        }

    alternate(ctx, "series metadata", figures, measure)
    return figures


@dataclass(frozen=True)
class Query:
    name: str
    path: str  # after the DICOMweb root
    expected: int  # results a server should return (PS3.18 §10.6.3)


def qido_queries(stored: Sequence[Instance], small: Sequence[Instance]) -> list[Query]:
    """OHIF's study list and the searches a viewer's worklist sends, with the
    number of results each should return, counted from the data stored."""
    studies = {i.study: i for i in stored}
    series = Counter((i.study, i.series) for i in stored)

    # An ASCII family name, so that case and character sets cannot make the
    # servers' counts differ (PN matching may ignore case, PS3.4 C.2.2.2.1).
    names = [i.patient_name for i in small if i.patient_name.isascii()] or [
        small[0].patient_name
    ]
    family = names[0].split("^")[0]
    fragment = family[1:4] if len(family) > 3 else family
    by_name = sum(fragment in s.patient_name for s in studies.values())

    dates = sorted(s.study_date for s in studies.values())
    low, high = dates[len(dates) // 4], dates[len(dates) // 2]
    by_date = sum(low <= s.study_date <= high for s in studies.values())

    patient = small[0].patient_id
    by_patient = sum(s.patient_id == patient for s in studies.values())
    ct_series = len({(i.study, i.series) for i in stored if i.modality == "CT"})
    biggest = max((k for k in series if k[0] in {i.study for i in small}),
                  key=lambda k: series[k])  # fmt: skip
    return [
        Query(
            "QIDO OHIF study list",
            f"/studies?{OHIF_QUERY}",
            min(LIMIT, len(studies)),
        ),
        Query(
            f"QIDO PatientName=*{fragment}*",
            f"/studies?PatientName=*{quote(fragment)}*&{OHIF_QUERY}",
            min(LIMIT, by_name),
        ),
        Query(
            "QIDO StudyDate range",
            f"/studies?StudyDate={low}-{high}&{OHIF_QUERY}",
            min(LIMIT, by_date),
        ),
        Query(
            "QIDO PatientID",
            f"/studies?PatientID={quote(patient)}&{OHIF_QUERY}",
            min(LIMIT, by_patient),
        ),
        Query(
            "QIDO series Modality=CT",
            f"/series?Modality=CT&limit={LIMIT}&offset=0",
            min(LIMIT, ct_series),
        ),
        Query(
            "QIDO instances of a series",
            f"/studies/{biggest[0]}/series/{biggest[1]}/instances",
            series[biggest],
        ),
    ]


def rate(url: str, seconds: float) -> load.Rate:
    return load.rate(url, DICOM_JSON, seconds)


def qido(ctx: Context, bare: Running | None, suffix: str = "") -> list[Figure]:
    """Each search's latency from one client, then its request rate under
    concurrency (wrk, or Python threads without it); a bare ASGI endpoint's
    rate is the floor."""
    queries = qido_queries(ctx.stored, ctx.small)
    for query in queries:
        answers = {}
        for target in ctx.targets:
            response = get_checked(
                target, target.root + query.path, DICOM_JSON, query.name
            )
            note_encoding(ctx, target, response, "QIDO-RS")
            body = response.json()
            if len(body) != query.expected:
                ctx.differ(
                    f"{query.name}{suffix}: {target.name} returns {len(body)} "
                    f"results; the data holds {query.expected}"
                )
            if body:
                answers[target.name] = body[0]
        compare_keys(ctx, query.name, answers)

    tool = (
        "wrk, 8 connections" if load.wrk_available() else "python, 4 threads"
    ) + f", {ctx.seconds:g} s"
    figures: list[Figure] = []
    for query in queries:
        name = f"{query.name}{suffix}"
        figures += latency_figures("qido", name, ctx.latency_requests)
        figures.append(
            Figure(
                "qido",
                f"{name}: requests/s",
                "requests/s",
                True,
                tool,
                floor="bare ASGI" if bare else "",
            )
        )

    def measure(target: Running, repeat: int) -> dict[str, float]:
        if target.name == "bare ASGI":
            # The floor: the same client against an endpoint that does nothing.
            per_second = rate(target.url + "/", ctx.seconds).per_second
            return {f"{q.name}{suffix}: requests/s": per_second for q in queries}
        values = {}
        for query in queries:
            name = f"{query.name}{suffix}"
            url = target.root + query.path
            times = latencies([url], DICOM_JSON, ctx.latency_requests)
            values[f"{name}: latency p50"] = load.percentile(times, 50)
            values[f"{name}: latency p95"] = load.percentile(times, 95)
            measured = rate(url, ctx.seconds)
            if measured.errors:
                raise SystemExit(
                    f"bench: {target.name}: {measured.errors} failed requests "
                    f"in {query.name}"
                )
            values[f"{name}: requests/s"] = measured.per_second
        return values

    floors = []
    if bare is not None:
        floors = [Running("bare ASGI", bare.url, bare.url, bare.pid)]
    alternate(ctx, f"QIDO-RS{suffix}", figures, measure, floors)
    return figures
