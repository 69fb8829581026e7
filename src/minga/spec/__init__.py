"""The system spec, minga.yaml: models, a loader that points at mistakes, and its JSON Schema.

Loading::

    from minga.spec import load_spec

    spec = load_spec("minga.yaml")          # raises minga.errors.SpecError
    for name in spec.start_order():         # dependencies first
        svc = spec.services[name]
        svc.module, svc.command, svc.replicas, svc.env, svc.ports   # "pkg.mod:Class" | argv | ...
        svc.health                          # HealthCheckSpec | None: http path or tcp, interval, timeout (s)
        svc.restart                         # "always" | "on-failure" | "never"
        svc.depends_on                      # {"db": DependsOnSpec(condition="healthy")}
        svc.resources.cpu, svc.resources.memory      # cores, bytes (None: no limit)
    spec.broker.embedded, spec.broker.url, spec.broker.port
    spec.discovery.store, spec.discovery.url, spec.discovery.ttl   # "embedded" | "etcd"
    spec.control.host, spec.control.port    # the control plane's HTTP API (port 0: any free one)
    spec.location("services", "orders")     # "minga.yaml:3:3", to point runtime errors at the spec

A :class:`~minga.errors.SpecError` lists every mistake, one line each, as
``file:line:column: where: found X, expected Y``; ``err.problems`` holds them one by one.

Durations are seconds (floats) once loaded, written ``500ms``, ``2s``, ``1m30s`` or as numbers;
memory is bytes (``256Mi``, ``1G``); CPU is cores (``0.5``, ``500m``). ``ports`` maps port names
to numbers, 0 meaning "a free port per replica". ``gateway:`` is a :class:`GatewaySpec`
(routes, limits, breaker); ``alerts:`` maps names to :class:`AlertSpec` rules (a metrics query, ``above``/``below``, ``for``);
``monitor:`` is a :class:`MonitorSpec` (scrape interval, retention, exporters). :func:`home_dir` is where state
lives: ``$MINGA_HOME``, else ``.minga/`` beside the spec.
"""

from minga.spec._loader import home_dir, load_spec, parse_spec
from minga.spec._models import (
    AlertSpec,
    BreakerSpec,
    BrokerSpec,
    ControlSpec,
    CpuAmount,
    DependsOnSpec,
    DiscoverySpec,
    Duration,
    GatewayLimitsSpec,
    GatewaySpec,
    GatewayTimeoutsSpec,
    HealthCheckSpec,
    JwtSpec,
    MemorySize,
    MonitorSpec,
    OpenSearchSpec,
    OpenSection,
    OtlpSpec,
    RateLimitSpec,
    ResourcesSpec,
    RestartPolicy,
    RouteAuthSpec,
    RouteSpec,
    ServiceSpec,
    Spec,
)
from minga.spec._schema import json_schema
from minga.spec._units import parse_cpu, parse_duration, parse_memory

__all__ = [
    "AlertSpec",
    "BreakerSpec",
    "BrokerSpec",
    "ControlSpec",
    "CpuAmount",
    "DependsOnSpec",
    "DiscoverySpec",
    "Duration",
    "GatewayLimitsSpec",
    "GatewaySpec",
    "GatewayTimeoutsSpec",
    "HealthCheckSpec",
    "JwtSpec",
    "MemorySize",
    "MonitorSpec",
    "OpenSearchSpec",
    "OpenSection",
    "OtlpSpec",
    "RateLimitSpec",
    "ResourcesSpec",
    "RestartPolicy",
    "RouteAuthSpec",
    "RouteSpec",
    "ServiceSpec",
    "Spec",
    "home_dir",
    "json_schema",
    "load_spec",
    "parse_cpu",
    "parse_duration",
    "parse_memory",
    "parse_spec",
]
