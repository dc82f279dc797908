"""One log line per request: method, path, status, bytes, milliseconds.

The query string is left out on purpose: QIDO-RS queries carry patient names
and IDs, and logs must not hold patient data.

The path is logged as the client sent it (``raw_path``, still
percent-encoded): decoded, a ``%0A`` would start a forged line of its own.

The line costs every request, preflights included, so the record is made
directly (no stack walk to find the caller, whose place is known) and its
message is formatted only by a handler that emits it; when INFO is off for
this logger the request is passed on untouched.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("dicomhub.access")

LINE = '%s "%s %s" %d %d %.1fms'
INFO = logging.INFO


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(INFO):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500
        sent = 0

        async def send_logged(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            client = scope.get("client")
            args = (
                client[0] if client else "-",
                scope["method"],
                sent_path(scope),
                status,
                sent,
                (time.perf_counter() - started) * 1000,
            )
            # What logger.info does, less findCaller: the record names this
            # function as the caller would.
            logger.handle(
                logger.makeRecord(
                    logger.name, INFO, __file__, _CALL_LINE, LINE, args, None, _CALL
                )
            )


_CALL = AccessLogMiddleware.__call__.__name__
_CALL_LINE = AccessLogMiddleware.__call__.__code__.co_firstlineno


# Visible ASCII only: a request target is made of it (RFC 9112 §3.2).
_UNSAFE = re.compile(rb"[^\x21-\x7e]")


def sent_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw is None:
        raw = scope["path"].encode("utf-8", "surrogateescape")
    if _UNSAFE.search(raw) is None:
        return raw.decode("ascii")

    # Anything else a server let through is escaped, so one request stays one
    # line.
    return _UNSAFE.sub(lambda m: b"\\x%02x" % m.group()[0], raw).decode("ascii")
