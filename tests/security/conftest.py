"""A control plane running in this process for the security tests: the embedded broker on a free
port, one `command:` service (web, a plain HTTP server) and the guard on, as `minga up` runs it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from minga.controlplane import ControlPlane, ServerState
from minga.spec import parse_spec

sys.path.insert(0, str(Path(__file__).parent))  # security_harness, shared with the test modules

from security_harness import Plane

SPEC = """\
name: guarded
broker: {{port: 0}}
services:
  web:
    command: ["sh", "-c", "exec {py} -m http.server $MINGA_HTTP_PORT --bind 127.0.0.1"]
    ports: [http]
    health: {{tcp: true, interval: 200ms, timeout: 200ms}}
    stop_grace: 2s
"""


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Plane]:
    spec = parse_spec(SPEC.format(py=sys.executable), str(tmp_path / "minga.yaml"))
    cp = ControlPlane.from_spec(spec, tmp_path / "home")
    ready: asyncio.Future[ServerState] = asyncio.get_running_loop().create_future()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(cp.run(ready.set_result))
        try:
            state = await asyncio.wait_for(ready, 30)
            assert cp.supervisor is not None and cp.credentials is not None
            async with asyncio.timeout(30):
                await cp.supervisor.wait_healthy()
            async with aiohttp.ClientSession() as http:
                yield Plane(cp, state, tmp_path / "home", cp.credentials, http)
        finally:
            cp.request_stop()
