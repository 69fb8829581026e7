"""Distributed and parallel computing: MapReduce, parallel loops, MPI and GPU.

- :mod:`minga.compute.parallel`: loops over index ranges in parallel (:func:`kernel`, :data:`prange`),
  compiled with Numba when it is installed;
- :mod:`minga.compute.mpi`: run mpi4py programs with the system's MPI (:func:`run_mpi`);
- :mod:`minga.compute.gpu`: vectorised word count and group-by-sum on CuPy, NumPy without a GPU
  (imported on its own, ``from minga.compute.gpu import word_count``: it needs NumPy).
"""

from __future__ import annotations

from minga.compute.mpi import MpiCommand, MpiLauncher, find_mpi_launcher, mpi_command, run_mpi
from minga.compute.parallel import Kernel, kernel, prange

__all__ = [
    "Kernel",
    "MpiCommand",
    "MpiLauncher",
    "find_mpi_launcher",
    "kernel",
    "mpi_command",
    "prange",
    "run_mpi",
]
