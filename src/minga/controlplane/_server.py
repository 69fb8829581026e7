"""``minga server``: the broker, the registry, the supervisor and the HTTP API in one asyncio process.

Start order: broker → HTTP API (with the registry's routes) → state file → supervisor.
Stop order, the reverse: every replica (reverse dependency order, grace then SIGKILL) →
state file → HTTP API → broker. A stop comes from SIGINT/SIGTERM (:meth:`ControlPlane.request_stop`)
or ``POST /api/stop``, which answers once no replica is left.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from minga.controlplane._api import api_routes
from minga.controlplane._broker import BrokerHandle
from minga.controlplane._state import ServerState
from minga.deploy import LocalSupervisor, ServicePlan, plan_from_spec
from minga.errors import UsageError
from minga.spec import Spec

__all__ = ["ControlPlane"]


class ControlPlane:
    """One running system on this machine.

    ``nats_url`` points at an external NATS server; None starts the embedded broker on
    ``broker_port`` (0: any free port) with JetStream stored under ``home``.
    """

    def __init__(
        self,
        plans: Sequence[ServicePlan],
        *,
        home: Path,
        name: str | None = None,
        spec_path: Path | None = None,
        nats_url: str | None = None,
        broker_port: int = 0,
        broker_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.plans = list(plans)
        self.home = home
        self.name = name
        self.spec_path = spec_path
        self.external_nats = nats_url
        self.broker_port = broker_port
        self.broker_host = broker_host
        self.host = host
        self.port = port
        self.nats_url = nats_url or ""
        self.url = ""
        self.supervisor: LocalSupervisor | None = None
        self._stop = asyncio.Event()
        self._services_stopped = asyncio.Event()

    @classmethod
    def from_spec(cls, spec: Spec, home: Path) -> ControlPlane:
        """The control plane that runs ``spec``, its state under ``home``."""
        return cls(
            plan_from_spec(spec),
            home=home,
            name=spec.name,
            spec_path=Path(spec.source).resolve() if spec.source else None,
            nats_url=spec.broker.url,
            broker_port=spec.broker.port,
            broker_host=spec.broker.host,
        )

    def request_stop(self) -> None:
        """Begin an orderly stop (safe to call from a signal handler, more than once)."""
        self._stop.set()

    async def _stop_and_wait(self) -> None:
        self._stop.set()
        await self._services_stopped.wait()

    def status(self) -> dict[str, Any]:
        """The document ``minga status --json`` prints."""
        services = self.supervisor.status() if self.supervisor else []
        return {
            "name": self.name,
            "home": str(self.home),
            "spec": str(self.spec_path) if self.spec_path else None,
            "control": self.url,
            "broker": self.nats_url,
            "discovery": self.url,
            "gateway": None,
            "dashboard": None,
            "healthy": bool(self.supervisor and self.supervisor.all_healthy()),
            "services": services,
        }

    async def run(self, ready: Callable[[ServerState], None] | None = None) -> None:
        """Run until a stop is requested; ``ready`` is called with the state once every part listens."""
        self.home.mkdir(parents=True, exist_ok=True)
        async with BrokerHandle(self.external_nats, self.broker_host, self.broker_port, self.home) as nats_url:
            self.nats_url = nats_url
            app = web.Application()
            sup = LocalSupervisor(
                self.plans,
                home=self.home,
                env={"MINGA_NATS_URL": nats_url},
                on_critical=self._on_critical,
            )
            self.supervisor = sup
            app.add_routes(api_routes(self.status, sup.wait_healthy, self._stop_and_wait))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.host, self.port)
                try:
                    await site.start()
                except OSError as exc:
                    raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
                host, port = runner.addresses[0][:2]
                self.url = f"http://{host}:{port}"
                sup.env["MINGA_DISCOVERY_URL"] = self.url
                state = ServerState(
                    url=self.url,
                    pid=os.getpid(),
                    home=str(self.home),
                    spec=str(self.spec_path) if self.spec_path else None,
                    nats_url=nats_url,
                    started_at=time.time(),
                )
                state.write(self.home)
                try:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(sup.run())
                        if ready is not None:
                            ready(state)
                        await self._stop.wait()
                        await sup.stop()
                        self._services_stopped.set()
                finally:
                    ServerState.remove(self.home)
            finally:
                await runner.cleanup()

    async def _on_critical(self, instance: str, service: str) -> None:
        """A replica died: take it out of routing at once."""
