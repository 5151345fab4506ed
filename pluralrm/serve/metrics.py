"""Prometheus metrics of the reward server, in the text exposition format (``GET /metrics``).

Three families, kept in memory by :class:`Metrics` and rendered by :meth:`Metrics.render`
(format: https://prometheus.io/docs/instrumenting/exposition_formats/):

- ``pluralrm_requests_total{route, status}`` — counter of answered requests;
- ``pluralrm_request_duration_seconds{route}`` — histogram of request latency;
- ``pluralrm_batch_rows`` — histogram of the rows per batched model call (how well
  concurrent requests share the model).

Written by hand rather than with ``prometheus_client``: three families do not justify a
dependency, and the state is plain numbers updated on the event loop (one thread).
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
# Paths outside this set are counted under one label, so that probing clients cannot grow the label set.
KNOWN_ROUTES = ("/score", "/compare", "/get_reward", "/groups", "/health", "/healthz", "/readyz", "/metrics",
                "/docs", "/openapi.json")


@dataclass
class Histogram:
    """Cumulative-bucket histogram: ``counts[i]`` observations ``<= buckets[i]``, plus +Inf."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out, running = [], 0
        for bound, c in zip((*self.buckets, float("inf")), self.counts):
            running += c
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{braces} {self.total:.6g}", f"{name}_count{braces} {self.n}"]
        return out


class Metrics:
    """The server's counters and histograms (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_rows = Histogram(BATCH_BUCKETS_ROWS)

    @staticmethod
    def route_label(path: str) -> str:
        return path if path in KNOWN_ROUTES else "other"

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = self.route_label(path)
        self.requests[(route, status)] += 1
        self.latency.setdefault(route, Histogram(LATENCY_BUCKETS_S)).observe(seconds)

    def observe_batch(self, rows: int) -> None:
        self.batch_rows.observe(rows)

    def render(self) -> str:
        lines = ["# HELP pluralrm_requests_total Requests answered, by route and HTTP status.",
                 "# TYPE pluralrm_requests_total counter"]
        lines += [f'pluralrm_requests_total{{route="{r}",status="{s}"}} {n}'
                  for (r, s), n in sorted(self.requests.items())]
        lines += ["# HELP pluralrm_request_duration_seconds Request latency, from first byte received to answer sent.",
                  "# TYPE pluralrm_request_duration_seconds histogram"]
        for route, h in sorted(self.latency.items()):
            lines += h.lines("pluralrm_request_duration_seconds", f'route="{route}"')
        lines += ["# HELP pluralrm_batch_rows Rows per batched model call.",
                  "# TYPE pluralrm_batch_rows histogram"]
        lines += self.batch_rows.lines("pluralrm_batch_rows")
        return "\n".join(lines) + "\n"


__all__ = ["BATCH_BUCKETS_ROWS", "LATENCY_BUCKETS_S", "Histogram", "Metrics"]
