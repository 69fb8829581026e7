"""The gateway's Prometheus metrics: counters and duration histograms per route and upstream.

Kept in plain dicts keyed by label tuples and rendered in the Prometheus text format
(version 0.0.4) on the gateway's ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from minga.service import Histogram, histogram_family, metric_family

__all__ = ["GatewayMetrics"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PREFIX = "minga_gateway_"


class GatewayMetrics:
    """What the gateway counts. Names start with ``minga_gateway_``; durations are seconds."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}  # (route, status code)
        self.durations: dict[tuple[str], Histogram] = {}  # (route,)
        self.upstream_requests: dict[tuple[str, str, str], int] = {}  # (route, upstream, outcome)
        self.upstream_durations: dict[tuple[str, str], Histogram] = {}  # (route, upstream)
        self.retries: dict[tuple[str], int] = {}
        self.rate_limited: dict[tuple[str], int] = {}
        self.gauges: list[Callable[[], Iterable[str]]] = []

    def request(self, route: str, status: int, seconds: float) -> None:
        key = (route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.durations.get((route,))
        if hist is None:
            hist = self.durations[(route,)] = Histogram(BUCKETS)
        hist.observe(seconds)

    def upstream(self, route: str, upstream: str, ok: bool, seconds: float) -> None:
        key = (route, upstream, "ok" if ok else "error")
        self.upstream_requests[key] = self.upstream_requests.get(key, 0) + 1
        hist = self.upstream_durations.get((route, upstream))
        if hist is None:
            hist = self.upstream_durations[(route, upstream)] = Histogram(BUCKETS)
        hist.observe(seconds)

    def retry(self, route: str) -> None:
        self.retries[(route,)] = self.retries.get((route,), 0) + 1

    def limited(self, route: str) -> None:
        self.rate_limited[(route,)] = self.rate_limited.get((route,), 0) + 1

    def render(self) -> str:
        """Every metric in the Prometheus text format."""
        out = metric_family(
            PREFIX + "requests_total",
            "counter",
            ("route", "code"),
            self.requests.items(),
            "Requests answered, by route and status code.",
        )
        out += histogram_family(
            PREFIX + "request_duration_seconds",
            ("route",),
            self.durations.items(),
            "Time to answer a request, by route.",
        )
        out += metric_family(
            PREFIX + "upstream_requests_total",
            "counter",
            ("route", "upstream", "outcome"),
            self.upstream_requests.items(),
            "Attempts sent to upstream instances, by outcome (error: no response or 5xx).",
        )
        out += histogram_family(
            PREFIX + "upstream_duration_seconds",
            ("route", "upstream"),
            self.upstream_durations.items(),
            "Time an upstream attempt took.",
        )
        out += metric_family(
            PREFIX + "retries_total",
            "counter",
            ("route",),
            self.retries.items(),
            "Attempts sent again to another instance.",
        )
        out += metric_family(
            PREFIX + "rate_limited_total", "counter", ("route",), self.rate_limited.items(), "Requests refused with 429."
        )
        for gauge in self.gauges:
            out.extend(gauge())
        return "\n".join(out) + "\n"
