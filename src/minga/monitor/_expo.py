"""The Prometheus text exposition format (0.0.4), parsed: bytes in, samples out, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Sample", "SeriesCache", "parse_exposition", "parse_exposition_cached"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample line: metric ``name``, sorted ``labels`` and ``value`` (timestamps are ignored)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _labels(text: str, start: int, line: str) -> tuple[list[tuple[str, str]], int]:
    """Parse ``a="x",b="y"}`` from ``start``; return the labels and the index after ``}``."""
    out: list[tuple[str, str]] = []
    i, n = start, len(text)
    while True:
        while i < n and text[i] in " ,":
            i += 1
        if i < n and text[i] == "}":
            return out, i + 1
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= n or text[eq + 1] != '"':
            raise ValueError(f"bad label set in {line!r}")
        key = text[i:eq].strip()
        i = eq + 2
        chars: list[str] = []
        while True:
            if i >= n:
                raise ValueError(f"unterminated label value in {line!r}")
            c = text[i]
            if c == "\\" and i + 1 < n:
                chars.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                chars.append(c)
                i += 1
        out.append((key, "".join(chars)))


def _value(raw: str) -> float:
    if raw in ("+Inf", "Inf"):
        return float("inf")
    if raw == "-Inf":
        return float("-inf")
    return float(raw)  # "NaN" parses too


_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _fast_labels(text: str, line: str) -> list[tuple[str, str]]:
    """Labels of a ``{...}`` body; the common case (no escapes) without a character loop."""
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if m is None:
            if text[pos:].strip(" ,"):
                raise ValueError(f"bad label set in {line!r}")
            break
        value = m.group(2)
        if "\\" in value:
            value = _labels(f'{m.group(1)}="{value}"}}', 0, line)[0][0][1]
        pairs.append((m.group(1), value))
        pos = m.end()
    return pairs


def parse_exposition(text: str) -> list[Sample]:
    """Every sample in ``text``; comments and ``# TYPE``/``# HELP`` lines are skipped.

    Raises ValueError naming the first malformed line.
    """
    samples: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        m = _LINE.fullmatch(line) or _LINE.fullmatch(line.rsplit(None, 1)[0])  # a trailing timestamp
        if m is None:
            raise ValueError(f"a sample needs a name and a value: {line!r}")
        name, body, value = m.groups()
        labels = _fast_labels(body, line) if body else []
        samples.append(Sample(name, tuple(sorted(labels)), _value(value)))
    return samples


SeriesCache = dict[str, tuple[str, tuple[tuple[str, str], ...]]]
"""Series text (``name{labels}``) to its parsed name and sorted labels, kept between scrapes."""


def parse_exposition_cached(
    text: str, cache: SeriesCache, extra: tuple[tuple[str, str], ...] = ()
) -> list[Sample]:
    """:func:`parse_exposition` with ``extra`` labels set on every sample (replacing the sample's own
    labels of those names), reusing the parsed name and labels of series seen before.

    A replica exposes the same series scrape after scrape, so after the first scrape only the
    values are parsed. ``cache`` (one per ``extra``) is filled as it goes; the caller bounds its size.
    """
    names = {k for k, _ in extra}
    samples: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        brace = line.rfind("}")
        if brace >= 0:
            key, rest = line[: brace + 1], line[brace + 1 :].split()
        else:
            parts = line.split()
            key, rest = parts[0], parts[1:]
        known = cache.get(key)
        if known is None or not rest:
            sample = parse_exposition(line)[0]
            labels = tuple(sorted(extra + tuple(p for p in sample.labels if p[0] not in names)))
            cache[key] = (sample.name, labels)
            samples.append(Sample(sample.name, labels, sample.value))
            continue
        samples.append(Sample(known[0], known[1], _value(rest[0])))
    return samples
