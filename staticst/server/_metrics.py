"""Prometheus metrics of the service (``GET /metrics``), kept in plain Python on the event loop.

Recorded for every request that reaches the application: its count by route, method and status, its
latency (to the response head) by route, the number of inputs of each POST request, and the requests in
flight. Everything is updated on the event loop thread only (no locks), with a few integer additions and one
``bisect`` per histogram: about a microsecond per request. Each worker process has its own counters.

Route labels are the paths of the route table (a request to any other path counts as ``unmatched``), so a
client cannot grow the label set.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "UNMATCHED", "Histogram", "Metrics", "RouteMetrics"]

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip
"""Upper bounds (seconds) of the latency histogram's buckets."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
"""Upper bounds of the inputs-per-request histogram's buckets."""
UNMATCHED = "unmatched"
"""The route label of requests to a path the service does not have."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of the Prometheus text exposition format."""


class Histogram:
    """A Prometheus histogram: counts per bucket, the sum and the count of the observed values."""

    __slots__ = ("bounds", "buckets", "count", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.buckets = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one value (in the first bucket whose bound is at least ``value``)."""
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def lines(self, name: str, labels: str) -> Iterable[str]:
        """The exposition lines: cumulative ``_bucket`` counts, ``_sum`` and ``_count``."""
        running = 0
        sep = "," if labels else ""
        for bound, n in zip((*(_number(b) for b in self.bounds), "+Inf"), self.buckets, strict=True):
            running += n
            yield f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}'
        braces = f"{{{labels}}}" if labels else ""
        yield f"{name}_sum{braces} {_number(self.total)}"
        yield f"{name}_count{braces} {self.count}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else f"{float(value):.1f}"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RouteMetrics:
    """The counters of one route and method: bound once, so a request updates them without a lookup."""

    __slots__ = ("batch", "latency", "method", "route", "statuses")

    def __init__(self, route: str, method: str) -> None:
        self.route = route
        self.method = method
        self.statuses: dict[int, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch = Histogram(BATCH_BUCKETS)

    def done(self, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latency.observe(seconds)

    def count(self, status: int) -> None:
        """Count one request answered outside the route handlers (404, 405, 500): no latency."""
        self.statuses[status] = self.statuses.get(status, 0) + 1


class Metrics:
    """All metrics of one service (one worker process).

    Args:
        model_name: The served model's name (the ``staticst_model_info`` label).
        dim: The model's dimension.
    """

    def __init__(self, model_name: str, dim: int) -> None:
        self.model_name = model_name
        self.dim = dim
        self.in_flight = 0
        self._routes: dict[tuple[str, str], RouteMetrics] = {}

    def route(self, path: str, method: str) -> RouteMetrics:
        """The counters of ``method path``, created on first use (``path``: a table path or :data:`UNMATCHED`)."""
        key = (path, method)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = RouteMetrics(path, method)
        return found

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format (version 0.0.4)."""
        routes = sorted(self._routes.values(), key=lambda r: (r.route, r.method))
        out = [
            "# HELP staticst_requests_total Requests answered by the application, by route, method and status.",
            "# TYPE staticst_requests_total counter",
        ]
        for r in routes:
            for status, count in sorted(r.statuses.items()):
                out.append(
                    f'staticst_requests_total{{route="{_label(r.route)}",method="{r.method}",status="{status}"}} {count}'
                )
        out += [
            "# HELP staticst_request_duration_seconds Time from the start of a request to its response head.",
            "# TYPE staticst_request_duration_seconds histogram",
        ]
        for r in routes:
            if r.latency.count:
                out += r.latency.lines(
                    "staticst_request_duration_seconds", f'route="{_label(r.route)}",method="{r.method}"'
                )
        out += [
            "# HELP staticst_request_inputs Inputs (texts or token-id sequences) per valid POST request.",
            "# TYPE staticst_request_inputs histogram",
        ]
        for r in routes:
            if r.batch.count:
                out += r.batch.lines("staticst_request_inputs", f'route="{_label(r.route)}"')
        out += [
            "# HELP staticst_requests_in_flight Requests being handled by this worker process.",
            "# TYPE staticst_requests_in_flight gauge",
            f"staticst_requests_in_flight {self.in_flight}",
            "# HELP staticst_model_info The served model (always 1).",
            "# TYPE staticst_model_info gauge",
            f'staticst_model_info{{model="{_label(self.model_name)}",dim="{self.dim}"}} 1',
        ]
        return "\n".join(out) + "\n"
