"""Brokers the bus tests run against: a real nats-server with JetStream (and the embedded broker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import support
from minga.service.testing import embedded_broker


@pytest.fixture(params=["nats-server", "embedded"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "nats-server":
        with support.running(support.nats_server(tmp_path, jetstream=True)) as server:
            yield f"nats://127.0.0.1:{server.port}"
    else:
        # in a thread of this process (starts in milliseconds), with JetStream's file store
        with embedded_broker(store_dir=tmp_path / "js") as url:
            yield url
