"""The service SDK: entrypoint decorators, the container lifecycle, dependency providers.

::

    from minga import Service, rpc

    class Inventory(Service):
        name = "inventory"

        @rpc
        async def reserve(self, sku: str, qty: int) -> dict[str, int]: ...

Run a replica with ``python -m minga.service pkg.module:Inventory``; test it with the
helpers in :mod:`minga.service.testing`.
"""

from minga.service._container import ContainerState, InstanceInfo, Registrar, ServiceContainer
from minga.service._dependencies import (
    Config,
    Dependency,
    KeyValue,
    Resource,
    Secret,
    ServiceContext,
    WorkerContext,
)
from minga.service._entrypoints import consume, event, every, http, parse_duration, rpc
from minga.service._exposition import Histogram, exposition_line, histogram_family, metric_family
from minga.service._logging import JsonFormatter, configure_logging
from minga.service._permissions import bus_permissions
from minga.service._runner import load_service, serve
from minga.service._service import BusLike, RpcProxy, Service

__all__ = [
    "BusLike",
    "Config",
    "ContainerState",
    "Dependency",
    "Histogram",
    "InstanceInfo",
    "JsonFormatter",
    "KeyValue",
    "Registrar",
    "Resource",
    "RpcProxy",
    "Secret",
    "Service",
    "ServiceContainer",
    "ServiceContext",
    "WorkerContext",
    "bus_permissions",
    "configure_logging",
    "consume",
    "event",
    "every",
    "exposition_line",
    "histogram_family",
    "http",
    "load_service",
    "metric_family",
    "parse_duration",
    "rpc",
    "serve",
]
