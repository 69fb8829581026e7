"""The suite's own helpers: a child server binds a port of its own choosing and reports it."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

import support
from minga.service import testing


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


def test_nats_server_binds_a_port_of_its_own_reports_it_and_restarts_on_it(tmp_path: Path) -> None:
    server = support.nats_server(tmp_path)
    assert server.port == 0 and server.argv[server.argv.index("-p") + 1] == "-1", "nothing picked before the bind"
    with support.running(server):
        first = server.port
        assert first > 0 and _accepts(first)
        server.kill()
        server.start()
        assert server.port == first and _accepts(first), "started again where its clients expect it"


def test_a_port_zero_child_that_never_reports_fails_with_its_log_named(tmp_path: Path) -> None:
    silent = support.ServerProcess(
        [sys.executable, "-c", "import time; time.sleep(30)"], 0, log=tmp_path / "silent.log",
        port_pattern=r"listening on (\d+)",
    )  # fmt: skip
    with pytest.raises(TimeoutError, match=r"silent\.log"):
        silent.start(timeout=0.5)
    silent.kill()
    with pytest.raises(ValueError, match="port_pattern"):
        support.ServerProcess(["true"], 0)


def test_the_sdk_nats_server_helper_serves_on_the_port_it_reports() -> None:
    with testing.nats_server(jetstream=False) as url:
        port = int(url.rsplit(":", 1)[1])
        assert url.startswith("nats://127.0.0.1:") and _accepts(port)
