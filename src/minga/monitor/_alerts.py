"""Alert rules from minga.yaml, evaluated against the metrics: pending → firing → resolved.

Each evaluation runs every rule's query; each series it returns is one alert, keyed by the
rule's name and the series' labels. An alert whose value breaches the threshold becomes
``pending``, then ``firing`` once it has breached for the rule's ``for`` seconds; when it
stops breaching (or its series disappears) a firing alert is ``resolved``. Every change to
firing or resolved is handed to ``publish`` (the control plane sends it on ``_minga.alerts``).
minga's own alerts, which no query computes (``CrashLoop``), go the same way through
:meth:`AlertEvaluator.set_builtin`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from minga.errors import MonitorError
from minga.monitor._query import Series
from minga.spec import AlertSpec

__all__ = ["Alert", "AlertEvaluator"]

log = logging.getLogger("minga.monitor")

Publish = Callable[[dict[str, Any]], Awaitable[None]]
#: ``await instant(query, at)``: the series of an instant query (the monitor's query processes answer)
InstantFn = Callable[[str, float], Awaitable[list[Series]]]


@dataclass
class Alert:
    """One alert: ``state`` is ``pending``, ``firing`` or ``resolved``; times are Unix seconds.
    Changes are published on ``<SUBJECT>.<rule>``."""

    SUBJECT: ClassVar[str] = "_minga.alerts"

    rule: str
    labels: dict[str, str]
    severity: str
    summary: str
    value: float
    state: str = "pending"
    since: float = 0.0
    fired_at: float | None = None
    resolved_at: float | None = None
    query: str = ""
    threshold: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "labels": self.labels,
            "severity": self.severity,
            "summary": self.summary,
            "value": None if math.isnan(self.value) else self.value,
            "state": self.state,
            "since": self.since,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "query": self.query,
            "threshold": self.threshold,
        }


class AlertEvaluator:
    """Keeps the state of every alert of ``rules``, whose queries ``instant`` answers; call
    :meth:`evaluate` on an interval."""

    def __init__(
        self, rules: Mapping[str, AlertSpec], instant: InstantFn, publish: Publish | None = None, *, keep: int = 200
    ) -> None:
        self.rules = dict(rules)
        self.instant = instant
        self.publish = publish
        self.keep = keep
        self.active: dict[tuple[str, tuple[tuple[str, str], ...]], Alert] = {}
        self.history: list[Alert] = []
        self.errors: dict[str, str] = {}

    def firing(self) -> list[Alert]:
        return [a for a in self.active.values() if a.state == "firing"]

    async def evaluate(self, now: float) -> list[Alert]:
        """Run every rule at ``now``; return the alerts that changed to firing or resolved."""
        changed: list[Alert] = []
        for name, rule in self.rules.items():
            try:
                result = await self.instant(rule.query, now)
            except MonitorError as exc:
                if self.errors.get(name) != str(exc):
                    log.warning("alert %s: %s", name, exc)
                self.errors[name] = str(exc)
                continue
            self.errors.pop(name, None)
            seen = set()
            for series in result:
                value = series.points[-1][1]
                key = (name, tuple(sorted(series.labels.items())))
                alert = self.active.get(key)
                if not rule.breached(value):
                    continue
                seen.add(key)
                if alert is None:
                    alert = self.active[key] = Alert(
                        name,
                        series.labels,
                        rule.severity,
                        rule.summary,
                        value,
                        since=now,
                        query=rule.query,
                        threshold=f"> {rule.above:g}" if rule.above is not None else f"< {rule.below:g}",
                    )
                alert.value = value
                if alert.state == "pending" and now - alert.since >= rule.for_:
                    alert.state = "firing"
                    alert.fired_at = now
                    changed.append(alert)
            for key, alert in list(self.active.items()):
                if key[0] != name or key in seen:
                    continue
                del self.active[key]
                if alert.state == "firing":
                    alert.state = "resolved"
                    alert.resolved_at = now
                    changed.append(alert)
        await self._announce(changed)
        return changed

    async def set_builtin(
        self, rule: str, labels: Mapping[str, str], *, firing: bool, summary: str, value: float, now: float,
        severity: str = "critical", threshold: str = "",
    ) -> None:
        """Fire (or resolve) one of minga's own alerts, which no query computes: ``CrashLoop`` from the
        supervisor, say. It is listed, recorded and published like the alerts of minga.yaml's rules."""
        key = (rule, tuple(sorted(labels.items())))
        alert = self.active.get(key)
        if firing:
            if alert is None:
                alert = self.active[key] = Alert(
                    rule, dict(labels), severity, summary, value, state="firing", since=now, fired_at=now,
                    threshold=threshold,
                )
                await self._announce([alert])
            alert.summary, alert.value = summary, value
        elif alert is not None:
            del self.active[key]
            alert.state = "resolved"
            alert.resolved_at = now
            await self._announce([alert])

    async def _announce(self, changed: list[Alert]) -> None:
        """Record, log and publish alerts that changed to firing or resolved."""
        for alert in changed:
            self.history.append(dataclasses.replace(alert))
            del self.history[: -self.keep]
            log.warning(
                "alert %s %s: %s (value %g)", alert.rule, alert.state, alert.summary or alert.query, alert.value
            )
            if self.publish is not None:
                try:
                    await self.publish(alert.to_json())
                except Exception as exc:  # the broker being away must not stop the evaluation
                    log.warning("could not publish alert %s: %s", alert.rule, exc)
