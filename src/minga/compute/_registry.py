"""Engines by name, for ``--engine``: built-in ones here, others registered by their modules.

A factory is a callable or a ``"module:attribute"`` string imported on first use, so naming
an engine never imports a heavy client (dask, ray, pyspark) that is not used. Factories take
keyword options; ``get_engine`` passes only those that are not None (``workers``, ``address``...).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from minga.compute._chaos import ChaosEngine, SerialEngine
from minga.compute._driver import TaskEngine
from minga.compute._local import LocalEngine
from minga.errors import UsageError

__all__ = ["engine_names", "get_engine", "register_engine"]

EngineFactory = Callable[..., TaskEngine]

_ENGINES: dict[str, EngineFactory | str] = {
    "local": LocalEngine,
    "serial": SerialEngine,
    "chaos": ChaosEngine,
    # the engines beyond one machine, imported only when named
    "dask": "minga.compute.engines.dask_engine:DaskEngine",
    "ray": "minga.compute.engines.ray_engine:RayEngine",
    "spark": "minga.compute.engines.spark_engine:SparkEngine",
}


def register_engine(name: str, factory: EngineFactory | str) -> None:
    """Make ``--engine name`` build its engine with ``factory`` (or the ``"module:attr"`` it names)."""
    _ENGINES[name] = factory


def engine_names() -> list[str]:
    return sorted(_ENGINES)


def get_engine(name: str, **options: Any) -> TaskEngine:
    """Build the engine registered as ``name`` with the options that are not None.

    Raises :class:`~minga.errors.UsageError` for an unknown name or an engine whose client
    is not installed.
    """
    factory = _ENGINES.get(name)
    if factory is None:
        raise UsageError(f"unknown engine {name!r}: use one of {', '.join(engine_names())}")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise UsageError(
                f"engine {name!r} needs a package that is not installed ({exc.name}): pip install 'minga[{name}]'"
            ) from None
    assert callable(factory)
    return factory(**{k: v for k, v in options.items() if v is not None})
