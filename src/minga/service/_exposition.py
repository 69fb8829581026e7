"""The Prometheus text exposition format (0.0.4), written: numbers in, lines out, no I/O.

A replica's ``/metrics`` (:class:`~minga.service._metrics.ReplicaMetrics`) and the gateway's
are both written with these few functions; :func:`minga.monitor.parse_exposition` reads them back.
Counts (Python ``int``) are written as integers, other numbers in their shortest exact form.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

__all__ = ["Histogram", "exposition_line", "histogram_family", "metric_family"]

_INF = float("inf")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def exposition_line(name: str, labels: Iterable[tuple[str, str]], value: float) -> str:
    """One sample in the Prometheus text format: ``name{a="1"} value``."""
    parts = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{parts}}} {_number(value)}" if parts else f"{name} {_number(value)}"


def _header(name: str, kind: str, help: str) -> list[str]:
    lines = [f"# HELP {name} {help}"] if help else []
    lines.append(f"# TYPE {name} {kind}")
    return lines


def metric_family(
    name: str,
    kind: str,
    names: tuple[str, ...],
    samples: Iterable[tuple[tuple[str, ...], float]],
    help: str = "",
) -> list[str]:
    """A counter or gauge ``kind`` of metric: its ``# HELP`` (when ``help`` is given) and ``# TYPE``
    lines, then one sample per ``(label values, value)`` in ``samples``, ordered by label values.
    ``names`` are the label names, in the order of the values.
    """
    lines = _header(name, kind, help)
    for key, value in sorted(samples):
        lines.append(exposition_line(name, zip(names, key, strict=True), value))
    return lines


class Histogram:
    """Observations counted in fixed buckets: ``buckets`` are the sorted upper bounds (``le``),
    an observation equal to a bound counts in that bucket; above the last it counts in ``+Inf``."""

    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: tuple[tuple[str, str], ...]) -> list[str]:
        """The cumulative ``name_bucket`` samples, then ``name_sum`` and ``name_count``."""
        lines: list[str] = []
        running = 0
        for bound, count in zip((*self.buckets, _INF), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == _INF else repr(bound)
            lines.append(exposition_line(f"{name}_bucket", (*labels, ("le", le)), running))
        lines.append(exposition_line(f"{name}_sum", labels, self.sum))
        lines.append(exposition_line(f"{name}_count", labels, running))
        return lines


def histogram_family(
    name: str,
    names: tuple[str, ...],
    histograms: Iterable[tuple[tuple[str, ...], Histogram]],
    help: str = "",
) -> list[str]:
    """A histogram metric: its ``# HELP`` (when ``help`` is given) and ``# TYPE`` lines, then the
    samples of each ``(label values, histogram)`` in ``histograms``, ordered by label values."""
    lines = _header(name, "histogram", help)
    for key, hist in sorted(histograms, key=lambda item: item[0]):
        lines.extend(hist.lines(name, tuple(zip(names, key, strict=True))))
    return lines
