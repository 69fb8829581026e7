"""``minga server``: the broker, the registry, the supervisor and the HTTP API in one asyncio process.

Start order: broker → registry → monitor (scraping, log collection, spans, alerts; its API under
``/api/monitor``) → HTTP API (the registry's routes under ``/v1/discovery``, the dashboard under
``/dashboard``) → state file → gateway (when the spec has ``gateway:``) → supervisor. Stop order,
the reverse: every replica (reverse dependency order, grace then SIGKILL) → gateway → state file →
HTTP API → monitor (which indexes the last log lines first) → registry → broker. A stop comes from SIGINT/SIGTERM (:meth:`ControlPlane.request_stop`)
or ``POST /api/stop``, which answers once no replica is left.

Security is on without configuration: the home is made private (0700, files 0600, a umask of
077 while the server runs), every HTTP caller passes :class:`~minga.security.HttpGuard` (the
admin and read-only tokens in ``home/credentials.json``, one credential per replica in its
``MINGA_TOKEN``), each refusal lands in ``home/audit.log``, and the broker's password never
leaves the process (the status, the state file and the dashboard show ``nats://user:***@...``).

Where each part runs: the broker, the registry, the gateway, the supervisor and the HTTP API
share this process's event loop (each answers in microseconds); the monitor's reads run in its
query processes and its writes on one writer thread, so no query or storage write delays them.
:meth:`ControlPlane.parts` reports each one's health (``minga status``, the dashboard).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from minga.controlplane._api import api_routes
from minga.controlplane._broker import BrokerHandle
from minga.controlplane._dashboard import ControlPlaneSource
from minga.controlplane._state import ServerState
from minga.dashboard import dashboard_app
from minga.deploy import Health as SupervisedHealth
from minga.deploy import InstanceState, LocalSupervisor, ServicePlan, plan_from_spec
from minga.discovery import (
    DiscoveryClient,
    EmbeddedStore,
    Health,
    Instance,
    Registry,
    Store,
    discovery_app,
    store_from_spec,
)
from minga.errors import UsageError
from minga.gateway import DiscoverySource, Gateway
from minga.monitor import Monitor, MonitorSettings, ScrapeTarget, monitor_app
from minga.security import (
    AuditLog,
    Credentials,
    HttpGuard,
    SecretStore,
    private_umask,
    redact_url,
    refused_address,
    secure_home,
)
from minga.spec import AlertSpec, GatewaySpec, HealthCheckSpec, Spec

log = logging.getLogger("minga.controlplane")

DISCOVERY_PREFIX = "/v1/discovery"
DASHBOARD_PREFIX = "/dashboard"
MONITOR_PREFIX = "/api/monitor"


def registry_checks(spec: Spec) -> dict[str, HealthCheckSpec]:
    """The registry's active check of each service: the spec's, or ``GET /healthz`` for a ``module:`` service."""
    checks: dict[str, HealthCheckSpec] = {}
    for name, svc in spec.services.items():
        if svc.health is not None:
            checks[name] = svc.health
        elif svc.module is not None:
            checks[name] = HealthCheckSpec(http="/healthz")
    return checks

__all__ = ["ControlPlane"]


def _part(name: str, runs: str, state: str, detail: str) -> dict[str, Any]:
    return {"name": name, "runs": runs, "state": state, "detail": detail}


class ControlPlane:
    """One running system on this machine.

    ``nats_url`` points at an external NATS server, which must offer JetStream when ``jetstream``
    is on (UsageError at start otherwise); None starts the embedded broker on ``broker_port`` (0: any
    free port) with JetStream (when on) stored under ``home``. ``store`` is the
    registry's store (default: embedded, persisted in ``home/registry.json``); ``checks`` the
    registry's active health check per service.
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
        jetstream: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        store: Store | None = None,
        checks: Mapping[str, HealthCheckSpec] | None = None,
        default_ttl: float = 5.0,
        gateway: GatewaySpec | None = None,
        alerts: Mapping[str, AlertSpec] | None = None,
        monitor: MonitorSettings | None = None,
        scrape_allow: Sequence[str] = (),
    ) -> None:
        self.plans = list(plans)
        self.home = home
        self.name = name
        self.spec_path = spec_path
        self.external_nats = nats_url
        self.broker_port = broker_port
        self.broker_host = broker_host
        self.jetstream = jetstream
        self.host = host
        self.port = port
        self.nats_url = nats_url or ""
        self.url = ""
        self.store: Store = store if store is not None else EmbeddedStore(home / "registry.json")
        self.checks = dict(checks or {})
        self.default_ttl = default_ttl
        self.supervisor: LocalSupervisor | None = None
        self.registry: Registry | None = None
        self.gateway_spec = gateway
        self.gateway: Gateway | None = None
        self.alerts = dict(alerts or {})
        self.monitor_settings = monitor
        self.monitor: Monitor | None = None
        self.scrape_allow = tuple(scrape_allow)
        self.credentials: Credentials | None = None
        self._secret_env: dict[str, dict[str, str]] = {}  # service -> {VAR: value}, as last read
        self._refused_targets: set[str] = set()
        self._registered: dict[str, Instance] = {}
        self.dashboard = ControlPlaneSource(status_fn=self.status, home=home)
        self._stop = asyncio.Event()
        self._services_stopped = asyncio.Event()
        self._broker: BrokerHandle | None = None
        self._lags: collections.deque[float] = collections.deque(maxlen=100)  # the last 10 s

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
            # an external broker must offer JetStream when minga services (their durable queues) run on it
            jetstream=spec.broker.jetstream
            and (spec.broker.embedded or any(svc.module is not None for svc in spec.services.values())),
            host=spec.control.host,
            port=spec.control.port,
            store=store_from_spec(spec.discovery, home),
            checks=registry_checks(spec),
            default_ttl=spec.discovery.ttl,
            gateway=spec.gateway,
            alerts=spec.alerts,
            monitor=MonitorSettings.from_spec(spec.monitor),
            scrape_allow=spec.monitor.scrape_allow,
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
        for svc in services:
            for inst in svc["instances"]:
                record = self._registered.get(inst["id"])
                inst["registered"] = record.health.value if record is not None else None
        return {
            "name": self.name,
            "home": str(self.home),
            "spec": str(self.spec_path) if self.spec_path else None,
            "control": self.url,
            "broker": redact_url(self.nats_url),
            "discovery": f"{self.url}{DISCOVERY_PREFIX}" if self.url else None,
            "gateway": self.gateway.url if self.gateway is not None else None,
            "dashboard": f"{self.url}{DASHBOARD_PREFIX}/" if self.url else None,
            "monitor": f"{self.url}{MONITOR_PREFIX}" if self.url else None,
            "healthy": bool(self.supervisor and self.supervisor.all_healthy()),
            "services": services,
            "alerts": [a.to_json() for a in self.monitor.alerts.firing()] if self.monitor is not None else [],
            "parts": self.parts(),
        }

    LAG_LIMIT = 0.1  # seconds: the loop waking a sleeper later than this makes its parts "slow"

    def parts(self) -> list[dict[str, Any]]:
        """Each part of the control plane: ``name``, where it ``runs`` (``loop``: this process's event
        loop; ``process``, ``thread``, ``external``), its ``state`` (``ok`` or what is wrong) and a
        ``detail``. The loop's parts are ``slow`` while the loop woke a sleeper over
        :attr:`LAG_LIMIT` late in the last 10 s: what a client of the broker would have waited."""
        lag = max(self._lags, default=0.0)
        on_loop = "ok" if lag <= self.LAG_LIMIT else "slow"
        lag_text = f"loop lag ≤ {lag * 1000:.0f} ms"
        out: list[dict[str, Any]] = []
        broker = self._broker.broker if self._broker is not None else None
        if self.external_nats:
            out.append(_part("broker", "external", "ok", redact_url(self.external_nats)))
        else:
            running = broker is not None and broker.running
            out.append(_part("broker", "loop", on_loop if running else "down", lag_text))
        registry_up = self.registry is not None
        out.append(_part("registry", "loop", on_loop if registry_up else "down", f"{len(self._registered)} instances"))
        if self.gateway_spec is not None:
            out.append(_part("gateway", "loop", on_loop if self.gateway is not None else "down",
                             self.gateway.url if self.gateway is not None else ""))  # fmt: skip
        if self.monitor is not None:
            health = self.monitor.health()
            queries, storage = health["queries"], health["storage"]
            pids = ", ".join(str(p) for p in queries["pids"]) or "none yet"
            detail = f"pids {pids}; {queries['served']} served, {queries['timeouts']} past their deadline"
            if queries["restarts"]:
                detail += f", {queries['restarts']} replaced ({queries['last_error']})"
            out.append({**_part("monitor queries", "process", queries["state"], detail), "pids": queries["pids"]})
            out.append(_part("monitor storage", "thread", storage["state"], storage["detail"]))
        return out

    async def _measure_lag(self) -> None:
        """How late the loop wakes a sleeper, every 0.1 s: what a broker or gateway client waits extra."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.1)
            self._lags.append(max(0.0, loop.time() - start - 0.1))

    async def run(self, ready: Callable[[ServerState], None] | None = None) -> None:
        """Run until a stop is requested; ``ready`` is called with the state once every part listens."""
        with private_umask():
            secure_home(self.home)
            # every secret the services name must be there before anything starts
            self._secret_env = {plan.name: self._read_secrets(plan.name) for plan in self.plans}
            self.credentials = Credentials.load_or_create(self.home)
            await self._run(self.credentials, ready)

    def _guard(self, credentials: Credentials) -> HttpGuard:
        return HttpGuard(
            credentials,
            AuditLog.in_home(self.home),
            hosts=[self.host],
            public_paths=[f"{DASHBOARD_PREFIX}/static/"],
            page_paths=[DASHBOARD_PREFIX],
            replica_paths=[f"{DISCOVERY_PREFIX}/"],
        )

    def _replica_env(self, credentials: Credentials) -> Callable[[str, str], dict[str, str]]:
        """What each replica gets on top of the shared environment: its own credential, and the
        secrets its service names (read again at each start, so a new value reaches new replicas)."""

        def env(instance: str, service: str) -> dict[str, str]:
            values = self._secret_env.get(service, {})
            try:
                values = self._secret_env[service] = self._read_secrets(service)
            except UsageError as exc:  # removed or damaged since start: the last known value goes on
                log.warning("%s starts with the secrets it had before: %s", instance, exc)
            return {**values, "MINGA_TOKEN": credentials.replica_token(service, instance)}

        return env

    def _read_secrets(self, service: str) -> dict[str, str]:
        """``{VAR: value}`` of the secrets ``service`` names; UsageError for one missing or not text."""
        plan = next((p for p in self.plans if p.name == service), None)
        if plan is None or not plan.secrets:
            return {}
        store = SecretStore(self.home)
        out: dict[str, str] = {}
        for var, name in plan.secrets.items():
            try:
                text = store.get(name).decode("utf-8")
            except UnicodeDecodeError:
                text = "\0"
            if "\0" in text:
                raise UsageError(f"secret {name} (for {service}'s {var}) is not text an environment variable can hold")
            out[var] = text
        return out

    def _planned_ports(self, instance: str) -> dict[str, int] | None:
        if self.supervisor is None or instance not in self.supervisor.machine.instances:
            return None
        return self.supervisor.ports(instance)

    async def _run(self, credentials: Credentials, ready: Callable[[ServerState], None] | None) -> None:
        self._broker = BrokerHandle(
            self.external_nats,
            self.broker_host,
            self.broker_port,
            self.home,
            jetstream=self.jetstream,
            spec=str(self.spec_path) if self.spec_path else "minga.yaml",
        )
        async with (
            self._broker as nats_url,
            Registry(self.store, checks=self.checks, default_ttl=self.default_ttl) as registry,
            Monitor(
                self.home,
                targets=self._scrape_targets,
                nats_url=nats_url,
                alerts=self.alerts,
                settings=self.monitor_settings,
            ) as monitor,
        ):
            self.nats_url = nats_url
            self.registry = registry
            self.monitor = monitor
            self.dashboard.monitor = monitor
            guard = self._guard(credentials)
            app = web.Application(middlewares=[guard.middleware])
            app.add_routes(guard.routes())
            app.add_subapp(
                DISCOVERY_PREFIX,
                discovery_app(registry, planned_ports=self._planned_ports, also_scraped=self._gateway_targets),
            )
            app.add_subapp(DASHBOARD_PREFIX, dashboard_app(self.dashboard))
            app.add_subapp(MONITOR_PREFIX, monitor_app(monitor))
            sup = LocalSupervisor(
                self.plans,
                home=self.home,
                env={"MINGA_NATS_URL": nats_url},
                on_critical=self._on_critical,
                on_health=self._on_health,
                instance_env=self._replica_env(credentials),
                on_crashloop=self._on_crashloop,
            )
            self.supervisor = sup
            app.add_routes(api_routes(self.status, sup.wait_healthy, self._stop_and_wait, self.home))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.host, self.port)
                try:
                    await site.start()
                except OSError as exc:
                    raise UsageError(
                        f"the control plane cannot listen on {self.host}:{self.port}: {exc.strerror}; pick "
                        "another port with `control: {port: N}` in minga.yaml or `--control-port N`"
                    ) from None
                host, port = runner.addresses[0][:2]
                self.url = f"http://{host}:{port}"
                sup.env["MINGA_DISCOVERY_URL"] = f"{self.url}{DISCOVERY_PREFIX}"
                state = ServerState(
                    url=self.url,
                    pid=os.getpid(),
                    home=str(self.home),
                    spec=str(self.spec_path) if self.spec_path else None,
                    nats_url=redact_url(nats_url),
                    started_at=time.time(),
                )
                state.write(self.home)
                try:
                    async with self._gateway_running(registry), asyncio.TaskGroup() as tg:
                        tg.create_task(sup.run())
                        watcher = tg.create_task(self._follow_registry(registry))
                        sampler = tg.create_task(self.dashboard.run_sampler())
                        lag = tg.create_task(self._measure_lag())
                        if ready is not None:
                            ready(state)
                        await self._stop.wait()
                        await sup.stop()
                        await self._deregister_all(registry)
                        watcher.cancel()
                        sampler.cancel()
                        lag.cancel()
                        self._services_stopped.set()
                finally:
                    ServerState.remove(self.home)
            finally:
                await runner.cleanup()

    @contextlib.asynccontextmanager
    async def _gateway_running(self, registry: Registry) -> AsyncIterator[None]:
        """The API gateway when the spec has ``gateway:``, routing to the registry's passing instances.

        Entered before the replicas start and left after they stopped.
        """
        if self.gateway_spec is None:
            yield
            return
        async with (
            DiscoveryClient(registry.store, close_store=False) as client,
            Gateway(
                self.gateway_spec,
                DiscoverySource(client.cache),
                audit=AuditLog.in_home(self.home),
                base=self.spec_path.parent if self.spec_path else None,
            ) as gateway,
        ):
            self.gateway = gateway
            if self.monitor is not None:
                gateway.span_sink = self.monitor.record_span
            try:
                yield
            finally:
                self.gateway = None

    def _gateway_targets(self) -> list[Instance]:
        """The gateway's metrics as one scrape target (service and instance ``gateway``): the monitor
        scrapes it, and the registry's ``/http_sd`` lists it for Prometheus, though it is not registered."""
        if self.gateway is None or self.gateway_spec is None or not self.gateway_spec.metrics_path:
            return []
        return [
            Instance(
                id="gateway",
                service="gateway",
                host=self.gateway_spec.host,
                ports={"metrics": self.gateway.port},
                metadata={"metrics_path": self.gateway_spec.metrics_path},
            )
        ]

    async def _scrape_targets(self) -> list[ScrapeTarget]:
        """Every registered instance with a ``metrics`` port, and the gateway's own metrics."""
        instances = await self.registry.instances() if self.registry is not None else []
        targets: list[ScrapeTarget] = []
        for inst in instances:
            port = inst.ports.get("metrics")
            refused = refused_address(inst.host, self.scrape_allow) if port else None
            if refused is not None:
                if inst.id not in self._refused_targets:  # say it once per instance
                    self._refused_targets.add(inst.id)
                    log.warning("not scraping %s: %s (see monitor.scrape_allow)", inst.id, refused)
                continue
            if port:
                targets.append(_scrape_target(inst, port))
        # the gateway is the control plane's own: its address is not a registry record's to choose
        for inst in self._gateway_targets():
            targets.append(_scrape_target(inst, inst.ports["metrics"]))
        return targets

    async def _on_critical(self, instance: str, service: str) -> None:
        """A replica died: take it out of every picker at once."""
        if self.registry is not None:
            await self.registry.mark_critical(instance, "the process exited")

    async def _on_crashloop(self, inst: InstanceState) -> None:
        """A replica entered or left a crash loop: the built-in ``CrashLoop`` alert fires or resolves."""
        if self.monitor is None or self.supervisor is None:
            return
        exits = self.supervisor.machine.plans[inst.service].restart.crashloop_exits
        why = inst.last_error or f"exit status {inst.last_exit}"
        await self.monitor.alerts.set_builtin(
            "CrashLoop",
            {"service": inst.service, "instance": inst.id},
            firing=inst.crashloop,
            summary=f"{inst.id} keeps exiting: {why}",
            value=float(inst.quick_failures),
            threshold=f">= {exits} exits in a row",
            now=time.time(),
        )

    async def _on_health(self, instance: str, service: str, health: SupervisedHealth) -> None:
        """Register a replica once its check passes, unless it registered itself already (a minga
        service does; a ``command:`` one cannot), so every replica is in discovery."""
        if self.registry is None or self.supervisor is None:
            return
        if health is SupervisedHealth.PASSING:
            current = self._registered.get(instance)
            if current is not None and current.health is Health.PASSING:
                return
            state = self.supervisor.machine.instances[instance]
            record = Instance(
                id=instance,
                service=service,
                ports=self.supervisor.ports(instance),
                restarts=state.restarts,
                metadata={"pid": str(state.pid), "registered_by": "supervisor"},
            )
            await self.registry.register(record, ttl=None)  # no lease: the supervisor watches the process
        elif health is SupervisedHealth.CRITICAL:
            await self.registry.mark_critical(instance, "its health check failed")

    async def _deregister_all(self, registry: Registry) -> None:
        """After a stop: nothing planned stays registered (replicas that stopped cleanly are gone already)."""
        for plan in self.plans:
            for iid in plan.instance_ids():
                await registry.deregister(iid)

    async def _follow_registry(self, registry: Registry) -> None:
        """Keep the registry's view of each instance for the status document, and its restart count right."""
        async with registry.watch() as watch:
            self._registered = {i.id: i for i in watch.snapshot.instances}
            async for event in watch:
                record = event.instance
                if event.kind == "delete":
                    self._registered.pop(record.id, None)
                    self.dashboard.notify_changed()
                    continue
                self._registered[record.id] = record
                self.dashboard.notify_changed()
                known = self.supervisor.machine.instances.get(record.id) if self.supervisor else None
                if known is not None and known.restarts != record.restarts:
                    await registry.update(record.model_copy(update={"restarts": known.restarts}))


def _scrape_target(inst: Instance, port: int) -> ScrapeTarget:
    """Where ``inst``'s metrics are read: its host (bracketed when IPv6), ``port`` and ``metrics_path``."""
    host = f"[{inst.host}]" if ":" in inst.host else inst.host
    path = inst.metadata.get("metrics_path", "/metrics")
    return ScrapeTarget(inst.service, inst.id, f"http://{host}:{port}{path}")
