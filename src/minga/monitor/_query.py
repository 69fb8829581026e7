"""Metrics queries: a small subset of PromQL, parsed into a tree and evaluated over a MetricStore.

What it understands::

    minga_entrypoint_inflight{service="orders"}                  latest sample per series (5 min lookback)
    rate(minga_entrypoint_calls_total{outcome="error"}[1m])      per-second increase over a window
    increase(x[5m])  avg_over_time(x[5m])  max_over_time(x[5m])  min_over_time(x[5m])
    sum by (service) (rate(minga_entrypoint_calls_total[1m]))    sum / avg / min / max / count, ``by`` or ``without``
    histogram_quantile(0.95, sum by (le, service) (rate(minga_entrypoint_duration_seconds_bucket[5m])))
    a / b   a * 100   a + b   a - b   a > 1                      per matching label set, or with a number

Operators bind left to right except that ``*`` and ``/`` bind tighter than ``+`` and ``-``;
comparisons (``>``, ``<``, ``>=``, ``<=``) keep the series for which they hold. Durations are
``ms``, ``s``, ``m``, ``h``, ``d``. A malformed query raises :class:`~minga.errors.QueryError`;
a result with more than ``max_series`` series raises :class:`~minga.errors.CardinalityError`.

Cost is bounded: label regexes run on RE2 (linear in the label's length), one evaluation looks at
no more than ``max_points`` series-steps, and a ``timeout`` stops it with
:class:`~minga.errors.QueryTimeout`. Window functions read running sums (and, for ``max`` and
``min``, sparse tables), so ``rate(x[1d])`` costs what ``rate(x[1m])`` does.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from minga.errors import CardinalityError, QueryError, QueryTimeout
from minga.monitor._tsdb import Matcher, MetricStore, SeriesData, label_regex

__all__ = ["LOOKBACK", "Expr", "QueryEngine", "Series", "parse_query"]

LOOKBACK = 300.0  # seconds an instant selector looks back for the latest sample

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>\d+(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+)(?P<unit>ms|s|m|h|d)?(?![A-Za-z_])
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>=~|!~|!=|>=|<=|==|[-+*/(){}\[\],=<>])
    )""",
    re.VERBOSE,
)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_AGGREGATES = {"sum", "avg", "min", "max", "count"}
_RANGE_FUNCS = {"rate", "increase", "avg_over_time", "max_over_time", "min_over_time"}


# -- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...] = ()
    window: float | None = None


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Expr
    by: tuple[str, ...] | None = None
    without: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Binary:
    op: str
    left: Expr
    right: Expr


Expr = Selector | Number | Call | Aggregate | Binary


@dataclass
class _Parser:
    text: str
    tokens: list[tuple[str, str]] = field(default_factory=list)
    pos: int = 0

    def __post_init__(self) -> None:
        i = 0
        text = self.text
        while i < len(text):
            if text[i:].strip() == "":
                break
            m = _TOKEN.match(text, i)
            if m is None or m.end() == i:
                raise QueryError(text, f"unexpected {text[i:].strip()[:20]!r}")
            if m.group("num") is not None:
                unit = m.group("unit")
                value = float(m.group("num")) * (_UNITS[unit] if unit else 1.0)
                self.tokens.append(("dur" if unit else "num", repr(value)))
            elif m.group("str") is not None:
                raw = m.group("str")[1:-1]
                self.tokens.append(("str", re.sub(r"\\(.)", lambda g: {"n": "\n"}.get(g.group(1), g.group(1)), raw)))
            elif m.group("name") is not None:
                self.tokens.append(("name", m.group("name")))
            else:
                self.tokens.append(("op", m.group("op")))
            i = m.end()

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok[0] != kind or (value is not None and tok[1] != value):
            want = value or kind
            got = tok[1] or "the end"
            raise QueryError(self.text, f"expected {want!r}, found {got!r}")
        self.pos += 1
        return tok[1]

    def accept(self, kind: str, value: str) -> bool:
        if self.peek() == (kind, value):
            self.pos += 1
            return True
        return False

    def parse(self) -> Expr:
        expr = self.comparison()
        if self.peek()[0] != "end":
            raise QueryError(self.text, f"unexpected {self.peek()[1]!r}")
        return expr

    def comparison(self) -> Expr:
        left = self.additive()
        while self.peek()[0] == "op" and self.peek()[1] in (">", "<", ">=", "<=", "=="):
            op = self.take("op")
            left = Binary(op, left, self.additive())
        return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.take("op")
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            op = self.take("op")
            left = Binary(op, left, self.unary())
        return left

    def labels(self) -> tuple[str, ...]:
        self.take("op", "(")
        names: list[str] = []
        while not self.accept("op", ")"):
            names.append(self.take("name"))
            if not self.accept("op", ","):
                self.take("op", ")")
                break
        return tuple(names)

    def unary(self) -> Expr:
        kind, value = self.peek()
        if kind == "num":
            self.pos += 1
            return Number(float(value))
        if kind == "op" and value == "(":
            self.pos += 1
            inner = self.comparison()
            self.take("op", ")")
            return inner
        if kind == "op" and value == "-":
            self.pos += 1
            return Binary("*", Number(-1.0), self.unary())
        name = self.take("name")
        if name in _AGGREGATES and self.peek() in (("name", "by"), ("name", "without"), ("op", "(")):
            by = without = None
            if self.accept("name", "by"):
                by = self.labels()
            elif self.accept("name", "without"):
                without = self.labels()
            self.take("op", "(")
            inner = self.comparison()
            self.take("op", ")")
            if by is None and without is None:
                if self.accept("name", "by"):
                    by = self.labels()
                elif self.accept("name", "without"):
                    without = self.labels()
            return Aggregate(name, inner, by, without)
        if name in _RANGE_FUNCS:
            self.take("op", "(")
            sel = self.selector(self.take("name"))
            self.take("op", ")")
            if sel.window is None:
                raise QueryError(self.text, f"{name}() needs a range such as [1m]")
            return Call(name, (sel,))
        if name == "histogram_quantile":
            self.take("op", "(")
            q = Number(float(self.take("num")))
            self.take("op", ",")
            inner = self.comparison()
            self.take("op", ")")
            return Call(name, (q, inner))
        if self.peek() == ("op", "("):
            raise QueryError(self.text, f"unknown function {name}()")
        return self.selector(name)

    def selector(self, name: str) -> Selector:
        matchers: list[Matcher] = []
        if self.accept("op", "{"):
            while not self.accept("op", "}"):
                label = self.take("name")
                op = self.take("op")
                if op not in ("=", "!=", "=~", "!~"):
                    raise QueryError(self.text, f"unknown label matcher {op!r}")
                value = self.take("str")
                if op in ("=~", "!~"):
                    try:
                        label_regex(value)
                    except ValueError as exc:
                        raise QueryError(self.text, f"bad regex {value!r}: {exc}") from None
                matchers.append(Matcher(label, op, value))
                if not self.accept("op", ","):
                    self.take("op", "}")
                    break
        window = None
        if self.accept("op", "["):
            window = float(self.take("num" if self.peek()[0] == "num" else "dur"))
            if window <= 0:
                raise QueryError(self.text, "a range must be longer than zero")
            self.take("op", "]")
        return Selector(name, tuple(matchers), window)


def parse_query(text: str) -> Expr:
    """The tree of ``text``; QueryError when it is not a query this engine understands."""
    if not text.strip():
        raise QueryError(text, "the query is empty")
    return _Parser(text).parse()


# -- evaluation --------------------------------------------------------------------------------

Key = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a result: its labels and (Unix seconds, value) points (one for an instant query)."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


Vector = dict[Key, float]
Value = Vector | float


def _key(labels: dict[str, str]) -> Key:
    return tuple(sorted(labels.items()))


def _window_increase(
    observed: float, first: tuple[float, float], last_time: float, count: int, start: float, end: float
) -> float:
    """A counter's increase over the window ``(start, end]`` from its ``count`` samples in it (two at
    least): ``observed`` between the ``first`` (time, value) and the last at ``last_time``,
    extrapolated to the window's edges as Prometheus does, so that both answer alike.

    The observed increase is scaled from the sampled interval to the window, but toward an edge only
    as far as about one sampling interval: a series that begins or ends inside the window (a new
    route, a replica started or stopped) is extended by half an interval there, not to the edge,
    and never back past the moment it would have been zero.
    """
    first_time, first_value = first
    sampled = last_time - first_time
    if sampled <= 0:
        return 0.0
    step = sampled / (count - 1)
    to_start = first_time - start
    to_end = end - last_time
    if observed > 0 and first_value >= 0:
        to_start = min(to_start, sampled * first_value / observed)  # where it would have been zero
    reach = 1.1 * step
    covered = sampled + (to_start if to_start < reach else step / 2) + (to_end if to_end < reach else step / 2)
    return observed * covered / sampled


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs."""
    buckets.sort()
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan
    total = buckets[-1][1]
    if total <= 0:
        return math.nan
    if q <= 0:
        return -math.inf
    if q >= 1:
        return math.inf
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == math.inf:
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return math.nan


_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a)),
}
_CMP: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
}


@dataclass
class _Run:
    """One evaluation: the query text, its range, its step count and deadline (``time.monotonic()``
    seconds, or None), and the samples fetched per selector."""

    query: str
    start: float
    end: float
    steps: int
    deadline: float | None
    timeout: float
    cache: dict[Selector, list[_Fetched]] = field(default_factory=dict)

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QueryTimeout(self.query, self.timeout)


@dataclass(slots=True)
class _Fetched:
    """One series' samples, with running sums so that a window's increase or mean costs two
    lookups, and (built on first use) sparse tables so that a window's max or min costs two."""

    key: Key  # the labels as a result key, without and with the metric's name
    named: Key
    times: list[float]
    values: list[float]
    increase: list[float]  # increase[i]: the counter's increase from sample 0 to sample i (resets counted)
    total: list[float]  # total[i]: the sum of values[:i]
    extremes: dict[str, list[list[float]]] = field(default_factory=dict)

    @classmethod
    def of(cls, data: SeriesData) -> _Fetched:
        times = [p[0] for p in data.points]
        values = [p[1] for p in data.points]
        increase = [0.0]
        for a, b in itertools.pairwise(values):
            increase.append(increase[-1] + (b - a if b >= a else b))  # a counter reset starts again from zero
        key, named = _key(data.labels), _key({"__name__": data.name, **data.labels})
        return cls(key, named, times, values, increase, [0.0, *itertools.accumulate(values)])

    def extreme(self, func: str, lo: int, hi: int) -> float:
        """``max`` or ``min`` of ``values[lo:hi]`` from two overlapping power-of-two spans."""
        pick: Callable[[float, float], float] = max if func == "max" else min
        table = self.extremes.get(func)
        if table is None:
            # table[k][i]: the extreme of values[i : i + 2**k]
            table = self.extremes[func] = [self.values]
            while (span := 2 ** len(table)) <= len(self.values):
                prev, half = table[-1], span // 2
                table.append([pick(prev[i], prev[i + half]) for i in range(len(self.values) - span + 1)])
        k = (hi - lo).bit_length() - 1
        return pick(table[k][lo], table[k][hi - (1 << k)])


class QueryEngine:
    """Evaluates queries over ``store``; a result may hold at most ``max_series`` series, and one
    evaluation may look at most ``max_points`` series-steps (the series its selectors fetch times
    the steps of the range), so that no accepted query runs for minutes."""

    def __init__(
        self, store: MetricStore, *, max_series: int = 500, lookback: float = LOOKBACK, max_points: int = 1_000_000
    ) -> None:
        self.store = store
        self.max_series = max_series
        self.lookback = lookback
        self.max_points = max_points

    def instant(self, query: str, at: float, *, timeout: float | None = None) -> list[Series]:
        """The value of ``query`` at ``at`` (Unix seconds), one point per series."""
        return self.range(query, at, at, 1.0, timeout=timeout)

    def range(self, query: str, start: float, end: float, step: float, *, timeout: float | None = None) -> list[Series]:
        """The value of ``query`` at ``start``, ``start + step``... up to ``end``: one series per label set.

        Raises QueryTimeout once it has run ``timeout`` seconds (None: no deadline)."""
        if step <= 0 or end < start:
            raise QueryError(query, "the range needs start <= end and a step above zero")
        if (end - start) / step > 11_000:
            raise QueryError(query, "more than 11,000 points per series: use a larger step")
        expr = parse_query(query)
        steps = int((end - start) / step + 1e-9) + 1
        deadline = None if timeout is None else time.monotonic() + timeout
        run = _Run(query, start, end, steps, deadline, timeout or 0.0)
        out: dict[Key, Series] = {}
        t = start
        while t <= end + 1e-9:
            run.check()
            value = self._eval(run, expr, t)
            if isinstance(value, float):
                value = {(): value}
            at = round(t, 3)
            for key, v in value.items():
                if math.isnan(v):
                    continue
                series = out.get(key)
                if series is None:
                    if len(out) >= self.max_series:
                        raise CardinalityError(query, self.max_series)
                    series = out[key] = Series(dict(key), [])
                series.points.append((at, v))
            t += step
        return list(out.values())

    def _fetch(self, run: _Run, sel: Selector) -> list[_Fetched]:
        found = run.cache.get(sel)
        if found is None:
            reach = sel.window if sel.window is not None else self.lookback
            data: list[SeriesData] = self.store.select(sel.name, sel.matchers, run.start - reach, run.end)
            found = run.cache[sel] = [_Fetched.of(d) for d in data]
            fetched = sum(len(f) for f in run.cache.values())
            if fetched * run.steps > self.max_points:
                raise QueryError(
                    run.query,
                    f"it would evaluate {fetched} series at {run.steps} steps, more than {self.max_points:,} "
                    "series-steps: narrow the selector or raise the step",
                )
            run.check()
        return found

    def _window(self, run: _Run, sel: Selector, t: float) -> list[tuple[_Fetched, int, int]]:
        """Per fetched series with samples in ``(t - reach, t]``: the series and that slice's bounds."""
        reach = sel.window if sel.window is not None else self.lookback
        out = []
        for f in self._fetch(run, sel):
            lo = bisect.bisect_left(f.times, t - reach)
            hi = bisect.bisect_right(f.times, t)
            if hi > lo:
                out.append((f, lo, hi))
        return out

    def _eval(self, run: _Run, expr: Expr, t: float) -> Value:
        if isinstance(expr, Number):
            return expr.value
        if isinstance(expr, Selector):
            if expr.window is not None:
                raise QueryError(run.query, "a range selector needs a function around it, e.g. rate(x[1m])")
            return {f.named: f.values[hi - 1] for f, _, hi in self._window(run, expr, t)}
        if isinstance(expr, Call):
            if expr.func == "histogram_quantile":
                q = expr.args[0]
                assert isinstance(q, Number)
                inner = self._eval(run, expr.args[1], t)
                if isinstance(inner, float):
                    raise QueryError(run.query, "histogram_quantile() needs buckets with an `le` label")
                groups: dict[Key, list[tuple[float, float]]] = {}
                for key, v in inner.items():
                    labels = dict(key)
                    le = labels.pop("le", None)
                    if le is None:
                        continue
                    labels.pop("__name__", None)
                    groups.setdefault(_key(labels), []).append((float(le.replace("+Inf", "inf")), v))
                return {key: _quantile(q.value, b) for key, b in groups.items()}
            sel = expr.args[0]
            assert isinstance(sel, Selector) and sel.window is not None
            result: Vector = {}
            for f, lo, hi in self._window(run, sel, t):
                if expr.func in ("rate", "increase"):
                    if hi - lo < 2:
                        continue
                    observed = f.increase[hi - 1] - f.increase[lo]
                    first = (f.times[lo], f.values[lo])
                    inc = _window_increase(observed, first, f.times[hi - 1], hi - lo, t - sel.window, t)
                    result[f.key] = inc / sel.window if expr.func == "rate" else inc
                elif expr.func == "avg_over_time":
                    result[f.key] = (f.total[hi] - f.total[lo]) / (hi - lo)
                elif run.steps == 1:
                    vals = f.values[lo:hi]
                    result[f.key] = max(vals) if expr.func == "max_over_time" else min(vals)
                else:  # over many steps, sparse tables pay for themselves
                    result[f.key] = f.extreme(expr.func[:3], lo, hi)
            return result
        if isinstance(expr, Aggregate):
            inner = self._eval(run, expr.expr, t)
            if isinstance(inner, float):
                inner = {(): inner}
            buckets: dict[Key, list[float]] = {}
            for key, v in inner.items():
                labels = dict(key)
                labels.pop("__name__", None)
                if expr.by is not None:
                    labels = {k: labels[k] for k in expr.by if k in labels}
                elif expr.without is not None:
                    labels = {k: x for k, x in labels.items() if k not in expr.without}
                else:
                    labels = {}
                buckets.setdefault(_key(labels), []).append(v)
            if len(buckets) > self.max_series:
                raise CardinalityError(run.query, self.max_series)
            fold: dict[str, Callable[[list[float]], float]] = {
                "sum": sum,
                "avg": lambda x: sum(x) / len(x),
                "min": min,
                "max": max,
                "count": lambda x: float(len(x)),
            }
            return {key: fold[expr.op](vals) for key, vals in buckets.items()}
        left = self._eval(run, expr.left, t)
        right = self._eval(run, expr.right, t)
        return _binary(expr.op, left, right)


def _strip(key: Key) -> Key:
    return tuple(p for p in key if p[0] != "__name__")


def _binary(op: str, left: Value, right: Value) -> Value:
    if op in _CMP:
        test = _CMP[op]
        if isinstance(left, float) and isinstance(right, float):
            return 1.0 if test(left, right) else 0.0
        if isinstance(left, float):
            assert isinstance(right, dict)
            return {k: v for k, v in right.items() if test(left, v)}
        if isinstance(right, float):
            return {k: v for k, v in left.items() if test(v, right)}
        rmap = {_strip(k): v for k, v in right.items()}
        return {k: v for k, v in left.items() if _strip(k) in rmap and test(v, rmap[_strip(k)])}
    fn = _OPS[op]
    if isinstance(left, float) and isinstance(right, float):
        return fn(left, right)
    if isinstance(left, float):
        assert isinstance(right, dict)
        return {_strip(k): fn(left, v) for k, v in right.items()}
    if isinstance(right, float):
        return {_strip(k): fn(v, right) for k, v in left.items()}
    rmap = {_strip(k): v for k, v in right.items()}
    return {_strip(k): fn(v, rmap[_strip(k)]) for k, v in left.items() if _strip(k) in rmap}
