"""The cost of CORS: preflights against a floor, and one QIDO-RS request with and
without an ``Origin`` header.

A server on a shared machine runs faster or slower with whatever else runs, so
every comparison here is made in rounds: the variants alternate within a round,
their order rotates from round to round, and a cost is the median of the
per-round ratios, in which the drift between rounds cancels out.

1. Preflights: ``OPTIONS .../frames/1`` with ``Origin``, ACRM ``GET`` and ACRH
   ``accept,authorization`` (a viewer fetching a frame with a bearer token,
   docs/cors.md §2) against dicomhub, then the same request against the floor
   (bench/asgi.py ``bare``: 204 and no logic, under the same uvicorn options)
   and against the floor behind dicomhub's access log. Goal: a preflight costs
   at most 1.10 times the floor's request.
2. Actual requests: a QIDO-RS query with no ``Origin``, with the allowed
   origin and with a disallowed one. Goal: the allowed ``Origin`` costs under 5 %.
3. The CORS layer alone, in process: the microseconds ``CORSMiddleware`` adds
   around an application that answers at once; with the request rate of (2)
   this gives the share of a QIDO request that CORS can take at most, free of
   the noise that (2) suffers on a busy machine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dicomhub.cors import CORSMiddleware, PolicyHolder, parse_cors_settings

from . import load, servers
from .data import Instance
from .table import Row

PREFLIGHT_GOAL = 1.10
ACTUAL_GOAL = 0.05

PREFLIGHT_HEADERS = {
    "Origin": servers.ALLOWED_ORIGIN,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "accept,authorization",
}
QIDO_HEADERS = {"Accept": "application/dicom+json"}
ORIGINS = {
    "no Origin": None,
    "Origin allowed": servers.ALLOWED_ORIGIN,
    "Origin not allowed": servers.DISALLOWED_ORIGIN,
}


@dataclass(frozen=True)
class Variant:
    name: str
    url: str
    headers: dict[str, str]
    method: str = "GET"


def alternate(
    variants: Sequence[Variant], seconds: float, rounds: int
) -> dict[str, list[load.Rate]]:
    """`rounds` rate measurements of each variant, alternated, order rotated."""
    results: dict[str, list[load.Rate]] = {v.name: [] for v in variants}
    for round_ in range(rounds):
        shift = round_ % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            rate = load.rate(variant.url, variant.headers, seconds, variant.method)
            results[variant.name].append(rate)
    return results


def median_rate(rates: list[load.Rate]) -> float:
    return statistics.median(r.per_second for r in rates)


def spread(rates: list[load.Rate]) -> str:
    values = sorted(r.per_second for r in rates)
    return (
        f"min {values[0]:,.0f}, median {statistics.median(values):,.0f}, "
        f"max {values[-1]:,.0f}"
    )


def time_ratios(base: list[load.Rate], other: list[load.Rate]) -> list[float]:
    """Per round: time a request of `other` takes over one of `base`."""
    return [
        b.per_second / o.per_second if o.per_second else float("inf")
        for b, o in zip(base, other, strict=True)
    ]


def about(rates: list[load.Rate], seconds: float) -> str:
    failed = sum(r.errors for r in rates)
    p50 = statistics.median(r.p50_ms for r in rates)
    return (
        f"{len(rates)} × {seconds:g} s alternated, {rates[0].tool}: "
        f"{spread(rates)}; p50 {p50:.1f} ms; {failed} failed"
    )


def check(
    url: str, headers: dict[str, str], method: str, status: int, acao: str | None
) -> None:
    """Refuse to measure answers that are not what a browser would get."""
    response = httpx.request(method, url, headers=headers, timeout=60)
    got = response.headers.get("access-control-allow-origin")
    if response.status_code != status or got != acao:
        # The path only: a query string may hold a patient's ID or name.
        raise SystemExit(
            f"bench: {method} {httpx.URL(url).path} answered "
            f"{response.status_code} with Access-Control-Allow-Origin {got!r}; "
            f"expected {status} and {acao!r}. "
            f"Check CORS_SETTINGS in bench/servers.py. {response.text[:200]}"
        )


def measure_preflights(
    url: str,
    instance: Instance,
    data_dir: Path,
    log_dir: Path,
    seconds: float,
    rounds: int,
) -> tuple[list[Row], float]:
    """dicomhub's preflights/s against the floor's, alternated; rows and the
    floor's median requests/s."""
    # The frame a viewer asks for with a bearer token: Authorization is not
    # safelisted, so the browser preflights (Fetch, CORS-preflight fetch).
    path = (
        f"/v2/studies/{instance.study}/series/{instance.series}"
        f"/instances/{instance.sop}/frames/1"
    )
    check(url + path, PREFLIGHT_HEADERS, "OPTIONS", 204, servers.ALLOWED_ORIGIN)

    # One process each, as the floors are, whatever --workers the phases
    # before used; the same data folder.
    with (
        servers.server("uvicorn", data_dir, log_dir) as hub,
        servers.server("unlogged", data_dir, log_dir) as unlogged,
        servers.server("bare", data_dir, log_dir) as bare,
        servers.server("bare+cors", data_dir, log_dir) as cors,
        servers.server("bare+log", data_dir, log_dir) as logged,
    ):
        variants = [
            Variant(name, base + path, PREFLIGHT_HEADERS, "OPTIONS")
            for name, base in (
                ("dicomhub", hub),
                ("dicomhub, access_log off", unlogged),
                ("floor", bare),
                ("floor+cors", cors),
                ("floor+log", logged),
            )
        ]
        rates = alternate(variants, seconds, rounds)

    preflight = rates["dicomhub"]
    to_floor = time_ratios(rates["floor"], preflight)
    unlogged = rates["dicomhub, access_log off"]
    unlogged_to_floor = time_ratios(rates["floor"], unlogged)
    unlogged_verdict = (
        "met" if statistics.median(unlogged_to_floor) <= PREFLIGHT_GOAL else "missed"
    )
    to_logged_floor = time_ratios(rates["floor+log"], preflight)
    layer_to_floor = time_ratios(rates["floor"], rates["floor+cors"])
    log_to_floor = time_ratios(rates["floor"], rates["floor+log"])
    verdict = "met" if statistics.median(to_floor) <= PREFLIGHT_GOAL else "missed"
    rows = [
        Row(
            "CORS preflight (OPTIONS frame, ACRH accept,authorization)",
            f"{median_rate(preflight):,.0f} preflights/s; "
            f"{statistics.median(to_floor):.2f} × the floor's time a request "
            f"(goal ≤ {PREFLIGHT_GOAL:.2f}: {verdict})",
            f"{about(preflight, seconds)}; per-round ratio to the floor "
            f"{min(to_floor):.2f}-{max(to_floor):.2f}; "
            f"{statistics.median(to_logged_floor):.2f} × the time of the floor "
            "with the same access log",
        ),
        Row(
            "CORS preflight, [server] access_log = false",
            f"{median_rate(unlogged):,.0f} preflights/s; "
            f"{statistics.median(unlogged_to_floor):.2f} × the floor's time a "
            f"request (goal ≤ {PREFLIGHT_GOAL:.2f}: {unlogged_verdict})",
            f"{about(unlogged, seconds)}; per-round ratio to the floor "
            f"{min(unlogged_to_floor):.2f}-{max(unlogged_to_floor):.2f}",
        ),
        Row(
            "floor: bare ASGI app answering 204, uvicorn",
            f"{median_rate(rates['floor']):,.0f} requests/s",
            f"the same OPTIONS request; {about(rates['floor'], seconds)}",
        ),
        Row(
            "floor + dicomhub CORS layer, no access log",
            f"{median_rate(rates['floor+cors']):,.0f} preflights/s; "
            f"{statistics.median(layer_to_floor):.2f} × the floor's time",
            f"the preflight answered by CORSMiddleware alone; "
            f"{about(rates['floor+cors'], seconds)}",
        ),
        Row(
            "floor + dicomhub access log, no CORS layer",
            f"{median_rate(rates['floor+log']):,.0f} requests/s; "
            f"{statistics.median(log_to_floor):.2f} × the floor's time",
            f"one log line a request, as under dicomhub serve; "
            f"{about(rates['floor+log'], seconds)}",
        ),
    ]
    return rows, median_rate(rates["floor"])


def measure_actual(
    root: str, queries: dict[str, str], seconds: float, rounds: int
) -> tuple[list[Row], dict[str, float]]:
    """Each query with no Origin, the allowed one and a disallowed one,
    alternated; rows and each query's median no-Origin rate."""
    rows: list[Row] = []
    base_rates: dict[str, float] = {}
    for name, path in queries.items():
        url = root + path
        variants = []
        for label, origin in ORIGINS.items():
            headers = dict(QIDO_HEADERS)
            if origin is not None:
                headers["Origin"] = origin
            acao = origin if origin == servers.ALLOWED_ORIGIN else None
            check(url, headers, "GET", 200, acao)
            variants.append(Variant(label, url, headers))

        rates = alternate(variants, seconds, rounds)
        base = rates["no Origin"]
        base_rates[name] = median_rate(base)
        rows.append(
            Row(
                f"CORS cost, {name}: no Origin",
                f"{median_rate(base):,.0f} requests/s",
                about(base, seconds),
            )
        )
        for label in ("Origin allowed", "Origin not allowed"):
            costs = [r - 1 for r in time_ratios(base, rates[label])]
            cost = statistics.median(costs)
            verdict = "met" if cost < ACTUAL_GOAL else "missed"
            if max(costs) - min(costs) > 2 * ACTUAL_GOAL:
                # Rounds that differ by more than the goal cannot resolve
                # it; the in-process row can.
                verdict += ", rounds too noisy to resolve it"
            rows.append(
                Row(
                    f"CORS cost, {name}: {label}",
                    f"{median_rate(rates[label]):,.0f} requests/s; cost "
                    f"{cost:+.1%} (goal < {ACTUAL_GOAL:.0%}: {verdict})",
                    f"{about(rates[label], seconds)}; per-round cost "
                    f"{min(costs):+.1%} to {max(costs):+.1%}",
                )
            )
    return rows, base_rates


# A browser's request as the CORS layer sees it (Chromium's fetch() of a
# QIDO-RS search from another origin); the layer reads every header once.
BROWSER_HEADERS = [
    (b"host", b"127.0.0.1:8080"),
    (b"connection", b"keep-alive"),
    (b"accept", b"application/dicom+json"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0"),
    (b"sec-fetch-site", b"cross-site"),
    (b"sec-fetch-mode", b"cors"),
    (b"sec-fetch-dest", b"empty"),
    (b"referer", servers.ALLOWED_ORIGIN.encode() + b"/"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"accept-language", b"en-GB,en;q=0.9"),
]
ANSWER_HEADERS = [
    (b"content-type", b"application/dicom+json"),
    (b"content-length", b"4096"),
]


def _scope(method: str, extra: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": "/v2/studies",
        "query_string": b"",
        "headers": [*BROWSER_HEADERS, *extra],
    }


def layer_microseconds(calls: int = 10000, repeats: int = 9) -> dict[str, float]:
    """Microseconds the CORS layer takes a request, best of `repeats` runs.

    For actual requests, the time of the application alone is subtracted; a
    preflight never reaches it, so its figure is the whole answer.
    """
    policy, _ = parse_cors_settings(servers.CORS_SETTINGS)

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": ANSWER_HEADERS}
        )
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    layer = CORSMiddleware(answer, PolicyHolder(policy))
    origin = servers.ALLOWED_ORIGIN.encode()
    cases: dict[str, tuple[ASGIApp, Scope, bool]] = {
        "no Origin": (layer, _scope("GET", []), True),
        "Origin allowed": (layer, _scope("GET", [(b"origin", origin)]), True),
        "Origin not allowed": (
            layer,
            _scope("GET", [(b"origin", servers.DISALLOWED_ORIGIN.encode())]),
            True,
        ),
        "preflight": (
            layer,
            _scope(
                "OPTIONS",
                [
                    (b"origin", origin),
                    (b"access-control-request-method", b"GET"),
                    (b"access-control-request-headers", b"accept,authorization"),
                ],
            ),
            False,
        ),
    }

    async def per_call(app: ASGIApp, scope: Scope) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await app(scope, receive, send)
        return (time.perf_counter() - started) / calls

    async def run() -> dict[str, float]:
        # The cases alternate within each repeat, so that a busy moment of the
        # machine touches all of them; the best repeat of each counts.
        runs: dict[str, tuple[ASGIApp, Scope]] = {
            "app alone": (answer, _scope("GET", [])),
            **{name: (app, scope) for name, (app, scope, _) in cases.items()},
        }
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(repeats):
            for name, (app, scope) in runs.items():
                best[name] = min(best[name], await per_call(app, scope))
        alone = best["app alone"]
        return {
            name: (best[name] - alone * subtract) * 1e6
            for name, (_, _, subtract) in cases.items()
        }

    return asyncio.run(run())


def measure_layer(base_rates: dict[str, float], floor_rate: float) -> Row:
    """One row: the layer's microseconds, and their share of a QIDO request.

    Under wrk the one server process is the bottleneck, so a request takes it
    about 1/rate seconds; the layer's share is its time times that rate.
    """
    us = layer_microseconds()
    shares = "; ".join(
        f"{us['Origin allowed'] * rate / 1e6:.2%} of a {name} request "
        f"({rate:,.0f} requests/s)"
        for name, rate in base_rates.items()
    )
    floor = f"; a floor request takes {1e6 / floor_rate:.0f} µs" if floor_rate else ""
    return Row(
        "CORS layer alone, in process",
        f"{us['Origin allowed']:.1f} µs a request with the allowed Origin, "
        f"{us['no Origin']:.1f} µs without, {us['Origin not allowed']:.1f} µs "
        f"with another; a preflight {us['preflight']:.1f} µs",
        f"CORSMiddleware around an app answering at once, less that app; "
        f"best of 9 × 10,000 calls, alternated, browser-like headers; the "
        f"allowed Origin is at most {shares}{floor}",
    )


def measure(
    url: str,
    instance: Instance,
    queries: dict[str, str],
    data_dir: Path,
    log_dir: Path,
    seconds: float,
    rounds: int,
    progress: Callable[[str], None],
) -> list[Row]:
    """All the CORS rows, against the dicomhub server at `url`."""
    progress(f"CORS preflights, dicomhub and the floor, {rounds} rounds")
    rows, floor_rate = measure_preflights(
        url, instance, data_dir, log_dir, seconds, rounds
    )

    # One process, as for the preflights: with several workers the kernel may
    # hand all of wrk's connections to one of them in one round and spread
    # them in the next, which swamps a cost of a few percent.
    progress(f"CORS cost on QIDO-RS, {', '.join(queries)}, {rounds} rounds")
    with servers.server("uvicorn", data_dir, log_dir) as hub:
        actual, base_rates = measure_actual(hub + "/v2", queries, seconds, rounds)
    rows += actual

    progress("CORS layer alone, in process")
    rows.append(measure_layer(base_rates, floor_rate))
    return rows
