"""Failures that show: a crash loop fires its alert with the replica's last error, the same state in
the CLI and the dashboard, and `minga up --detach` reports a replica that never became healthy at once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from minga.cli import app
from minga.controlplane import ControlPlane
from minga.deploy import error_line
from minga.spec import load_spec

pytestmark = [pytest.mark.slow]


def test_the_error_of_a_failed_replica_is_its_last_word() -> None:
    traceback = ["Traceback (most recent call last):", '  File "x.py", line 1', "ZeroDivisionError: division by zero", ""]
    assert error_line(traceback) == "ZeroDivisionError: division by zero"
    records = [
        json.dumps({"level": "error", "message": "cannot reach the database"}),
        json.dumps({"level": "info", "message": "stopping"}),
    ]
    assert error_line(records) == "cannot reach the database"
    assert error_line([json.dumps({"level": "info", "message": "bye"})]) is None
    assert error_line([]) is None


async def test_a_crash_loop_fires_an_alert_and_shows_the_same_everywhere(tmp_path: Path) -> None:
    spec_file = tmp_path / "minga.yaml"
    spec_file.write_text(
        """\
name: loops
services:
  broken:
    command: ["sh", "-c", "echo starting; echo 'ValueError: no config for the warehouse' >&2; exit 3"]
""",
        encoding="utf-8",
    )
    cp = ControlPlane.from_spec(load_spec(spec_file), tmp_path / "home")
    published: list[dict[str, Any]] = []

    def crash_alerts() -> list[dict[str, Any]]:
        return [a for a in cp.status()["alerts"] if a["rule"] == "CrashLoop"]

    ready = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(cp.run(lambda state: ready.set()))
        async with asyncio.timeout(60):
            await ready.wait()
            assert cp.monitor is not None and cp.supervisor is not None
            publish = cp.monitor.alerts.publish

            async def record(doc: dict[str, Any]) -> None:
                published.append(doc)
                if publish is not None:
                    await publish(doc)

            cp.monitor.alerts.publish = record
            await cp.supervisor.wait_until(lambda: cp.supervisor is not None and bool(crash_alerts()))
        doc = cp.status()
        svc = doc["services"][0]
        inst = svc["instances"][0]
        assert inst["crashloop"] and inst["last_exit"] == 3
        assert inst["last_error"] == "ValueError: no config for the warehouse"
        (alert,) = crash_alerts()
        assert alert["state"] == "firing" and alert["labels"] == {"service": "broken", "instance": "broken-1"}
        assert alert["summary"] == "broken-1 keeps exiting: ValueError: no config for the warehouse"
        assert [a["rule"] for a in published] == ["CrashLoop"]
        # one word for the service, which the CLI's table and the dashboard both show
        assert svc["health"] == "critical"
        dashboard = cp.dashboard.alerts()
        assert [a["name"] for a in dashboard if a["state"] == "firing"] == ["CrashLoop"]
        cp.request_stop()


def minga(*args: str, home: Path, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_up_detach_reports_a_replica_that_dies_before_it_is_healthy_at_once(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_for_minga  # noqa\n", encoding="utf-8")
    spec = tmp_path / "minga.yaml"
    spec.write_text("name: fast\nservices:\n  broken:\n    module: broken:Broken\n", encoding="utf-8")
    home = tmp_path / "home"
    started = time.monotonic()
    try:
        up = minga("up", "--detach", "-f", str(spec), "--timeout", "60", home=home, cwd=tmp_path)
        took = time.monotonic() - started
    finally:
        down = CliRunner().invoke(app, ["down", "-f", str(spec)], env={"MINGA_HOME": str(home)})
    assert up.returncode == 1, up.stdout + up.stderr
    # well before the 60 s timeout: the first exit is enough to know
    assert took < 30, took
    assert "service broken is not healthy: broken-1 exited with 2 before it was ever healthy" in up.stderr
    assert "cannot import 'broken'" in up.stderr and "no_such_module_for_minga" in up.stderr
    assert "killed" not in up.stdout + up.stderr
    assert down.exit_code == 0, down.output
