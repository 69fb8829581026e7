"""A heavy monitor query does not stall the broker, and every query has a deadline: a real
`minga server` (in its own process) over a metric store filled by the test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from minga.cli import app
from minga.controlplane import ControlPlaneClient
from minga.errors import UsageError
from minga.monitor import MetricStore
from minga.security import read_token

SERIES = 90  # x 10,800 steps: just under the engine's 1,000,000 series-steps
SAMPLES = 720  # one every 5 s over the last hour (older samples would be thinned at start)
LONG_LABEL = "instance-with-a-long-name-0001"  # 30 characters: `(.*.*.*)*X` backtracks for ages on it


@dataclass
class Server:
    url: str
    nats: tuple[str, int]
    home: Path
    spec: Path
    proc: subprocess.Popen[bytes]


def fill(home: Path, now: float) -> None:
    store = MetricStore(home / "monitor" / "metrics.db")
    for i in range(SAMPLES):
        t = now - 3600 + 5 * i
        batch = [
            ("work", (("instance", f"w-{n}"), ("service", "w")), float((i * 7 + n) % 100))
            for n in range(SERIES)
        ]
        batch.append(("up", (("instance", LONG_LABEL), ("service", "w")), 1.0))
        store.ingest(t, batch)
    store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("isolation")
    home = root / "home"
    fill(home, time.time())
    spec = root / "minga.yaml"
    spec.write_text("name: iso\nbroker: {port: 0}\nservices: {}\n", encoding="utf-8")
    env = {**os.environ, "MINGA_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "minga", "server", "--file", str(spec)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (home / "server.json").exists():  # written atomically once the broker and the API listen
            assert proc.poll() is None, "minga server exited"
            assert time.monotonic() < deadline, "minga server did not start within 60 s"
            time.sleep(0.1)
        doc = json.loads((home / "server.json").read_text())
        nats = urllib.parse.urlsplit(doc["nats_url"])
        yield Server(doc["url"], (nats.hostname or "127.0.0.1", nats.port or 4222), home, spec, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a stalled old-style server would not stop politely
        proc.wait(30)


def get(server: Server, path: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    """GET ``path`` as the CLI does: with the admin token kept in the home."""
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {read_token(server.home)}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def monitor_query(server: Server, route: str, **params: Any) -> tuple[int, dict[str, Any]]:
    return get(server, f"/api/monitor/{route}?" + urllib.parse.urlencode(params))


def heavy_range(now: float) -> dict[str, Any]:
    """The heaviest range the engine accepts over the filled store: 90 series x 10,800 steps, each
    step reading a whole hour of samples per series."""
    return {
        "query": "max_over_time(work[1d])",
        "start": now - 3600,
        "end": now + 3 * 3600 - 3601,
        "step": "1s",
    }


def broker_ping(host: str, port: int, timeout: float = 60) -> None:
    """CONNECT + PING on a fresh connection; returns once PONG arrives."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        got = b""
        while not got.endswith(b"\r\n"):
            got += sock.recv(4096)
        assert got.startswith(b"INFO ")
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        got = b""
        while b"PONG\r\n" not in got:
            chunk = sock.recv(4096)
            assert chunk, "the broker closed the connection"
            got += chunk


def test_status_shows_each_part_and_where_it_runs(server: Server) -> None:
    status, doc = get(server, "/api/status")
    assert status == 200
    parts = {p["name"]: p for p in doc["parts"]}
    assert {n: p["runs"] for n, p in parts.items()} == {
        "broker": "loop", "registry": "loop", "monitor queries": "process", "monitor storage": "thread",
    }  # fmt: skip
    assert parts["broker"]["state"] == "ok" and parts["registry"]["state"] == "ok"
    # the dashboard's overview carries the same document
    status, overview = get(server, "/dashboard/api/overview")
    assert [p["name"] for p in overview["status"]["parts"]] == [p["name"] for p in doc["parts"]]
    out = CliRunner().invoke(
        app, ["status", "--file", str(server.spec)], env={"MINGA_HOME": str(server.home), "COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert "monitor queries" in out.stdout and "monitor storage" in out.stdout


def test_a_heavy_query_does_not_delay_a_broker_ping(server: Server) -> None:
    done = threading.Event()
    answer: list[tuple[int, dict[str, Any]]] = []

    def query() -> None:
        answer.append(monitor_query(server, "query_range", **heavy_range(time.time()), timeout="8s"))
        done.set()

    thread = threading.Thread(target=query)
    thread.start()
    try:
        time.sleep(0.5)  # the query is under way (the old control plane ran it on its loop by now)
        broker_ping(*server.nats)
        still_running = not done.is_set()
    finally:
        thread.join(120)
    assert still_running, f"the ping came back only once the query was done: {answer}"
    status, doc = answer[0]
    assert status in (200, 504), doc


def test_a_query_past_its_deadline_gets_a_clear_error(server: Server) -> None:
    status, doc = monitor_query(server, "query_range", **heavy_range(time.time()), timeout="1s")
    assert status == 504
    assert "deadline of 1s" in doc["error"] and "raise the step" in doc["error"]
    # what a command of the CLI makes of it: one line
    client = ControlPlaneClient.for_home(server.home)
    with pytest.raises(UsageError, match=r"stopped after its deadline of 1s"):
        asyncio.run(client.monitor("query_range", **heavy_range(time.time()), timeout="1s"))
    # the broker and the API answer as before
    broker_ping(*server.nats)
    assert get(server, "/api/status")[0] == 200


def test_a_backtracking_regex_runs_in_linear_time(server: Server) -> None:
    status, doc = monitor_query(server, "query", query='up{instance=~"(.*.*.*)*X"}')
    assert status == 200 and doc["result"] == []
    status, doc = monitor_query(server, "query", query='up{instance=~"(i.*.*)*1"}')
    assert status == 200 and [r["labels"]["instance"] for r in doc["result"]] == [LONG_LABEL]


def test_a_killed_query_process_is_replaced(server: Server) -> None:
    parts = {p["name"]: p for p in get(server, "/api/status")[1]["parts"]}
    pids = parts["monitor queries"]["pids"]
    assert pids, "no query process runs"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for _ in range(len(pids) + 1):  # each slot finds its process gone and starts another
        status, doc = monitor_query(server, "query", query="up")
        assert status == 200 and len(doc["result"]) == 1
    broker_ping(*server.nats)
    after = {p["name"]: p for p in get(server, "/api/status")[1]["parts"]}["monitor queries"]
    assert after["state"] == "ok"
    assert "replaced" in after["detail"]
    assert not set(pids) & set(after["pids"])
