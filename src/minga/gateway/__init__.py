"""The API gateway: an HTTP/1.1 reverse proxy fed by the registry, and an haproxy.cfg renderer.

::

    from minga.gateway import Gateway, StaticSource
    from minga.spec import GatewaySpec, RouteSpec

    spec = GatewaySpec(port=0, routes=[RouteSpec(path="/api/orders", service="orders", strip_prefix=True)])
    async with Gateway(spec, StaticSource({"orders": ["127.0.0.1:8001"]})) as gateway:
        ...   # GET {gateway.url}/api/orders/hello -> GET 127.0.0.1:8001/hello

Paths are normalised before routing (``..``, ``//``, ``%2e``; an encoded slash is refused), and
a replica's own ``/metrics`` and ``/healthz`` are forwarded only by a route that names them in
``expose``. A route with ``auth:`` requires a JWT or an API key and sends the subject on in
``X-Minga-Subject``, which clients cannot set. Routing is by Host and path prefix; instances are picked among the healthy ones the source
reports (power of two choices on outstanding requests by default). Each instance has a
keep-alive pool and a :class:`CircuitBreaker`; retries go to another instance, only for
idempotent requests or connect failures, under a :class:`RetryBudget`; clients are rate
limited by a :class:`TokenBucket` each. The state machines are pure and take ``now``.

:class:`DiscoverySource` feeds the gateway from a discovery client's watched cache;
:func:`render_haproxy` / :func:`follow_registry` write an haproxy.cfg from the same
registry, and :class:`Haproxy` runs and gracefully reloads a real haproxy.
:func:`new_event_loop` gives the loop a gateway process of its own runs on (uvloop when installed).
"""

from minga.gateway._gateway import Gateway
from minga.gateway._haproxy import Haproxy, follow_registry, render_haproxy, write_atomically
from minga.gateway._loop import new_event_loop
from minga.gateway._resilience import BreakerPolicy, BreakerState, CircuitBreaker, RetryBudget, TokenBucket
from minga.gateway._sources import DiscoverySource, Endpoint, StaticSource, UpstreamSource, parse_endpoint

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "DiscoverySource",
    "Endpoint",
    "Gateway",
    "Haproxy",
    "RetryBudget",
    "StaticSource",
    "TokenBucket",
    "UpstreamSource",
    "follow_registry",
    "new_event_loop",
    "parse_endpoint",
    "render_haproxy",
    "write_atomically",
]
