"""minga: build, run, observe and ship distributed systems in Python.

The public API is re-exported here; nothing else lives in this module.
"""

from minga._version import __version__
from minga.errors import MingaError
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
