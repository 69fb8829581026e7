"""Brokers the bus tests run against: a real nats-server with JetStream (and the embedded broker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import support


@pytest.fixture(params=["nats-server", "embedded"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "nats-server":
        server = support.nats_server(tmp_path, jetstream=True)
    else:
        port = support.free_port()
        argv = support.python_module("minga", ["broker", "--port", str(port), "--store", str(tmp_path / "js")])
        server = support.ServerProcess(argv, port, log=tmp_path / "broker.log")
    with support.running(server):
        yield f"nats://127.0.0.1:{server.port}"
