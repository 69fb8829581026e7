"""The local provider with real processes: ports, env, logs, health gating, restarts, no orphans."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from minga.deploy import (
    Backoff,
    HealthProbe,
    Limits,
    LocalSupervisor,
    Phase,
    RestartPolicy,
    ServicePlan,
    log_path,
)

QUICK = RestartPolicy(backoff=Backoff(initial=0.05, maximum=0.2), crashloop_exits=3)
TCP = HealthProbe(kind="tcp", interval=0.2, timeout=0.5)


def http_server(tmp: Path, name: str, **kw: object) -> ServicePlan:
    """A replica that serves HTTP on MINGA_HTTP_PORT, and starts a grandchild that must die with it."""
    script = (
        f"sleep 300 & echo $! > {tmp}/$MINGA_INSTANCE.child; "
        f"echo env $MINGA_SERVICE $MINGA_INSTANCE $EXTRA; "
        f"exec {sys.executable} -m http.server $MINGA_HTTP_PORT --bind 127.0.0.1"
    )
    return ServicePlan(name=name, argv=("sh", "-c", script), health=TCP, restart=QUICK, stop_grace=2.0, **kw)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def proc_limits(pid: int) -> str:
    return Path(f"/proc/{pid}/limits").read_text()


async def test_starts_in_order_restarts_a_killed_replica_and_leaves_no_orphans(tmp_path: Path) -> None:
    critical: list[str] = []

    async def on_critical(instance: str, service: str) -> None:
        critical.append(instance)

    plans = [
        http_server(tmp_path, "db", env={"EXTRA": "x1"}),
        http_server(tmp_path, "web", replicas=2, depends_on=("db",)),
    ]
    sup = LocalSupervisor(plans, home=tmp_path / "home", env={"MINGA_NATS_URL": "nats://nowhere:1"},
                          on_critical=on_critical)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(sup.run())
        async with asyncio.timeout(30):
            await sup.wait_healthy()
        status = {s["name"]: s for s in sup.status()}
        assert [s["name"] for s in sup.status()] == ["db", "web"]
        web = status["web"]["instances"]
        assert [i["id"] for i in web] == ["web-1", "web-2"]
        assert all(i["health"] == "passing" and i["pid"] for i in web)
        assert web[0]["ports"]["http"] != web[1]["ports"]["http"]
        log = log_path(tmp_path / "home", "db-1").read_text()
        assert "env db db-1 x1" in log

        victim = web[0]["pid"]
        child = int((tmp_path / "web-1.child").read_text())
        os.killpg(victim, signal.SIGKILL)
        async with asyncio.timeout(15):
            await sup.wait_until(lambda: "web-1" in critical)
            await sup.wait_until(
                lambda: sup.machine.instances["web-1"].restarts == 1 and sup.machine.healthy("web")
            )
        assert not alive(child), "the grandchild of a killed replica outlived it"
        pids = [i["pid"] for s in sup.status() for i in s["instances"]]
        children = [int((tmp_path / f"{i}.child").read_text()) for i in ("db-1", "web-1", "web-2")]
        await sup.stop()
    assert all(p == Phase.STOPPED for p in sup.phases.values())
    assert not any(alive(p) for p in pids + children)
    assert critical == ["web-1"]  # the stop itself marks nothing critical


async def test_crash_loop_shows_in_status_and_spawn_failures_are_reported(tmp_path: Path) -> None:
    plans = [
        ServicePlan(name="crash", argv=("sh", "-c", "echo boom; exit 3"), restart=QUICK, health=TCP),
        ServicePlan(name="missing", argv=(str(tmp_path / "no-such-binary"),), restart=QUICK, health=TCP),
    ]
    sup = LocalSupervisor(plans, home=tmp_path)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(sup.run())
        async with asyncio.timeout(20):
            await sup.wait_until(lambda: sup.machine.instances["crash-1"].crashloop)
        crash, missing = (s["instances"][0] for s in sup.status())
        assert crash["crashloop"] and crash["last_exit"] == 3 and crash["restarts"] >= 2
        assert "no-such-binary" in (missing["last_error"] or "")
        await sup.stop()
    assert log_path(tmp_path, "crash-1").read_text().count("boom") >= 3


async def test_memory_limit_is_enforced_or_reported(tmp_path: Path) -> None:
    plan = ServicePlan(
        name="small",
        argv=("sleep", "30"),
        limits=Limits(memory=512 * 1024 * 1024, cpus=0.5),
        health=HealthProbe(kind="none"),
    )
    sup = LocalSupervisor([plan], home=tmp_path)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(sup.run())
        async with asyncio.timeout(10):
            await sup.wait_healthy()
        limits = sup.status()[0]["instances"][0]["limits"]
        pid = sup.status()[0]["instances"][0]["pid"]
        if sys.platform == "linux":
            assert limits["memory"].startswith("enforced")
            assert str(512 * 1024 * 1024) in proc_limits(pid)
        assert limits["cpus"].startswith("reported only")
        await sup.stop()
