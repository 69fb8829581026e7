"""`minga traces` lists ids whole at any terminal width, since `--trace` needs them verbatim."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from minga.cli.monitor import print_traces

TRACES = [
    {
        "trace_id": f"4bf92f3577b34da6a3ce929d0e0e473{i}",
        "start": 1_798_000_000.0 + i,
        "root": "POST /orders/orders",
        "services": ["gateway", "orders", "inventory", "payments", "notifications"],
        "spans": 14,
        "duration": 0.0123,
        "errors": i % 2,
    }
    for i in range(3)
]


@pytest.mark.parametrize("width", [40, 80, 200])
def test_trace_ids_are_never_cut(width: int) -> None:
    out = io.StringIO()
    print_traces(TRACES, Console(file=out, width=width))
    text = out.getvalue()
    for t in TRACES:
        assert t["trace_id"] in text
    assert "…" not in text  # nothing else is cut either: it wraps
    assert "14" in text and "12.3 ms" in text  # the narrow columns keep their figures readable
