"""The API gateway: an HTTP/1.1 reverse proxy fed by the registry, and an haproxy.cfg renderer.

::

    from minga.gateway import Gateway, StaticSource
    from minga.spec import GatewaySpec, RouteSpec

    spec = GatewaySpec(port=0, routes=[RouteSpec(path="/api/orders", service="orders", strip_prefix=True)])
    async with Gateway(spec, StaticSource({"orders": ["127.0.0.1:8001"]})) as gateway:
        ...   # GET {gateway.url}/api/orders/healthz -> GET 127.0.0.1:8001/healthz

Routing is by Host and path prefix; instances are picked among the healthy ones the source
reports (power of two choices on outstanding requests by default). Each instance has a
keep-alive pool and a :class:`CircuitBreaker`; retries go to another instance, only for
idempotent requests or connect failures, under a :class:`RetryBudget`; clients are rate
limited by a :class:`TokenBucket` each. The state machines are pure and take ``now``.
"""

from minga.gateway._gateway import Gateway
from minga.gateway._resilience import BreakerPolicy, BreakerState, CircuitBreaker, RetryBudget, TokenBucket
from minga.gateway._sources import Endpoint, StaticSource, UpstreamSource, parse_endpoint

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "Endpoint",
    "Gateway",
    "RetryBudget",
    "StaticSource",
    "TokenBucket",
    "UpstreamSource",
    "parse_endpoint",
]
