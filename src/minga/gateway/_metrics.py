"""The gateway's Prometheus metrics: counters and duration histograms per route and upstream.

Kept in plain dicts keyed by label tuples and rendered in the Prometheus text format
(version 0.0.4) on the gateway's ``/metrics``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

__all__ = ["GatewayMetrics"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.sum += value


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class GatewayMetrics:
    """What the gateway counts. Names start with ``minga_gateway_``; durations are seconds."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}  # (route, status code)
        self.durations: dict[tuple[str], _Histogram] = {}  # (route,)
        self.upstream_requests: dict[tuple[str, str, str], int] = {}  # (route, upstream, outcome)
        self.upstream_durations: dict[tuple[str, str], _Histogram] = {}  # (route, upstream)
        self.retries: dict[tuple[str], int] = {}
        self.rate_limited: dict[tuple[str], int] = {}
        self.gauges: list[Callable[[], Iterable[str]]] = []

    def request(self, route: str, status: int, seconds: float) -> None:
        key = (route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.durations.get((route,))
        if hist is None:
            hist = self.durations[(route,)] = _Histogram()
        hist.observe(seconds)

    def upstream(self, route: str, upstream: str, ok: bool, seconds: float) -> None:
        key = (route, upstream, "ok" if ok else "error")
        self.upstream_requests[key] = self.upstream_requests.get(key, 0) + 1
        hist = self.upstream_durations.get((route, upstream))
        if hist is None:
            hist = self.upstream_durations[(route, upstream)] = _Histogram()
        hist.observe(seconds)

    def retry(self, route: str) -> None:
        self.retries[(route,)] = self.retries.get((route,), 0) + 1

    def limited(self, route: str) -> None:
        self.rate_limited[(route,)] = self.rate_limited.get((route,), 0) + 1

    def render(self) -> str:
        """Every metric in the Prometheus text format."""
        out: list[str] = []
        self._counter(
            out,
            "requests_total",
            "Requests answered, by route and status code.",
            ("route", "code"),
            self.requests,
        )
        self._histogram(
            out, "request_duration_seconds", "Time to answer a request, by route.", ("route",), self.durations
        )
        self._counter(
            out,
            "upstream_requests_total",
            "Attempts sent to upstream instances, by outcome (error: no response or 5xx).",
            ("route", "upstream", "outcome"),
            self.upstream_requests,
        )
        self._histogram(
            out,
            "upstream_duration_seconds",
            "Time an upstream attempt took.",
            ("route", "upstream"),
            self.upstream_durations,
        )
        self._counter(
            out, "retries_total", "Attempts sent again to another instance.", ("route",), self.retries
        )
        self._counter(out, "rate_limited_total", "Requests refused with 429.", ("route",), self.rate_limited)
        for gauge in self.gauges:
            out.extend(gauge())
        return "\n".join(out) + "\n"

    @staticmethod
    def _counter(
        out: list[str],
        name: str,
        help: str,
        names: tuple[str, ...],
        values: dict[tuple[str, ...], int]
        | dict[tuple[str, str], int]
        | dict[tuple[str, str, str], int]
        | dict[tuple[str], int],
    ) -> None:
        out.append(f"# HELP minga_gateway_{name} {help}")
        out.append(f"# TYPE minga_gateway_{name} counter")
        for key, value in sorted(values.items()):
            out.append(f"minga_gateway_{name}{_labels(names, key)} {value}")

    @staticmethod
    def _histogram(
        out: list[str],
        name: str,
        help: str,
        names: tuple[str, ...],
        values: dict[tuple[str], _Histogram] | dict[tuple[str, str], _Histogram],
    ) -> None:
        out.append(f"# HELP minga_gateway_{name} {help}")
        out.append(f"# TYPE minga_gateway_{name} histogram")
        for key, hist in sorted(values.items()):
            total = 0
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                total += count
                le = 'le="+Inf"' if bound == float("inf") else f'le="{bound!r}"'
                out.append(f"minga_gateway_{name}_bucket{_labels(names, key, le)} {total}")
            out.append(f"minga_gateway_{name}_sum{_labels(names, key)} {hist.sum:.6f}")
            out.append(f"minga_gateway_{name}_count{_labels(names, key)} {total}")
