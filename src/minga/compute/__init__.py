"""Distributed and parallel computing: MapReduce, parallel loops, MPI and GPU.

``minga.compute.parallel`` holds the parallel loops (:func:`kernel`, :data:`prange`).
"""

from __future__ import annotations

from minga.compute.parallel import Kernel, kernel, prange

__all__ = [
    "Kernel",
    "kernel",
    "prange",
]
