"""Whether ``--device gpu`` can run on a GPU here, asked without importing NumPy or CuPy up front."""

from __future__ import annotations

import functools
import importlib
from typing import Any

__all__ = ["cupy_or_reason", "gpu_unavailable"]


@functools.cache
def cupy_or_reason() -> tuple[Any, str]:
    """(the cupy module, "") when a GPU is usable, else (None, why not); asked once per process."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return None, "CuPy is not installed: pip install 'minga[gpu]'"
    except Exception as exc:  # a broken CUDA install raises all sorts at import
        return None, f"CuPy does not load: {exc}"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # no driver: cupy raises its CUDARuntimeError
        return None, f"no usable GPU: {exc}"
    if count < 1:
        return None, "no GPU found"
    return cupy, ""


def gpu_unavailable() -> str | None:
    """Why ``--device gpu`` falls back to the CPU here, or None when a GPU is usable."""
    return cupy_or_reason()[1] or None
