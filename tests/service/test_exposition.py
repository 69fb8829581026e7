"""The Prometheus text writer shared by replicas and the gateway, read back by the monitor's parser."""

from __future__ import annotations

import math

from minga.monitor import parse_exposition
from minga.service import Histogram, exposition_line, histogram_family, metric_family


def test_counts_stay_integers_and_other_numbers_keep_every_digit() -> None:
    assert exposition_line("a_total", (), 3) == "a_total 3"
    assert exposition_line("b", (("x", "1"),), 0.1 + 0.2) == 'b{x="1"} 0.30000000000000004'
    assert exposition_line("c", (), math.inf) == "c +Inf"
    assert exposition_line("c", (), -math.inf) == "c -Inf"
    assert exposition_line("c", (), math.nan) == "c NaN"
    assert exposition_line("d", (("q", 'a"b\\c\nd'),), 1.0) == 'd{q="a\\"b\\\\c\\nd"} 1.0'


def test_families_are_sorted_by_label_values_and_round_trip() -> None:
    lines = metric_family("x_total", "counter", ("route", "code"), [(("/b", "200"), 2), (("/a", "500"), 1)], "Help.")
    assert lines[:2] == ["# HELP x_total Help.", "# TYPE x_total counter"]
    assert lines[2:] == ['x_total{route="/a",code="500"} 1', 'x_total{route="/b",code="200"} 2']
    assert metric_family("g", "gauge", (), [((), 4)]) == ["# TYPE g gauge", "g 4"]
    hist = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 7.0):
        hist.observe(value)
    text = "\n".join(histogram_family("t_seconds", ("route",), [(("/a",), hist)]))
    samples = {(s.name, s.labels): s.value for s in parse_exposition(text)}
    route = ("route", "/a")
    assert samples[("t_seconds_bucket", (("le", "0.1"), route))] == 2, "a value equal to a bound counts in it"
    assert samples[("t_seconds_bucket", (("le", "1.0"), route))] == 3
    assert samples[("t_seconds_bucket", (("le", "+Inf"), route))] == 4
    assert samples[("t_seconds_count", (route,))] == 4 and samples[("t_seconds_sum", (route,))] == 7.65
