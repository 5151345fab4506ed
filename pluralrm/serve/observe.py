"""Request logging and metrics for every request (ASGI middleware).

One log line per request on the ``pluralrm.serve.access`` logger: method, path, status,
latency, bytes in and out, client address. Never the body: prompts and responses may be
private, so texts stay out of logs by default (``log_bodies=True`` is for debugging on a
private machine only). The same observation feeds :class:`~pluralrm.serve.metrics.Metrics`.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from pluralrm.serve.metrics import Metrics

access_log = logging.getLogger("pluralrm.serve.access")


class Observe:
    """ASGI middleware: times each HTTP request, counts it in ``metrics`` and logs it."""

    def __init__(self, app: Any, metrics: Metrics, log_bodies: bool = False):
        self.app, self.metrics, self.log_bodies = app, metrics, log_bodies

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, sizes, bodies = [500], {"in": 0, "out": 0}, []

        async def counting_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                sizes["in"] += len(message.get("body", b""))
                if self.log_bodies:
                    bodies.append(message.get("body", b""))
            return message

        async def observing_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            elif message["type"] == "http.response.body":
                sizes["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, observing_send)
        finally:
            seconds = time.perf_counter() - start
            path = scope.get("path", "")
            self.metrics.observe_request(path, status[0], seconds)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                access_log.info("%s %s %s %d %.1fms in=%dB out=%dB%s", client[0], scope.get("method"), path,
                                status[0], seconds * 1000, sizes["in"], sizes["out"],
                                f" body={b''.join(bodies)[:2000]!r}" if self.log_bodies else "")


__all__ = ["Observe", "access_log"]
