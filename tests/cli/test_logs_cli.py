"""`minga logs` in the habits of compose: `-f` is the spec everywhere, `--follow` follows, and a
name that is not a service is an error whether following or not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

SPEC = "name: trial\nservices:\n  db:\n    command: [sleep, '60']\n  web:\n    command: [sleep, '60']\n    replicas: 2\n"


@pytest.fixture
def system(tmp_path: Path) -> Path:
    """A spec beside the logs its replicas would have written (MINGA_HOME is `.minga/` beside it)."""
    spec = tmp_path / "app" / "minga.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC, encoding="utf-8")
    logs = spec.parent / ".minga" / "logs"
    logs.mkdir(parents=True)
    (logs / "db-1.log").write_text("2026-01-01T10:00:00.000Z db says hello\n", encoding="utf-8")
    (logs / "web-1.log").write_text("2026-01-01T10:00:01.000Z web says hello\n", encoding="utf-8")
    return spec


def minga(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "MINGA_HOME"}, **(env or {})}
    try:
        return subprocess.run(
            [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`minga {' '.join(args)}` hung")


def test_dash_f_names_the_spec_for_logs_too(system: Path, tmp_path: Path) -> None:
    out = minga("logs", "-f", str(system), "db", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "db says hello" in out.stdout and "web says hello" not in out.stdout


@pytest.mark.parametrize("follow", [[], ["--follow"]])
def test_an_unknown_service_is_an_error_following_or_not(system: Path, tmp_path: Path, follow: list[str]) -> None:
    out = minga("logs", "-f", str(system), *follow, "nosuchservice", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: no service or replica 'nosuchservice' (known: db, web)"



RECORD = (
    '{"ts": "2026-01-01T10:00:02+00:00", "level": "error", "service": "web", "instance": "web-1", '
    '"logger": "shop", "message": "call failed", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "fields": {}}'
)


def test_lines_are_readable_and_tail_and_json_work(system: Path, tmp_path: Path) -> None:
    log = system.parent / ".minga" / "logs" / "web-1.log"
    with log.open("a", encoding="utf-8") as f:
        f.write(f"2026-01-01T10:00:02.000Z {RECORD}\n2026-01-01T10:00:03.000Z printed by the service\n")
    env_tz = {"TZ": "UTC"}
    out = minga("logs", "-f", str(system), "web", cwd=tmp_path, env=env_tz)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split() == ["10:00:02.000", "web-1", "ERROR", "call", "failed", "trace=4bf92f3577b34da6a3ce929d0e0e4736"]
    assert lines[2].split() == ["10:00:03.000", "web-1", "printed", "by", "the", "service"]  # print output, time-stamped
    last = minga("logs", "-f", str(system), "web", "--tail", "1", cwd=tmp_path, env=env_tz)
    assert last.stdout.splitlines() == [lines[2]]
    raw = minga("logs", "-f", str(system), "web", "--tail", "2", "--json", cwd=tmp_path)
    docs = [json.loads(line) for line in raw.stdout.splitlines()]
    assert [d["text"] for d in docs] == [RECORD, "printed by the service"]
    assert docs[0]["instance"] == "web-1" and docs[0]["at"].startswith("2026-01-01T10:00:02")


def test_since_takes_a_duration_or_an_iso_time(system: Path, tmp_path: Path) -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with (system.parent / ".minga" / "logs" / "web-1.log").open("a", encoding="utf-8") as f:
        f.write(f"{now} web just now\n")
    recent = minga("logs", "-f", str(system), "--since", "10m", cwd=tmp_path)
    assert recent.returncode == 0, recent.stderr
    assert [line.split(maxsplit=2)[2] for line in recent.stdout.splitlines()] == ["web just now"]
    # an ISO time with a zone, or without one (local time: TZ here), includes a line written at it
    for at in ("2026-01-01T10:00:01+00:00", "2026-01-01T11:00:01"):
        out = minga("logs", "-f", str(system), "--since", at, cwd=tmp_path, env={"TZ": "CET-1"})
        assert out.returncode == 0, out.stderr
        texts = [line.split(maxsplit=2)[2] for line in out.stdout.splitlines()]
        assert texts == ["web says hello", "web just now"]
    last = minga("logs", "-f", str(system), "--since", "2026-01-01T10:00:00Z", "--tail", "1", "db", cwd=tmp_path)
    assert last.stdout.split(maxsplit=2)[2].strip() == "db says hello"


@pytest.mark.parametrize("value", ["yesterday", "-5m", "10 parsecs"])
def test_a_bad_since_is_one_line_saying_what_to_write(system: Path, tmp_path: Path, value: str) -> None:
    out = minga("logs", "-f", str(system), "--since", value, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: --since {value!r}: expected a duration (30s, 10m, 1h) or an ISO time (2026-01-31T12:00)"
    )
