"""`minga up --detach / status / logs / services / down` as a user runs them, against a real nats-server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import support
from minga.cli import app
from minga.errors import UsageError
from minga.security import read_token

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SERVE = "exec {py} -m http.server $MINGA_HTTP_PORT --bind 127.0.0.1"


def write_spec(path: Path, nats_url: str, extra: str = "") -> Path:
    serve = SERVE.format(py=sys.executable)
    path.write_text(
        f"""\
name: trial
broker: {nats_url}
services:
  db:
    command: ["sh", "-c", "echo db says hello; {serve}"]
    ports: [http]
    health: {{tcp: true, interval: 200ms, timeout: 200ms}}
    stop_grace: 2s
  web:
    command: ["sh", "-c", "{serve}"]
    replicas: 2
    ports: [http]
    health: {{http: /, interval: 200ms, timeout: 200ms}}
    depends_on: [db]
    stop_grace: 2s
{extra}""",
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def trial_system(tmp_path: Path, extra: str = "") -> Iterator[tuple[Path, Path]]:
    """A real nats-server and the trial spec (plus ``extra`` services) that uses it, while the block
    runs; yields the MINGA_HOME to run `minga` with and the spec file."""
    with support.running(support.nats_server(tmp_path)) as nats:
        yield tmp_path / "home", write_spec(tmp_path / "minga.yaml", f"nats://127.0.0.1:{nats.port}", extra)


def server_info(home: Path) -> dict[str, Any]:
    """What the running control plane wrote to MINGA_HOME/server.json (its url, its pid...)."""
    doc: dict[str, Any] = json.loads((home / "server.json").read_text())
    return doc


def minga(*args: str, home: Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def cli(*args: str, home: Path) -> Result:
    """A `minga` command run in this process (an interpreter per command is slow on a busy machine)."""
    return CliRunner().invoke(app, list(args), env={"MINGA_HOME": str(home), "COLUMNS": "200"})


def status(home: Path) -> dict[str, Any]:
    out = cli("status", "--json", home=home)
    assert out.exit_code == 0, out.output
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def api_get(home: Path, path: str) -> urllib.request.Request:
    """A GET of the server's API with the token kept in the home, as the CLI sends it."""
    token = read_token(home)
    assert token is not None
    return urllib.request.Request(f"{server_info(home)['url']}{path}", headers={"Authorization": f"Bearer {token}"})


def api_status(home: Path) -> dict[str, Any]:
    """The status straight from the server's API (a `minga` process per poll would be slow)."""
    with urllib.request.urlopen(api_get(home, "/api/status"), timeout=10) as resp:
        doc: dict[str, Any] = json.load(resp)
    return doc


def test_up_status_kill_logs_down(tmp_path: Path) -> None:
    with trial_system(tmp_path) as (home, spec):
        up = minga("up", "--detach", "-f", str(spec), "--timeout", "30", home=home, cwd=tmp_path)
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            assert "web-2" in up.stdout and "passing" in up.stdout

            again = cli("up", "--detach", "-f", str(spec), home=home)
            assert isinstance(again.exception, UsageError) and "already runs" in str(again.exception)

            doc = status(home)
            assert doc["name"] == "trial" and doc["healthy"]
            assert {"gateway", "dashboard", "broker", "control"} <= doc.keys()
            web = next(s for s in doc["services"] if s["name"] == "web")
            assert web["replicas"] == 2
            for inst in web["instances"]:
                assert {"id", "pid", "health", "address", "ports", "restarts"} <= inst.keys()
                assert inst["address"] == f"127.0.0.1:{inst['ports']['http']}"

            victim = web["instances"][0]
            os.kill(victim["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 20
            while True:  # bounded: the supervisor restarts it after a short backoff
                inst = next(s for s in api_status(home)["services"] if s["name"] == "web")["instances"][0]
                if inst["restarts"] == 1 and inst["health"] == "passing":
                    break
                assert time.monotonic() < deadline, inst
                time.sleep(0.2)
            assert inst["pid"] != victim["pid"]

            logs = cli("logs", "db", "--since", "5m", home=home)
            assert logs.exit_code == 0 and "db says hello" in logs.stdout
            with urllib.request.urlopen(api_get(home, "/api/logs?service=db&limit=50"), timeout=10) as resp:
                lines = json.load(resp)["lines"]
            assert any(ln["instance"] == "db-1" and ln["text"] == "db says hello" for ln in lines)
            services = cli("services", home=home)
            assert services.exit_code == 0, services.output
            assert "2/2" in services.stdout and "web-1@127.0.0.1" in services.stdout

            pids = [i["pid"] for s in api_status(home)["services"] for i in s["instances"]]
            server_pid = server_info(home)["pid"]
        finally:
            down = cli("down", home=home)
        assert down.exit_code == 0, down.output
        assert not (home / "server.json").exists()
        assert not pid_alive(server_pid)
        assert not any(pid_alive(p) for p in pids), "a replica outlived `minga down`"
        assert isinstance(cli("status", home=home).exception, UsageError)


def test_detach_names_the_service_that_is_not_healthy(tmp_path: Path) -> None:
    broken = """\
  broken:
    command: ["sh", "-c", "echo cannot open the database; exit 1"]
    ports: [http]
    health: {tcp: true}
"""
    with trial_system(tmp_path, broken) as (home, spec):
        try:
            up = minga("up", "--detach", "-f", str(spec), "--timeout", "3", home=home, cwd=tmp_path)
        finally:
            down = cli("down", home=home)
        assert up.returncode == 1
        assert "service broken is not healthy" in up.stderr
        assert "cannot open the database" in up.stdout
        assert down.exit_code == 0


def test_a_spec_mistake_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "minga.yaml"
    spec.write_text("services:\n  web:\n    replicas: two\n    command: [true]\n", encoding="utf-8")
    out = minga("up", "-f", str(spec), home=tmp_path / "home", cwd=tmp_path)
    assert out.returncode == 2
    assert "minga.yaml:3:" in out.stderr and "Traceback" not in out.stderr


def test_down_stops_what_a_killed_server_left_behind(tmp_path: Path) -> None:
    with trial_system(tmp_path) as (home, spec):
        up = minga("up", "--detach", "-f", str(spec), "--timeout", "30", home=home, cwd=tmp_path)
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            doc = api_status(home)
            pids = [i["pid"] for s in doc["services"] for i in s["instances"]]
            server_pid = server_info(home)["pid"]
            os.kill(server_pid, signal.SIGKILL)  # the control plane dies without stopping anything
            deadline = time.monotonic() + 10
            while pid_alive(server_pid):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert all(pid_alive(p) for p in pids)
        finally:
            down = cli("down", home=home)
        assert down.exit_code == 0, down.output
        assert "db-1" in down.stdout and "web-2" in down.stdout
        assert not any(pid_alive(p) for p in pids)


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    with trial_system(tmp_path) as (home, spec):
        env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "200"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "minga", "up", "-f", str(spec)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            seen = []
            for line in proc.stdout:  # the table, then the hint, once every replica is healthy
                seen.append(line)
                if "Ctrl-C" in line or len(seen) > 200:
                    break
            assert any("web-2" in line and "passing" in line for line in seen), "".join(seen)
            pids = [i["pid"] for s in api_status(home)["services"] for i in s["instances"]]
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 0, rest
        assert "stopped: no replica left" in rest
        assert not any(pid_alive(p) for p in pids)
        assert not (home / "server.json").exists()
