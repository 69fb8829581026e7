"""Health that cannot be fooled: a probe passes only when the replica itself answers."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from minga.deploy import Backoff, Health, HealthProbe, LocalSupervisor, RestartPolicy, ServicePlan, log_path
from minga.discovery import Health as Checked
from minga.discovery import Identity, Instance, check_once
from minga.service.testing import embedded_broker
from minga.spec import HealthCheckSpec

HERE = Path(__file__).parent


@asynccontextmanager
async def stranger(instance: str, pid: int) -> AsyncIterator[int]:
    """Another system's replica: answers ``GET /healthz`` with 200, naming ``instance`` and ``pid``."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "passing", "instance": instance, "pid": pid})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield int(port)
    finally:
        await runner.cleanup()


def test_an_answer_from_another_instance_or_process_is_not_this_replica() -> None:
    me = Identity("greeter-1", 42, required=True)
    assert me.problem(b'{"instance": "greeter-1", "pid": 42}') is None
    assert "answered by web-1, not greeter-1" in (me.problem(b'{"instance": "web-1", "pid": 42}') or "")
    assert "answered by pid 7, not 42" in (me.problem(b'{"instance": "greeter-1", "pid": 7}') or "")
    assert me.problem(b"<html>ok</html>") == "the answer does not name its instance"
    assert Identity("greeter-1").problem(b"plain ok") is None  # not required: a command's own check


async def test_the_registry_check_fails_when_another_process_answers() -> None:
    async with stranger("greeter-1", 1) as port, aiohttp.ClientSession() as session:
        spec = HealthCheckSpec(http="/healthz")
        mine = Instance(id="greeter-1", service="greeter", ports={"http": port}, metadata={"pid": "1"})
        assert (await check_once(mine, spec, session))[0] is Checked.PASSING
        other_pid = mine.model_copy(update={"metadata": {"pid": "2"}})
        health, output = await check_once(other_pid, spec, session)
        assert health is Checked.CRITICAL and "answered by pid 1, not 2" in output


async def test_a_replica_whose_port_is_taken_never_passes_and_says_why(tmp_path: Path) -> None:
    seen: list[Health] = []

    async def on_health(instance: str, service: str, health: Health) -> None:
        seen.append(health)

    # the same service name in another system: even the instance id matches, the pid does not
    async with stranger("greeter-1", os.getpid()) as port:
        with embedded_broker(store_dir=tmp_path / "js") as url:
            plan = ServicePlan(
                name="greeter",
                argv=(sys.executable, "-m", "minga.service", "greeter:Greeter"),
                env={"PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])},
                ports={"http": port},
                health=HealthProbe(kind="http", path="/healthz", interval=0.1, timeout=1.0, identity=True),
                restart=RestartPolicy(backoff=Backoff(initial=0.5, maximum=0.5)),
                stop_grace=2.0,
            )
            sup = LocalSupervisor([plan], home=tmp_path / "home", env={"MINGA_NATS_URL": url}, on_health=on_health)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(sup.run())
                async with asyncio.timeout(60):
                    await sup.wait_until(lambda: sup.machine.instances["greeter-1"].restarts >= 2)
                await sup.stop()
    assert Health.PASSING not in seen
    log = log_path(tmp_path / "home", "greeter-1").read_text()
    assert f"error: cannot serve HTTP on 127.0.0.1:{port}: address already in use: another process holds it" in log
    assert "killed" not in log  # the replica failed to start: nothing was killed




async def test_the_pid_of_a_record_the_supervisor_made_is_not_compared() -> None:
    # a `command:` replica (sh -c "python -m ...") answers with its child's pid, not the command's
    async with stranger("web-1", 4242) as port, aiohttp.ClientSession() as session:
        record = Instance(
            id="web-1", service="web", ports={"http": port}, metadata={"pid": "1", "registered_by": "supervisor"}
        )
        assert (await check_once(record, HealthCheckSpec(http="/healthz"), session))[0] is Checked.PASSING
