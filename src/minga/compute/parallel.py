"""Parallel loops over index ranges: Numba ``prange`` when Numba is installed, plain Python otherwise.

Write the loop once, with :data:`prange` where :func:`range` would go, and mark the function
with :func:`kernel`::

    import numpy as np
    from minga.compute.parallel import kernel, prange

    @kernel
    def sum_of_squares(xs):
        total = 0
        for i in prange(xs.shape[0]):
            total += xs[i] * xs[i]
        return total

    sum_of_squares(np.arange(1_000_000))

With Numba installed (``pip install 'minga[parallel]'``) the function is compiled with
``numba.njit(parallel=True)`` on its first call and the iterations of the ``prange`` loop are
split across Numba's threads; reductions written as ``total += ...`` are combined per thread.
Without Numba, or with ``backend="python"``, or with ``MINGA_PARALLEL_BACKEND=python`` in the
environment, the same function runs as plain Python and :data:`prange` is :func:`range`.

Both paths give the same results for integer arithmetic and for element-wise loops. A
floating-point *reduction* is summed in a different order on several threads, so it may differ
in the last bits from the sequential sum; that is the one difference.

The iterations of a ``prange`` loop must be independent: each writes its own elements, or
contributes to a reduction variable with ``+=``, ``*=``, ``min`` or ``max``.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from minga.errors import ComputeError, UsageError


def _import_numba() -> tuple[Any, type[Exception] | None]:
    """Numba and its error root, or ``(None, None)`` without it (an optional extra: minga[parallel]).

    Imported by name, so that type checking reads the same with Numba installed or not.
    """
    try:
        numba = importlib.import_module("numba")
        errors = importlib.import_module("numba.core.errors")
    except ImportError:  # exercised by the test that hides Numba in a subprocess
        return None, None
    return numba, errors.NumbaError


_numba, _NumbaError = _import_numba()

__all__ = [
    "BACKEND_ENV",
    "Backend",
    "Kernel",
    "kernel",
    "numba_available",
    "prange",
    "resolve_backend",
]

P = ParamSpec("P")
R = TypeVar("R")

Backend = Literal["auto", "numba", "python"]
"""Which path runs a kernel: ``"auto"`` picks Numba when it is installed, else plain Python."""

BACKEND_ENV = "MINGA_PARALLEL_BACKEND"
"""Environment variable that overrides ``backend="auto"``: ``numba`` or ``python``."""

prange: Any = _numba.prange if _numba is not None else range
"""The parallel ``range``: Numba's ``prange`` inside a compiled kernel, :func:`range` everywhere else.

Numba's ``prange`` called from plain Python returns a :func:`range`, so one name serves both paths.
"""


def numba_available() -> bool:
    """Whether Numba can be imported in this interpreter."""
    return _numba is not None


def resolve_backend(backend: Backend = "auto") -> Literal["numba", "python"]:
    """The concrete backend for ``backend``.

    ``"auto"`` reads :data:`BACKEND_ENV` first, then picks ``"numba"`` when Numba is installed.

    Raises:
        UsageError: ``"numba"`` was asked for (or set in the environment) and Numba is not installed,
            or the environment variable holds another value.
    """
    if backend == "auto":
        forced = os.environ.get(BACKEND_ENV, "").strip().lower()
        if forced in ("numba", "python"):
            backend = forced  # type: ignore[assignment]  # narrowed by the membership test above
        elif forced:
            raise UsageError(f"{BACKEND_ENV}={forced!r} is not a backend: use 'numba' or 'python'")
        else:
            return "numba" if _numba is not None else "python"
    if backend == "numba" and _numba is None:
        raise UsageError("the numba backend needs Numba: pip install 'minga[parallel]'")
    if backend not in ("numba", "python"):
        raise UsageError(f"{backend!r} is not a backend: use 'auto', 'numba' or 'python'")
    return backend


class Kernel(Generic[P, R]):
    """A function whose ``prange`` loops run in parallel; call it like the function it wraps.

    ``py_func`` is the plain function, unchanged; ``backend`` is the path that runs it. With the
    Numba backend the function is compiled on the first call for each new combination of argument
    types, so the first call takes compile time (about a second).
    """

    def __init__(self, fn: Callable[P, R], *, backend: Backend = "auto", fastmath: bool = False) -> None:
        self.py_func = fn
        self.backend = resolve_backend(backend)
        self.fastmath = fastmath
        self.name = getattr(fn, "__qualname__", repr(fn))
        self._compiled: Callable[P, R] | None = None
        functools.update_wrapper(self, fn)

    def _dispatcher(self) -> Callable[P, R]:
        if self._compiled is None:
            assert _numba is not None  # resolve_backend guarantees it for the numba backend
            compiled: Callable[P, R] = _numba.njit(parallel=True, fastmath=self.fastmath)(self.py_func)
            self._compiled = compiled
        return self._compiled

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the kernel.

        Raises:
            ComputeError: Numba could not compile the function for these argument types; the message
                names the kernel and Numba's reason. Run it with ``backend="python"`` to debug it.
        """
        if self.backend == "python":
            return self.py_func(*args, **kwargs)
        dispatcher = self._dispatcher()
        assert _NumbaError is not None
        try:
            return dispatcher(*args, **kwargs)
        except _NumbaError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ComputeError(
                f"kernel {self.name!r} could not be compiled by Numba: {first} "
                "(run it with backend='python' to debug it as plain Python)"
            ) from exc

    @property
    def signatures(self) -> list[Any]:
        """The argument types Numba has compiled this kernel for (empty on the Python backend)."""
        if self.backend == "python" or self._compiled is None:
            return []
        return list(getattr(self._compiled, "signatures", []))

    def __repr__(self) -> str:
        return f"Kernel({self.name}, backend={self.backend!r})"


@overload
def kernel(fn: Callable[P, R], /) -> Kernel[P, R]: ...


@overload
def kernel(
    *, backend: Backend = "auto", fastmath: bool = False
) -> Callable[[Callable[P, R]], Kernel[P, R]]: ...


def kernel(
    fn: Callable[P, R] | None = None, /, *, backend: Backend = "auto", fastmath: bool = False
) -> Kernel[P, R] | Callable[[Callable[P, R]], Kernel[P, R]]:
    """Mark ``fn`` as a kernel whose ``prange`` loops run in parallel; usable bare or with options.

    ``backend`` picks the path (see :func:`resolve_backend`); ``fastmath`` lets Numba reorder
    floating-point arithmetic (faster, results may differ in the last bits).

    Raises:
        UsageError: the backend asked for is not available.
    """
    if fn is not None:
        return Kernel(fn, backend=backend, fastmath=fastmath)

    def decorate(f: Callable[P, R]) -> Kernel[P, R]:
        return Kernel(f, backend=backend, fastmath=fastmath)

    return decorate
