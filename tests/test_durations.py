"""One duration grammar for minga.yaml, @every, the CLI and the dashboard; Prometheus's units
only where the monitor's HTTP API takes them."""

from __future__ import annotations

import re

import pytest

from minga.durations import DURATION_PATTERN, parse_duration, parse_prometheus_duration
from minga.errors import SpecError
from minga.monitor import parse_time
from minga.spec import parse_spec

GOOD = {"1m30s": 90.0, "250ms": 0.25, "1h2m3s": 3723.0, "1.5h": 5400.0, " 2s ": 2.0, "2": 2.0, "0": 0.0}
BAD = ["", "s", "1x", "1s2", "1m30", "30 s", "-1s", ".5s", "1d"]


def test_the_grammar() -> None:
    assert {text: parse_duration(text) for text in GOOD} == GOOD
    assert parse_duration(3) == 3.0 and parse_duration(0.5) == 0.5
    for bad in [*BAD, True, -1, None]:
        with pytest.raises(ValueError, match="a duration such as 500ms"):
            parse_duration(bad)


def test_the_json_schema_pattern_is_the_same_grammar() -> None:
    pattern = re.compile(DURATION_PATTERN)
    assert all(pattern.match(text) for text in GOOD)
    assert not any(pattern.match(text) for text in BAD)


def test_prometheus_durations_add_days_weeks_and_years() -> None:
    assert parse_prometheus_duration("1d12h") == 129_600.0
    assert parse_prometheus_duration("1w") == 7 * 86_400.0
    assert parse_prometheus_duration("1y") == 365 * 86_400.0
    assert parse_prometheus_duration("1m30s") == 90.0
    assert parse_time("-1d", default=0.0, now=100_000.0) == 100_000.0 - 86_400.0
    with pytest.raises(ValueError):
        parse_prometheus_duration("1h30")


def test_the_spec_takes_the_same_grammar() -> None:
    spec = parse_spec("services:\n  a:\n    module: m:A\n    ports: [http]\n    health: {http: /h, interval: 1m30s}\n")
    assert spec.services["a"].health is not None and spec.services["a"].health.interval == 90.0
    with pytest.raises(SpecError, match="duration"):
        parse_spec("services:\n  a:\n    module: m:A\n    ports: [http]\n    health: {http: /h, interval: 1d}\n")
