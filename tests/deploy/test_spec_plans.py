"""From minga.yaml to supervisor plans, and the time-stamped logs the supervisor writes."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from minga.deploy import (
    Health,
    HealthChanged,
    LogLine,
    RestartMode,
    Spawn,
    Start,
    Started,
    SupervisorMachine,
    log_files,
    plan_from_spec,
    read_logs,
)
from minga.spec import parse_spec

SPEC = """\
name: trial
services:
  web:
    module: app.web:Web
    replicas: 2
    ports: [http, metrics]
    env: {GREETING: hi}
    depends_on:
      db: {condition: healthy}
      cache: {condition: started}
    resources: {memory: 256Mi, cpu: 500m}
    restart: on-failure
    stop_grace: 2s
  db:
    command: "postgres -D data"
    ports: {http: 5432}
    health: {tcp: true, interval: 2s, timeout: 1s, failures: 3}
  cache:
    command: [memcached]
"""


def test_plans_follow_the_spec(tmp_path: Path) -> None:
    plans = {p.name: p for p in plan_from_spec(parse_spec(SPEC, "minga.yaml"), base=tmp_path)}
    assert list(plans) == ["db", "cache", "web"]
    web, db, cache = plans["web"], plans["db"], plans["cache"]
    assert web.argv == (sys.executable, "-m", "minga.service", "app.web:Web")
    assert web.cwd == tmp_path and str(tmp_path) in web.env["PYTHONPATH"]
    assert web.env["GREETING"] == "hi" and web.replicas == 2
    assert web.depends_on == ("db",) and web.after == ("cache",)
    assert web.limits.memory == 256 * 1024 * 1024 and web.limits.cpus == 0.5
    assert web.restart.mode is RestartMode.ON_FAILURE and web.stop_grace == 2.0
    assert (web.health.kind, web.health.path) == ("http", "/healthz")
    assert dict(web.ports) == {"http": 0, "metrics": 0}
    assert db.argv == ("postgres", "-D", "data") and db.ports == {"http": 5432}
    assert (db.health.kind, db.health.interval, db.health.failures) == ("tcp", 2.0, 3)
    assert cache.health.kind == "none"


def test_started_condition_only_waits_for_a_process() -> None:
    plans = plan_from_spec(parse_spec(SPEC, "minga.yaml"))
    m = SupervisorMachine(plans)
    assert m.handle(Start(0)) == [Spawn("db-1", "db", 0), Spawn("cache-1", "cache", 0)]
    assert m.handle(Started("cache-1", 2, 0.1)) == []  # web still waits for db to be healthy
    m.handle(Started("db-1", 1, 0.1))
    actions = m.handle(HealthChanged("db-1", Health.PASSING, 0.2))
    assert actions == [Spawn("web-1", "web", 0), Spawn("web-2", "web", 0)]


def test_logs_merge_in_time_order_and_filter_by_time(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "web-1.log").write_text(
        "2026-01-01T10:00:00.000Z starting\n2026-01-01T10:00:02.000Z ready\n", encoding="utf-8"
    )
    (logs / "web-2.log").write_text("2026-01-01T10:00:01.000Z starting\nnot a stamped line\n", encoding="utf-8")
    (logs / "db-1.log").write_text("2026-01-01T09:00:00.000Z up\n", encoding="utf-8")
    assert [f.stem for f in log_files(tmp_path, "web")] == ["web-1", "web-2"]
    assert [f.stem for f in log_files(tmp_path, "web-2")] == ["web-2"]
    lines = read_logs(log_files(tmp_path, "web"))
    assert [(line.instance, line.text) for line in lines] == [
        ("web-1", "starting"),
        ("web-2", "starting"),
        ("web-1", "ready"),
    ]
    since = datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC)
    assert read_logs(log_files(tmp_path), since)[0] == LogLine(since, "web-2", "starting")
