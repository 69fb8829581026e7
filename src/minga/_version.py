"""The installed version of minga, read on first use.

``importlib.metadata`` takes tens of milliseconds to import, which a command that must start
quickly (``minga broker``) does not pay unless it asks for the version.
"""

from __future__ import annotations

import functools

__all__ = ["version"]


@functools.cache
def version() -> str:
    """minga's version as installed, or ``0.0.0+source`` when running from a source tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("minga")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+source"


def __getattr__(name: str) -> str:
    # ``from minga._version import __version__`` keeps working, and reads the version then
    if name == "__version__":
        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
