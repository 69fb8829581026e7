"""The service tests run on the shipped fixtures; ``minga_broker`` is overridden to cover each broker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from minga.service import testing

# demo_services.py holds the services under test; replica processes import it too
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(params=["nats-server"])
def minga_broker(request: pytest.FixtureRequest) -> Iterator[str]:
    with testing.broker() as url:
        yield url
