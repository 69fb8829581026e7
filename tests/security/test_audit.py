"""Every refusal leaves a record (who, from where, what, why, when); `minga audit [-f]` shows them."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from security_harness import Plane
from typer.testing import CliRunner

from minga.cli import app
from minga.errors import UsageError
from minga.security import AuditLog, Credentials, follow_audit, read_audit


def _audit_cli(home: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["audit", *args], env={**os.environ, "MINGA_HOME": str(home)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
async def test_refusals_are_recorded_and_minga_audit_prints_them(plane: Plane) -> None:
    await plane.call("POST", "/api/stop", headers=plane.auth(plane.creds.read))
    await plane.call("PUT", "/v1/discovery/instances/web-9", headers=plane.auth(plane.creds.replica_token("web", "web-1")),
                     json={"instance": {"id": "web-9", "service": "web"}})  # fmt: skip
    records = read_audit(plane.home)
    assert [(r.area, r.who, r.what) for r in records] == [
        ("http", "read", "POST /api/stop"),
        ("registry", "replica:web/web-1", "PUT /v1/discovery/instances/web-9"),
    ]
    assert all(datetime.fromisoformat(r.at).tzinfo is not None and r.source == "127.0.0.1" for r in records)
    text = await asyncio.to_thread(_audit_cli, plane.home)
    lines = text.strip().splitlines()
    assert len(lines) == 2
    assert "read@127.0.0.1" in lines[0] and "POST /api/stop: the read-only token cannot POST /api/stop" in lines[0]
    assert "replica:web/web-1@127.0.0.1" in lines[1] and "may only write its own instance" in lines[1]
    as_json = [json.loads(line) for line in (await asyncio.to_thread(_audit_cli, plane.home, "--json")).splitlines()]
    assert {"at", "area", "who", "source", "what", "why"} == set(as_json[0])


def test_minga_audit_says_when_nothing_was_refused(tmp_path: Path) -> None:
    assert "no refusal recorded" in _audit_cli(tmp_path)


async def test_follow_sees_new_records(tmp_path: Path) -> None:
    log = AuditLog.in_home(tmp_path)
    log.record(area="http", who="anonymous", source="127.0.0.1", what="GET /api/status", why="old")
    follow = follow_audit(tmp_path, interval=0.05)  # from the end: the old record is not repeated
    log.record(area="http", who="read", source="127.0.0.1", what="POST /api/stop", why="new")
    record = await asyncio.wait_for(anext(follow), 10)
    assert (record.who, record.why) == ("read", "new")
    await follow.aclose()


def test_minga_token_prints_the_token_asked_for(tmp_path: Path) -> None:
    env = {**os.environ, "MINGA_HOME": str(tmp_path)}
    missing = CliRunner().invoke(app, ["token"], env=env)
    assert isinstance(missing.exception, UsageError) and "`minga up` creates them" in str(missing.exception)
    creds = Credentials.load_or_create(tmp_path)
    assert CliRunner().invoke(app, ["token"], env=env).stdout.strip() == creds.admin
    assert CliRunner().invoke(app, ["token", "--read-only"], env=env).stdout.strip() == creds.read


def test_a_flood_of_refusals_cannot_fill_the_disk(tmp_path: Path) -> None:
    log = AuditLog.in_home(tmp_path)
    log.max_bytes = 2000
    for i in range(100):
        log.record(area="http", who="anonymous", source="127.0.0.1", what="GET /api/status", why=f"refusal {i}")
    sizes = [p.stat().st_size for p in (tmp_path / "audit.log", tmp_path / "audit.log.1")]
    assert all(0 < size <= 2000 for size in sizes), sizes
    records = read_audit(tmp_path)
    assert records[-1].why == "refusal 99" and 5 < len(records) < 100
    assert [int(r.why.split()[1]) for r in records] == sorted(int(r.why.split()[1]) for r in records)
    assert oct((tmp_path / "audit.log.1").stat().st_mode & 0o777) == "0o600"
