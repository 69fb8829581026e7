"""Brokers the bus tests run against: a real nats-server with JetStream (and the embedded broker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import support


@pytest.fixture(params=["nats-server"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with support.running(support.nats_server(tmp_path, jetstream=True)) as server:
        yield f"nats://127.0.0.1:{server.port}"
