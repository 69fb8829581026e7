"""minga: build, run, observe and ship distributed systems in Python.

The public API is re-exported here; nothing else lives in this module. The service
SDK is imported on first use, so that ``minga`` commands which do not need it start
quickly.
"""

from __future__ import annotations

import typing

from minga import _version
from minga.errors import MingaError

if typing.TYPE_CHECKING:
    from minga._version import __version__
    from minga.service import Service, consume, event, every, http, rpc

__all__ = [
    "MingaError",
    "Service",
    "__version__",
    "consume",
    "event",
    "every",
    "http",
    "rpc",
]

_FROM_SERVICE = frozenset({"Service", "consume", "event", "every", "http", "rpc"})


def __getattr__(name: str) -> typing.Any:
    if name == "__version__":
        return _version.version()
    if name in _FROM_SERVICE:
        import minga.service

        return getattr(minga.service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
