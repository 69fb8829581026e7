"""The registry's JSON HTTP API, as an aiohttp application the control plane mounts.

``app.add_subapp("/v1/discovery", discovery_app(registry))`` serves, under that prefix:

=======  =============================  ==========================================================
GET      /services                      ``{"services": [{"name", "instances", "passing", "warning", "critical"}]}``
GET      /services/{service}            ``{"service", "instances": [...]}``; ``?passing=1`` keeps passing ones
GET      /instances                     ``{"instances": [...], "revision"}``; ``?service=`` filters;
                                        ``?index=REV&wait=30`` long-polls until the revision passes REV
GET      /instances/{id}                one instance record
PUT      /instances/{id}                register: ``{"instance": {...}, "ttl": 5}`` (ttl null: no lease)
PATCH    /instances/{id}                replace a registered record, keeping its lease
DELETE   /instances/{id}                deregister
POST     /instances/{id}/renew          extend the lease; 404 when it expired (register again)
PUT      /instances/{id}/health         ``{"health": "critical", "output": "why"}``
GET      /watch                         NDJSON stream: ``{"snapshot": {...}}``, then one event per line
GET      /http_sd                       Prometheus HTTP service discovery targets: the instances,
                                        and what ``also_scraped`` adds (the control plane's gateway)
=======  =============================  ==========================================================

Errors are ``{"error": "..."}`` with 400 (bad body) or 404 (unknown instance).

Bodies are strict JSON nested at most 32 levels deep (:func:`~minga.security.load_json`); a ttl is
finite, from 0.5 s to :data:`MAX_TTL`. Behind the control plane's guard (:class:`~minga.security.HttpGuard`),
a replica's credential writes only its own record (403 otherwise, with an audit record): its
own instance id and service, at the address it calls from, on the ports it was given
(``planned_ports``), and never its health, which comes from the registry's checks.

:func:`serve_registry` serves the API on its own, without a control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from minga.discovery._httpstore import API_PREFIX
from minga.discovery._model import Health, Instance, WatchEvent
from minga.discovery._registry import USE_DEFAULT_TTL, Registry
from minga.errors import DiscoveryError
from minga.security import Role, identity_of, load_json, record_refusal, refuse

MAX_TTL = 3600.0
"""The longest lease a registration may ask for, in seconds."""

PlannedPorts = Callable[[str], Mapping[str, int] | None]
"""The ports the control plane gave an instance (``None``: it did not start that instance)."""

AlsoScraped = Callable[[], Sequence[Instance]]
"""Records that ``/http_sd`` lists beside the registered instances (they are not registered)."""

REGISTRY_KEY = web.AppKey("minga_registry", Registry)
_CLOSING_KEY = web.AppKey("minga_discovery_closing", asyncio.Event)
_ALSO_SCRAPED_KEY: web.AppKey[AlsoScraped] = web.AppKey("minga_discovery_also_scraped")
_PORTS_KEY = web.AppKey("minga_discovery_ports", object)


def discovery_app(
    registry: Registry, *, planned_ports: PlannedPorts | None = None, also_scraped: AlsoScraped | None = None
) -> web.Application:
    """An aiohttp application serving ``registry``'s HTTP API; mount it with ``add_subapp``.

    ``planned_ports`` tells which ports a replica may register (see the module docstring).
    ``also_scraped`` gives records that Prometheus should scrape although they are not
    registered (the control plane's gateway): ``/http_sd`` lists them after the instances.
    """
    app = web.Application()
    app[REGISTRY_KEY] = registry
    app[_CLOSING_KEY] = asyncio.Event()
    if also_scraped is not None:
        app[_ALSO_SCRAPED_KEY] = also_scraped
    app[_PORTS_KEY] = planned_ports
    app.add_routes(
        [
            web.get("/services", _services),
            web.get("/services/{service}", _service),
            web.get("/instances", _instances),
            web.get("/instances/{id}", _get),
            web.put("/instances/{id}", _register),
            web.patch("/instances/{id}", _update),
            web.delete("/instances/{id}", _deregister),
            web.post("/instances/{id}/renew", _renew),
            web.put("/instances/{id}/health", _health),
            web.get("/watch", _watch),
            web.get("/http_sd", _http_sd),
        ]
    )

    async def closing(app: web.Application) -> None:
        app[_CLOSING_KEY].set()

    app.on_shutdown.append(closing)
    return app


@contextlib.asynccontextmanager
async def serve_registry(registry: Registry, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``registry``'s API at ``http://host:port/v1/discovery`` (``port`` 0: a free one) until
    the block ends; yields the root URL, ``http://host:port``, which :class:`HttpStore` and
    ``MINGA_DISCOVERY_URL`` take as they are.

    Raises :class:`OSError` when ``host:port`` cannot be bound.
    """
    app = web.Application()
    app.add_subapp(API_PREFIX, discovery_app(registry))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        name = f"[{host}]" if ":" in host else host
        yield f"http://{name}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dump(instance: Instance) -> dict[str, Any]:
    return instance.model_dump(mode="json")


def _rejected(request: web.Request, message: str) -> web.HTTPBadRequest:
    """The 400 to raise for a body the registry will not take, its refusal audited."""
    record_refusal(request, message, area="registry")
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = load_json(await request.read())
    except ValueError as exc:
        raise _rejected(request, str(exc)) from None
    if not isinstance(body, dict):
        raise _rejected(request, "expected a JSON object")
    return body


def _instance_from(request: web.Request, body: dict[str, Any], instance_id: str) -> Instance:
    try:
        instance = Instance.model_validate(body.get("instance"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "instance"
        raise _rejected(request, f"instance.{where}: {first['msg']}") from None
    if instance.id != instance_id:
        raise _rejected(request, f"the path names {instance_id!r} but the record is {instance.id!r}")
    return instance


def _same_address(a: str, b: str | None) -> bool:
    """``a`` and ``b`` are one address (every loopback address counts as one)."""
    try:
        x, y = ipaddress.ip_address(a), ipaddress.ip_address(b or "")
    except ValueError:
        return a == b
    return x == y or (x.is_loopback and y.is_loopback)


def _owner_refusal(
    request: web.Request, instance_id: str, record: Instance | None, current: Instance | None = None
) -> web.Response | None:
    """A 403 when a replica's credential writes what is not its own (see the module docstring)."""
    who = identity_of(request)
    if who is None or who.role is not Role.REPLICA:
        return None  # no guard (a registry served on its own), or the guard let an admin through
    why = None
    if instance_id != who.instance:
        why = f"{who.name} may only write its own instance, not {instance_id!r}"
    elif record is not None and record.service != who.service:
        why = f"{who.name} may only register as service {who.service!r}, not {record.service!r}"
    elif record is not None and not _same_address(record.host, request.remote):
        why = f"{who.name} may only register its own address {request.remote}, not {record.host!r}"
    elif (
        record is not None
        and (current is None or record.health != current.health or record.output != current.output)
        and (record.health is not Health.PASSING or record.output)
    ):
        why = "health comes from the control plane's checks, not from a replica's record"
    elif record is not None:
        planned_ports: PlannedPorts | None = request.app[_PORTS_KEY]  # type: ignore[assignment]
        planned = planned_ports(instance_id) if planned_ports is not None else None
        if planned is not None and not set(record.ports.values()) <= set(planned.values()):
            given = ", ".join(str(p) for p in sorted(set(planned.values())))
            why = f"{who.name} may only register the ports it was given ({given})"
    return None if why is None else refuse(request, 403, why, area="registry")


async def _services(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    out = []
    for name, instances in (await registry.services()).items():
        counts = {h.value: sum(1 for i in instances if i.health is h) for h in Health}
        out.append({"name": name, "instances": len(instances), **counts})
    return web.json_response({"services": out})


async def _service(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    service = request.match_info["service"]
    passing = request.query.get("passing", "") in ("1", "true", "yes")
    instances = await registry.instances(service, passing_only=passing)
    return web.json_response({"service": service, "instances": [_dump(i) for i in instances]})


async def _instances(request: web.Request) -> web.Response:
    """Every instance and the revision; with ``?index=N``, a long poll: the answer waits until the
    revision passes N (a change of ``?service=`` when given) or ``?wait=`` seconds (default 30) pass."""
    registry = request.app[REGISTRY_KEY]
    service = request.query.get("service")
    if "index" in request.query:
        try:
            index = int(request.query["index"])
            wait = min(float(request.query.get("wait", "30")), 300.0)
        except ValueError:
            return _error(400, "index: expected a revision number; wait: expected seconds")
        async with registry.watch() as watch:
            if watch.snapshot.revision <= index:
                events = aiter(watch)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        while (
                            event := await _next_or_closing(events, request.app[_CLOSING_KEY])
                        ) is not None:
                            if event.revision > index and (
                                service is None or event.instance.service == service
                            ):
                                break
    snapshot = await registry.store.snapshot()
    instances = sorted(
        (i for i in snapshot.instances if service is None or i.service == service),
        key=lambda i: (i.service, i.id),
    )
    return web.json_response({"instances": [_dump(i) for i in instances], "revision": snapshot.revision})


async def _get(request: web.Request) -> web.Response:
    instance = await request.app[REGISTRY_KEY].get(request.match_info["id"])
    if instance is None:
        return _error(404, f"no instance {request.match_info['id']!r}")
    return web.json_response(_dump(instance))


async def _register(request: web.Request) -> web.Response:
    body = await _body(request)
    instance = _instance_from(request, body, request.match_info["id"])
    ttl = body.get("ttl", USE_DEFAULT_TTL)
    if (
        ttl is not USE_DEFAULT_TTL
        and ttl is not None
        and (
            isinstance(ttl, bool)
            or not isinstance(ttl, int | float)
            or not math.isfinite(ttl)
            or ttl > MAX_TTL
        )
    ):
        why = f"ttl: expected seconds from 0.5 to {MAX_TTL:g}, or null, found {str(ttl)[:40]}"
        return refuse(request, 400, why, area="registry")
    current = await request.app[REGISTRY_KEY].get(instance.id)
    refused = _owner_refusal(request, instance.id, instance, current)
    if refused is not None:
        return refused
    try:
        await request.app[REGISTRY_KEY].register(instance, ttl)
    except DiscoveryError as exc:
        return refuse(request, 400, str(exc), area="registry")
    return web.json_response({"instance": _dump(instance)})


async def _update(request: web.Request) -> web.Response:
    instance = _instance_from(request, await _body(request), request.match_info["id"])
    current = await request.app[REGISTRY_KEY].get(instance.id)
    refused = _owner_refusal(request, instance.id, instance, current)
    if refused is not None:
        return refused
    if not await request.app[REGISTRY_KEY].update(instance):
        return _error(404, f"no instance {instance.id!r}")
    return web.json_response({"instance": _dump(instance)})


async def _deregister(request: web.Request) -> web.Response:
    instance_id = request.match_info["id"]
    refused = _owner_refusal(request, instance_id, None)
    if refused is not None:
        return refused
    if not await request.app[REGISTRY_KEY].deregister(instance_id):
        return _error(404, f"no instance {instance_id!r}")
    return web.json_response({"deregistered": instance_id})


async def _renew(request: web.Request) -> web.Response:
    instance_id = request.match_info["id"]
    refused = _owner_refusal(request, instance_id, None)
    if refused is not None:
        return refused
    if not await request.app[REGISTRY_KEY].renew(instance_id):
        return _error(404, f"no lease for {instance_id!r}: register again")
    return web.json_response({"renewed": instance_id})


async def _health(request: web.Request) -> web.Response:
    instance_id = request.match_info["id"]
    who = identity_of(request)
    if who is not None and who.role is Role.REPLICA:
        return refuse(
            request, 403, "health comes from the control plane's checks, not from a replica", area="registry"
        )
    body = await _body(request)
    try:
        health = Health(str(body.get("health")))
    except ValueError:
        return _error(400, f"health: expected passing, warning or critical, found {body.get('health')!r}")
    output = str(body.get("output", ""))
    registry = request.app[REGISTRY_KEY]
    done = (
        await registry.mark_critical(instance_id, output)
        if health is Health.CRITICAL
        else await registry.set_health(instance_id, health, output)
    )
    if not done:
        return _error(404, f"no instance {instance_id!r}")
    return web.json_response({"id": instance_id, "health": health.value})


async def _next_or_closing(events: AsyncIterator[WatchEvent], closing: asyncio.Event) -> WatchEvent | None:
    """The next event, or ``None`` when the watch ended or the server is shutting down."""
    if closing.is_set():
        return None
    step = asyncio.ensure_future(anext(events))
    ended = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({step, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        if not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step
    if step.cancelled():
        return None
    try:
        return step.result()
    except StopAsyncIteration:
        return None


async def _watch(request: web.Request) -> web.StreamResponse:
    """Stream the snapshot, then each change, one JSON object per line, until the client or server leaves."""
    registry = request.app[REGISTRY_KEY]
    closing = request.app[_CLOSING_KEY]
    service = request.query.get("service")
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"})
    async with registry.watch() as watch:
        await resp.prepare(request)
        snapshot = watch.snapshot
        instances = [_dump(i) for i in snapshot.instances if service is None or i.service == service]
        await resp.write(
            json.dumps({"snapshot": {"instances": instances, "revision": snapshot.revision}}).encode() + b"\n"
        )
        events = aiter(watch)
        try:
            while (event := await _next_or_closing(events, closing)) is not None:
                if service is None or event.instance.service == service:
                    await resp.write(json.dumps(event.to_json()).encode() + b"\n")
        except ConnectionResetError:
            pass  # the watcher left
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def _http_sd(request: web.Request) -> web.Response:
    """Prometheus ``http_sd_configs`` targets: each instance's metrics port (else its http port).

    An instance whose ``metadata`` has ``metrics_path`` is scraped there (``__metrics_path__``).
    """
    registry = request.app[REGISTRY_KEY]
    service = request.query.get("service")
    instances = list(await registry.instances(service))
    also_scraped = request.app.get(_ALSO_SCRAPED_KEY)
    if also_scraped is not None:
        instances += [i for i in also_scraped() if service is None or i.service == service]
    groups = []
    for instance in instances:
        port = instance.ports.get("metrics", instance.ports.get("http"))
        if port is None:
            continue
        labels = {
            "service": instance.service,
            "instance_id": instance.id,
            "__meta_minga_service": instance.service,
            "__meta_minga_instance": instance.id,
            "__meta_minga_version": instance.version,
            "__meta_minga_health": instance.health.value,
            "__meta_minga_tags": "," + ",".join(instance.tags) + "," if instance.tags else "",
        }
        if "metrics_path" in instance.metadata:
            labels["__metrics_path__"] = instance.metadata["metrics_path"]
        groups.append({"targets": [f"{instance.host}:{port}"], "labels": labels})
    return web.json_response(groups)
