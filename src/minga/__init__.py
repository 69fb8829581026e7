"""minga: build, run, observe and ship distributed systems in Python.

The public API is re-exported here; nothing else lives in this module.
"""

from minga._version import __version__
from minga.errors import MingaError

__all__ = [
    "MingaError",
    "__version__",
]
