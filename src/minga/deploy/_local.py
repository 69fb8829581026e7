"""The local provider: runs the supervisor machine's actions as real processes on this machine.

Each replica is its own process group (``start_new_session``), so a stop or a kill
reaches everything it started. Its stdout and stderr are read line by line and written,
time-stamped, to ``<home>/logs/<instance>.log``. Exits, probe results and timers become
events for :class:`~minga.deploy._machine.SupervisorMachine`; this module holds no policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from minga.deploy._machine import (
    Action,
    Event,
    Exited,
    Health,
    HealthChanged,
    InstanceState,
    Kill,
    MarkCritical,
    Phase,
    Spawn,
    SpawnFailed,
    Start,
    Started,
    StopRequested,
    SupervisorMachine,
    Terminate,
    Tick,
)
from minga.deploy._model import HealthProbe, Limits, ServicePlan
from minga.deploy._orphans import write_replicas
from minga.discovery import Health as DiscoveryHealth
from minga.discovery import Identity, probe
from minga.discovery.ports import free_port
from minga.errors import DeployError

__all__ = ["LocalSupervisor", "OnCrashLoop", "OnCritical", "OnHealth", "error_line", "log_path"]

log = logging.getLogger("minga.deploy")

OnCritical = Callable[[str, str], Awaitable[None]]
"""Called with (instance, service) the moment a replica exits unexpectedly."""

OnHealth = Callable[[str, str, Health], Awaitable[None]]
"""Called with (instance, service, health) when an active check changes a replica's health."""

OnCrashLoop = Callable[[InstanceState], Awaitable[None]]
"""Called with the replica's state when it enters a crash loop or leaves one (``state.crashloop`` says which)."""

_ERROR_LEVELS = ("error", "critical", "fatal")


def error_line(lines: Sequence[str]) -> str | None:
    """What a replica that failed last said about it: its last plain line (a traceback's last line,
    ``error: ...``), or the message of its last JSON log record at level error or above."""
    for raw in reversed(lines):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except ValueError:
                return text
            if isinstance(doc, dict):
                if str(doc.get("level", "")).lower() in _ERROR_LEVELS:
                    return str(doc.get("message") or text)
                continue
        return text
    return None



def log_path(home: Path, instance: str) -> Path:
    """Where the output of ``instance`` is written."""
    return home / "logs" / f"{instance}.log"


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Proc:
    """The process side of one replica."""

    ports: dict[str, int]
    log: Path
    limits_report: dict[str, str] = field(default_factory=dict)
    check: str = ""  # the last health check's output
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=50))  # its last output lines
    process: asyncio.subprocess.Process | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _apply_limits(pid: int, limits: Limits) -> dict[str, str]:
    """Enforce what the OS allows on ``pid``; say for each limit whether it is enforced or only reported."""
    report: dict[str, str] = {}
    if limits.memory is not None:
        prlimit = getattr(resource, "prlimit", None)  # Linux only
        if prlimit is not None:
            try:
                prlimit(pid, resource.RLIMIT_AS, (limits.memory, limits.memory))
                report["memory"] = f"enforced (RLIMIT_AS {limits.memory} bytes)"
            except (OSError, ValueError) as exc:
                report["memory"] = f"reported only ({exc})"
        else:
            report["memory"] = f"reported only (no prlimit on {sys.platform})"
    if limits.cpus is not None:
        report["cpus"] = f"reported only ({limits.cpus:g} cores; a CPU share needs cgroups)"
    return report


class LocalSupervisor:
    """Runs planned services as local process groups and keeps them running.

    ``env`` is injected into every replica (MINGA_NATS_URL, MINGA_DISCOVERY_URL...),
    before the service's own env; ``instance_env(instance, service)`` adds what one replica alone
    gets (its credential). ``on_critical`` is awaited when a replica dies
    unexpectedly, ``on_health`` when an active check changes its health. With
    ``probe=False`` no active checks run and health comes only through :meth:`set_health`.

    Use::

        sup = LocalSupervisor(plans, home=Path(".minga"), env={"MINGA_NATS_URL": url})
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sup.run())
            async with asyncio.timeout(30):
                await sup.wait_healthy()
            ...
            await sup.stop()
    """

    def __init__(
        self,
        plans: Sequence[ServicePlan],
        *,
        home: Path,
        env: Mapping[str, str] | None = None,
        on_critical: OnCritical | None = None,
        on_health: OnHealth | None = None,
        on_crashloop: OnCrashLoop | None = None,
        probe: bool = True,
        instance_env: Callable[[str, str], Mapping[str, str]] | None = None,
    ) -> None:
        self.machine = SupervisorMachine(plans)
        self.instance_env = instance_env
        self.home = home
        self.env = dict(env or {})
        self.on_critical = on_critical
        self.on_health = on_health
        self.on_crashloop = on_crashloop
        self.probe = probe
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._changed = asyncio.Condition()
        self._procs: dict[str, _Proc] = {}
        self._done = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._tg: asyncio.TaskGroup | None = None

    # -- public API ------------------------------------------------------------------------

    async def run(self) -> None:
        """Start every service (in dependency order) and supervise until :meth:`stop` completes."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._events.put(Start(time.monotonic()))
                while not self.machine.all_stopped():
                    deadline = self.machine.next_deadline()
                    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                    try:
                        event: Event = await asyncio.wait_for(self._events.get(), timeout)
                    except TimeoutError:
                        event = Tick(time.monotonic())
                    await self._handle(event)
                for proc in self._procs.values():
                    for task in proc.tasks:
                        task.cancel()
        finally:
            # cancelled or failed: no replica may outlive its supervisor
            for inst in self.machine.instances.values():
                if inst.pid is not None:
                    self._signal(inst.pid, signal.SIGKILL)
            await self._session.close()
            self._done.set()
            async with self._changed:
                self._changed.notify_all()

    async def stop(self, grace: float | None = None) -> None:
        """SIGTERM every replica in reverse dependency order, SIGKILL after ``grace`` seconds
        (None: each service's ``stop_grace``); return once no replica is left."""
        await self._events.put(StopRequested(time.monotonic(), grace))
        await self._done.wait()

    async def set_health(self, instance: str, health: Health) -> None:
        """Report a health change seen elsewhere (the registry's checks)."""
        if instance in self.machine.instances:
            await self._events.put(HealthChanged(instance, health, time.monotonic()))

    async def wait_until(self, predicate: Callable[[], bool]) -> bool:
        """Wait until ``predicate()`` holds, re-checked on every state change; False if supervision ended first.

        Bound it with ``asyncio.timeout``.
        """
        async with self._changed:
            await self._changed.wait_for(lambda: predicate() or self._done.is_set())
        return predicate()

    def all_healthy(self) -> bool:
        """Every replica of every service passes its checks."""
        return all(self.machine.healthy(s) for s in self.machine.order)

    def failed(self) -> list[str]:
        """The services with a replica that exited before it ever passed its checks."""
        return [s for s in self.machine.order if self.machine.failed_before_healthy(s)]

    async def wait_healthy(self, *, fail_fast: bool = False) -> bool:
        """Wait until every replica of every service passes its checks (bound it with ``asyncio.timeout``).

        With ``fail_fast``, return False as soon as a replica exits before it was ever healthy:
        a deterministic failure (an import error, a taken port) shows at once instead of after
        every restart within the timeout.
        """
        if not fail_fast:
            return await self.wait_until(self.all_healthy)
        await self.wait_until(lambda: self.all_healthy() or bool(self.failed()))
        return self.all_healthy()

    def tail(self, instance: str) -> list[str]:
        """The last lines ``instance`` wrote (of its current or last process)."""
        proc = self._procs.get(instance)
        return list(proc.tail) if proc else []

    def ports(self, instance: str) -> dict[str, int]:
        """The ports assigned to ``instance``."""
        proc = self._procs.get(instance)
        return dict(proc.ports) if proc else {}

    def status(self) -> list[dict[str, Any]]:
        """One entry per service, in dependency order, with its replicas (the shape ``minga status --json`` prints)."""
        out: list[dict[str, Any]] = []
        for name in self.machine.order:
            plan = self.machine.plans[name]
            instances = []
            for inst in self.machine.of(name):
                proc = self._procs.get(inst.id)
                ports = dict(proc.ports) if proc else {}
                instances.append(
                    {
                        "id": inst.id,
                        "pid": inst.pid,
                        "phase": inst.phase.value,
                        "health": inst.health.value,
                        "address": f"127.0.0.1:{proc.ports['http']}" if proc else None,
                        "ports": ports,
                        "restarts": inst.restarts,
                        "crashloop": inst.crashloop,
                        "ever_healthy": inst.ever_healthy,
                        "last_exit": inst.last_exit,
                        "last_error": inst.last_error,
                        "log": str(proc.log) if proc else str(log_path(self.home, inst.id)),
                        "limits": dict(proc.limits_report) if proc else {},
                        "check": proc.check if proc else "",
                    }
                )
            out.append(
                {
                    "name": name,
                    "replicas": plan.replicas,
                    "depends_on": list(plan.depends_on),
                    "healthy": self.machine.healthy(name),
                    "health": self.machine.service_health(name).value,
                    "instances": instances,
                }
            )
        return out

    # -- event loop ------------------------------------------------------------------------

    async def _handle(self, event: Event) -> None:
        looping = {i.id for i in self.machine.instances.values() if i.crashloop}
        for action in self.machine.handle(event):
            await self._do(action)
        if self.on_crashloop is not None:
            for inst in self.machine.instances.values():
                if inst.crashloop != (inst.id in looping):
                    try:
                        await self.on_crashloop(inst)
                    except Exception:  # an alert that cannot be sent must not stop supervision
                        log.exception("could not report the crash loop of %s", inst.id)
        if isinstance(event, Started | Exited):
            pids = {i.id: i.pid for i in self.machine.instances.values() if i.pid is not None}
            write_replicas(self.home, pids)
        self._narrate(event)
        async with self._changed:
            self._changed.notify_all()

    def _narrate(self, event: Event) -> None:
        """One log line for what a person watching `minga up` wants to know."""
        match event:
            case Exited(instance=iid) | SpawnFailed(instance=iid) as e:
                inst = self.machine.instances[iid]
                what = f"exited with {inst.last_exit}" if isinstance(e, Exited) else f"could not start: {inst.last_error}"
                if inst.phase is Phase.BACKOFF and inst.restart_at is not None:
                    delay = max(0.0, inst.restart_at - e.at)
                    loop = " (crash loop)" if inst.crashloop else ""
                    log.warning("%s %s; restarting in %.1fs%s", iid, what, delay, loop)
                elif inst.phase is Phase.EXITED:
                    log.warning("%s %s; not restarted (restart: %s)", iid, what,
                                self.machine.plans[inst.service].restart.mode.value)
            case HealthChanged(instance=iid, health=health) if health is not Health.PASSING:
                log.warning("%s is %s", iid, health.value)
            case _:
                pass

    async def _do(self, action: Action) -> None:
        match action:
            case Spawn(instance=iid, service=service, attempt=attempt):
                await self._spawn(iid, self.machine.plans[service], attempt)
            case Terminate(instance=iid, pid=pid):
                self._signal(pid, signal.SIGTERM)
            case Kill(instance=iid, pid=pid):
                self._signal(pid, signal.SIGKILL)
            case MarkCritical(instance=iid, service=service):
                if self.on_critical is not None:
                    try:
                        await self.on_critical(iid, service)
                    except Exception:  # the registry failing must not stop supervision
                        log.exception("could not mark %s critical", iid)

    @staticmethod
    def _signal(pgid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _ports_for(self, iid: str, plan: ServicePlan) -> dict[str, int]:
        previous = self._procs.get(iid)
        ports: dict[str, int] = {}
        for name, fixed in {"http": 0, **plan.ports}.items():
            if fixed:
                ports[name] = fixed
                continue
            if previous is not None and name in previous.ports:
                # keep the port across restarts when nobody took it meanwhile
                with contextlib.suppress(OSError), socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", previous.ports[name]))
                    ports[name] = previous.ports[name]
                    continue
            ports[name] = free_port()
        return ports

    async def _spawn(self, iid: str, plan: ServicePlan, attempt: int) -> None:
        ports = self._ports_for(iid, plan)
        proc = _Proc(ports=ports, log=log_path(self.home, iid))
        self._procs[iid] = proc
        env = dict(os.environ)
        env.update(self.env)
        env.update(
            {
                "MINGA_SERVICE": plan.name,
                "MINGA_INSTANCE": iid,
                "MINGA_HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"MINGA_{name.upper().replace('-', '_')}_PORT": str(p) for name, p in ports.items()})
        env.update(plan.env)
        if self.instance_env is not None:
            env.update(self.instance_env(iid, plan.name))
        with proc.log.open("a", encoding="utf-8") as f:
            f.write(f"{_stamp()} minga starting {iid} (attempt {attempt}): {' '.join(plan.argv)}\n")
        try:
            process = await asyncio.create_subprocess_exec(
                *plan.argv,
                cwd=plan.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                limit=1 << 20,  # one output line may be up to 1 MiB
            )
        except OSError as exc:
            with proc.log.open("a", encoding="utf-8") as f:
                f.write(f"{_stamp()} minga could not start {iid}: {exc}\n")
            await self._events.put(SpawnFailed(iid, str(exc), time.monotonic()))
            return
        proc.process = process
        proc.limits_report = _apply_limits(process.pid, plan.limits)
        await self._events.put(Started(iid, process.pid, time.monotonic()))
        assert self._tg is not None
        proc.tasks.append(self._tg.create_task(self._watch(iid, proc, process)))
        if self.probe:
            proc.tasks.append(self._tg.create_task(self._probe(iid, plan, proc, process)))

    async def _watch(self, iid: str, proc: _Proc, process: asyncio.subprocess.Process) -> None:
        """Copy the replica's output to its log; when it exits, clean its group and report."""
        assert process.stdout is not None
        with proc.log.open("a", encoding="utf-8", buffering=1) as f:
            while True:
                try:
                    line = await process.stdout.readline()
                except ValueError:  # longer than the limit: take what is buffered
                    line = await process.stdout.read(1 << 20)
                if not line:
                    break
                text = line.decode("utf-8", "replace").rstrip()
                proc.tail.append(text)
                f.write(f"{_stamp()} {text}\n")
            code = await process.wait()
            f.write(f"{_stamp()} minga {iid} exited with {code}\n")
        # no orphans: whatever the replica started dies with it
        self._signal(process.pid, signal.SIGKILL)
        await self._events.put(Exited(iid, code, time.monotonic(), error_line(proc.tail)))

    async def _probe(
        self, iid: str, plan: ServicePlan, proc: _Proc, process: asyncio.subprocess.Process
    ) -> None:
        """Active health checks of one replica for as long as its process lives."""
        check = plan.health
        health = Health.UNKNOWN
        failures = 0
        while process.returncode is None:
            ok = await self._check(check, proc.ports.get(check.port, proc.ports["http"]), iid, process.pid)
            if process.returncode is not None:
                return
            if ok:
                failures = 0
                new = Health.PASSING
            else:
                failures += 1
                new = Health.CRITICAL if health is Health.PASSING and failures >= check.failures else health
            if new is not health and not self.machine.stopping:
                health = new
                await self._events.put(HealthChanged(iid, health, time.monotonic()))
                if self.on_health is not None:
                    await self.on_health(iid, plan.name, health)
            # quick probing until the first pass, then at the configured interval
            await asyncio.sleep(check.interval if health is Health.PASSING else min(0.1, check.interval))

    async def _check(self, check: HealthProbe, port: int, iid: str, pid: int) -> bool:
        """One check of replica ``iid`` (process ``pid``) through discovery's probe: the one health model."""
        if check.kind == "none":
            return True
        if check.kind not in ("http", "tcp"):
            raise DeployError(f"unknown health check kind {check.kind!r} (expected http, tcp or none)")
        assert self._session is not None
        identity = Identity(iid, pid, required=True) if check.identity else None
        health, output = await probe(
            "127.0.0.1",
            port,
            http=check.path if check.kind == "http" else None,
            wait=check.timeout,
            session=self._session,
            identity=identity,
        )
        proc = self._procs.get(iid)
        if proc is not None:
            proc.check = output
        return health is DiscoveryHealth.PASSING

    @property
    def phases(self) -> dict[str, Phase]:
        """The phase of every replica (for tests and status lines)."""
        return {iid: inst.phase for iid, inst in self.machine.instances.items()}
