"""The CORS layer: a pure ASGI middleware, outermost after the access log.

Preflights (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``,
on any path) are answered here, before routing and authentication, because
they never carry credentials (Fetch, #cors-protocol-and-credentials; D10): 204
when allowed (D1), 403 with a text/plain reason and no ``Access-Control-*``
header when not (D2).

Every other answer passes through ``send`` and gets exactly the headers the
policy grants, whatever its status: 2xx, 3xx, 4xx and the 500 that Starlette's
server-error layer sends from inside before it re-raises (D9, D17). Headers
an inner layer set under ``Access-Control-*`` are replaced (D13); ``Vary`` is
merged, never overwritten (docs/cors.md, D4 and D11).

The policy can be replaced while the server runs (`PolicyHolder.replace`); a
request reads it once, at its start. A preflight's answer depends only on the
plan and on the request's CORS headers, so answers are remembered per plan (a
replaced policy starts afresh) in a bounded table. Known limit: the holder
lives in one process; spreading a change to other replicas is the admin API's
concern.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .plan import OWNED, CorsPlan, Header
from .policy import CorsPolicy

logger = logging.getLogger(__name__)

ORIGIN = b"origin"
ACRM = b"access-control-request-method"
ACRH = b"access-control-request-headers"
ACRPN = b"access-control-request-private-network"
VARY = b"vary"

# Preflight answers remembered per plan. The table is emptied when full and
# keys longer than the limit are never stored, so made-up origins and header
# lists cannot grow it without limit.
PREFLIGHT_ANSWERS_MAX = 512
PREFLIGHT_KEY_MAX_BYTES = 2048

# A refused preflight is logged once per (origin, reason) in this many seconds.
REFUSAL_LOG_INTERVAL = 60.0
_REFUSAL_LOG_MAX_KEYS = 1024


class PolicyHolder:
    """The policy in force; `replace` swaps it for the next request."""

    def __init__(self, policy: CorsPolicy):
        self._plan = _compile(policy)

    @property
    def current(self) -> CorsPolicy:
        return self._plan.policy

    @property
    def plan(self) -> CorsPlan:
        return self._plan

    def replace(self, policy: CorsPolicy) -> None:
        # One attribute assignment: a request sees the old or the new plan,
        # never a mixture of both.
        self._plan = _compile(policy)


def _compile(policy: CorsPolicy) -> CorsPlan:
    if not isinstance(policy, CorsPolicy):
        raise TypeError(
            f"expected a CorsPolicy (from parse_cors_settings), got {type(policy)}"
        )
    return CorsPlan(policy)


class CORSMiddleware:
    def __init__(self, app: ASGIApp, holder: PolicyHolder):
        self.app = app
        self.holder = holder
        self._refusals = _RefusalLog()
        self._answers = _PreflightAnswers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        plan = self.holder.plan
        preflight = scope["method"] == "OPTIONS"

        # One pass over the request headers; ASGI servers give lower-case
        # names. Repeated Origin fields are joined as a browser would join
        # them, which never equals an allowed origin.
        origin: bytes | None = None
        request_method: bytes | None = None
        request_headers: list[bytes] = []
        private_network = False
        for name, value in scope["headers"]:
            if name == ORIGIN:
                origin = value if origin is None else origin + b", " + value
            elif preflight and name.startswith(b"access-control-request-"):
                if name == ACRM:
                    request_method = (
                        value
                        if request_method is None
                        else request_method + b"," + value
                    )
                elif name == ACRH:
                    request_headers.append(value)
                elif name == ACRPN:
                    private_network = value.strip() == b"true"

        # D10: OPTIONS + Origin + ACRM is a preflight, on any path. OPTIONS
        # without either goes to routing like any other request.
        if preflight and origin is not None and request_method is not None:
            await self._answer_preflight(
                plan, origin, request_method, request_headers, private_network, send
            )
            return

        granted = plan.actual_headers(origin)
        vary = plan.actual_vary

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": _rewrite(message.get("headers", ()), granted, vary),
                }
            await send(message)

        # An exception from inside (after the server-error layer sent its 500
        # through send_with_cors) passes on to the server, which logs it.
        await self.app(scope, receive, send_with_cors)

    async def _answer_preflight(
        self,
        plan: CorsPlan,
        origin: bytes,
        request_method: bytes,
        request_headers: list[bytes],
        private_network: bool,
        send: Send,
    ) -> None:
        prepared = self._answers.get(
            plan, origin, request_method, request_headers, private_network
        )
        if prepared.refusal is not None:
            check, reason = prepared.refusal
            self._refusals.log(origin, check, reason)

        # D1: 204 No Content, no body; D2: 403 with the failed check named.
        # A fresh list each time: later layers may read it as their own.
        await send(
            {
                "type": "http.response.start",
                "status": prepared.status,
                "headers": list(prepared.headers),
            }
        )
        await send({"type": "http.response.body", "body": prepared.body})


class _PreparedPreflight:
    """A preflight answer ready to send: status, raw header list, body."""

    __slots__ = ("status", "headers", "body", "refusal")

    def __init__(
        self,
        status: int,
        headers: tuple[Header, ...],
        body: bytes,
        refusal: tuple[str, str] | None,
    ):
        self.status = status
        self.headers = headers
        self.body = body
        self.refusal = refusal


def _prepare(
    plan: CorsPlan,
    origin: bytes,
    request_method: bytes,
    request_headers: list[bytes],
    private_network: bool,
) -> _PreparedPreflight:
    answer = plan.preflight(origin, request_method, request_headers, private_network)
    vary: Header = plan.preflight_vary_header

    if answer.allowed:
        # D1: 204 No Content, no body.
        return _PreparedPreflight(204, (*answer.headers, vary), b"", None)

    # D2: 403, no Access-Control-* header at all, the failed check named.
    body = f"CORS preflight refused ({answer.check}): {answer.reason}\n".encode()
    headers = (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        vary,
    )
    return _PreparedPreflight(403, headers, body, (answer.check or "", answer.reason))


class _PreflightAnswers:
    """Preflight answers of one plan, keyed by the request's CORS headers.

    The decision is a pure function of the plan and of Origin, ACRM, the ACRH
    field lines and the PNA flag (Fetch, "CORS-preflight fetch"), so a browser
    repeating a preflight (its cache holds answers for max_age at most, per
    origin and URL) gets the stored answer. A new plan, from
    `PolicyHolder.replace`, empties the table at its first request.
    """

    def __init__(self) -> None:
        self._plan: CorsPlan | None = None
        self._answers: dict[tuple[object, ...], _PreparedPreflight] = {}

    def get(
        self,
        plan: CorsPlan,
        origin: bytes,
        request_method: bytes,
        request_headers: list[bytes],
        private_network: bool,
    ) -> _PreparedPreflight:
        if plan is not self._plan:
            self._plan = plan
            self._answers = {}

        key = (origin, request_method, private_network, *request_headers)
        prepared = self._answers.get(key)
        if prepared is not None:
            return prepared

        prepared = _prepare(
            plan, origin, request_method, request_headers, private_network
        )
        size = len(origin) + len(request_method) + sum(map(len, request_headers))
        if size <= PREFLIGHT_KEY_MAX_BYTES:
            if len(self._answers) >= PREFLIGHT_ANSWERS_MAX:
                self._answers.clear()
            self._answers[key] = prepared
        return prepared

    def __len__(self) -> int:
        return len(self._answers)


def _rewrite(
    headers: list[Header] | tuple[Header, ...],
    granted: list[Header],
    vary: tuple[bytes, ...],
) -> list[Header]:
    """The inner answer's headers with ours: owned ones replaced, Vary merged."""
    result: list[Header] = []
    vary_fields: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in OWNED:
            continue
        if lowered == VARY:
            vary_fields.append(value)
            continue
        result.append((name, value))

    if vary:
        result.append((VARY, _merge_vary(vary_fields, vary)))
    else:
        result.extend((VARY, value) for value in vary_fields)
    result.extend(granted)
    return result


def _merge_vary(fields: list[bytes], ours: tuple[bytes, ...]) -> bytes:
    """One Vary field holding the inner answer's names and ours (RFC 9110 §12.5.5)."""
    if not fields:
        return b", ".join(ours)

    names = [item.strip() for field in fields for item in field.split(b",")]
    names = [n for n in names if n]
    if b"*" in names:
        # "Vary: *" already says the answer varies on everything.
        return b"*"
    present = {n.lower() for n in names}
    names += [n for n in ours if n.lower() not in present]
    return b", ".join(names)


class _RefusalLog:
    """WARNING for a refused preflight, once per (origin, reason) per interval.

    The origin and reason carry no patient data; the path (which holds UIDs)
    is left to the access log. The table is bounded, so a client sending
    endless made-up origins cannot grow it without limit.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[bytes, str], float] = {}

    def log(self, origin: bytes, check: str, reason: str) -> None:
        now = time.monotonic()
        key = (origin[:200], reason)
        last = self._last.get(key)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return

        if len(self._last) >= _REFUSAL_LOG_MAX_KEYS:
            self._last = {
                k: t for k, t in self._last.items() if now - t < REFUSAL_LOG_INTERVAL
            }
            if len(self._last) >= _REFUSAL_LOG_MAX_KEYS:
                self._last.clear()
        self._last[key] = now
        logger.warning(
            "CORS preflight refused (%s): %s; not logged again for this origin "
            "and reason for %d s",
            check,
            reason,
            int(REFUSAL_LOG_INTERVAL),
        )
