"""A job's traceback as its author wants to read it: their own frames, none of minga's machinery."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

__all__ = ["user_traceback"]

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line \d+')
_MINGA = str(Path(__file__).resolve().parent.parent)


def _foreign(file: str) -> bool:
    """A frame of minga itself or of Python's import machinery, not of the job's author."""
    return file.startswith("<frozen") or str(Path(file).resolve()).startswith(_MINGA)


def user_traceback(error: str | BaseException) -> str:
    """``error`` (a formatted traceback, or an exception) without the frames of minga and of the
    import machinery: the "Traceback" line, the author's frames with their source lines, the error.

    Example: a task that divided by zero in the job's ``helper`` reads::

        Traceback (most recent call last):
          File "/home/ada/wc.py", line 4, in helper
            return 1 / 0
        ZeroDivisionError: division by zero
    """
    if isinstance(error, BaseException):
        error = "".join(traceback.format_exception(error))
    kept: list[str] = []
    skipping = False
    for line in error.rstrip().splitlines():
        frame = _FRAME.match(line)
        if frame is not None:
            skipping = _foreign(frame["file"])
        elif not line.startswith("    "):
            skipping = False  # the error itself, or "During handling of the above exception..."
        if not skipping:
            kept.append(line)
    return "\n".join(kept)
