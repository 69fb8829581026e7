"""Durations written as text: ``"250ms"``, ``"30s"``, ``"1m30s"``, ``"2h"``, or a number of seconds.

One grammar for minga.yaml, ``@every(...)``, the CLI and the dashboard: one or more
``<number><unit>`` parts in a row (units ``ms``, ``s``, ``m``, ``h``), or one bare number of
seconds; blanks around it are ignored. The monitor's HTTP API also takes Prometheus's day,
week and year units (:func:`parse_prometheus_duration`). Pure functions, below every package
that reads a duration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DURATION_EXPECTED", "DURATION_PATTERN", "parse_duration", "parse_prometheus_duration"]

DURATION_EXPECTED = "a duration such as 500ms, 2s, 1m30s or a number of seconds"

_NUMBER = r"\d+(?:\.\d+)?"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Prometheus's year is 365 days
_PROMETHEUS_UNITS = {**_UNITS, "d": 86_400.0, "w": 604_800.0, "y": 31_536_000.0}


def _grammar(units: Mapping[str, float]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    names = "|".join(sorted(units, key=len, reverse=True))  # "ms" before "m"
    whole = rf"\s*(?:{_NUMBER}|(?:{_NUMBER}(?:{names}))+)\s*"
    return re.compile(whole), re.compile(rf"({_NUMBER})({names})?")


#: the grammar of :func:`parse_duration` as one regular expression (also the JSON Schema's pattern)
DURATION_PATTERN = "^" + _grammar(_UNITS)[0].pattern + "$"

_WHOLE, _PART = _grammar(_UNITS)
_PROMETHEUS_WHOLE, _PROMETHEUS_PART = _grammar(_PROMETHEUS_UNITS)


def parse_duration(value: Any) -> float:
    """Seconds in ``value``: ``"1m30s"`` -> 90.0, ``"2"`` -> 2.0; an int or float is seconds already.

    Raises ValueError (saying what is expected) for anything else, a negative number included.
    """
    return _parse(value, _WHOLE, _PART, _UNITS)


def parse_prometheus_duration(value: Any) -> float:
    """Like :func:`parse_duration`, with Prometheus's units ``d``, ``w`` and ``y`` (365 days) too."""
    return _parse(value, _PROMETHEUS_WHOLE, _PROMETHEUS_PART, _PROMETHEUS_UNITS)


def _parse(value: Any, whole: re.Pattern[str], part: re.Pattern[str], units: Mapping[str, float]) -> float:
    if isinstance(value, bool):
        raise ValueError(DURATION_EXPECTED)
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{DURATION_EXPECTED}, not negative")
        return float(value)
    if not isinstance(value, str) or whole.fullmatch(value) is None:
        raise ValueError(DURATION_EXPECTED)
    return sum(float(m.group(1)) * units[m.group(2) or "s"] for m in part.finditer(value))
