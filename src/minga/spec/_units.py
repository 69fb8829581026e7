"""Parsers for the units a spec is written in: durations (:mod:`minga.durations`), memory sizes, CPU amounts.

Pure functions; each raises ``ValueError`` whose message says what was expected, which
the loader turns into a ``file:line:column`` report.
"""

from __future__ import annotations

import re
from typing import Any

from minga.durations import DURATION_EXPECTED, DURATION_PATTERN, parse_duration

__all__ = [
    "CPU_EXPECTED",
    "DURATION_EXPECTED",
    "DURATION_PATTERN",
    "MEMORY_EXPECTED",
    "parse_cpu",
    "parse_duration",
    "parse_memory",
]

_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?", re.IGNORECASE)
_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1024**4,
    "tib": 1024**4,
}

MEMORY_EXPECTED = "a memory size such as 256Mi, 1Gi, 512MB or a number of bytes"
CPU_EXPECTED = "a CPU amount such as 0.5, 2 or 500m (millicores)"


def parse_memory(value: Any) -> Any:
    """``"256Mi"`` -> 268435456 bytes; integers are bytes."""
    if isinstance(value, bool):
        raise ValueError(MEMORY_EXPECTED)
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"{MEMORY_EXPECTED}, greater than 0")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(MEMORY_EXPECTED)
    match = _MEMORY.fullmatch(value.strip())
    if match is None:
        raise ValueError(MEMORY_EXPECTED)
    amount = int(float(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "").lower()])
    if amount <= 0:
        raise ValueError(f"{MEMORY_EXPECTED}, greater than 0")
    return amount


def parse_cpu(value: Any) -> Any:
    """``"500m"`` -> 0.5 cores; numbers are cores."""
    if isinstance(value, bool):
        raise ValueError(CPU_EXPECTED)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except ValueError:
            raise ValueError(CPU_EXPECTED) from None
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"{CPU_EXPECTED}, greater than 0")
        return float(value)
    raise ValueError(CPU_EXPECTED)
