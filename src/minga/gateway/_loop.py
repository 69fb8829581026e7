"""The event loop the gateway runs on when it has a process of its own.

uvloop's I/O path (libuv, Cython transports) costs a fraction of asyncio's selector loop per
read and write, and a proxied request is little else; without uvloop (not built for every
platform) the gateway runs on asyncio's own loop, unchanged.
"""

from __future__ import annotations

import asyncio

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency wherever it has wheels
    uvloop = None  # type: ignore[assignment]  # the fallback below checks for it

__all__ = ["new_event_loop"]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed, else asyncio's default."""
    if uvloop is not None:
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
