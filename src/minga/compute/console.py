"""What the command line shows of a job: the live progress display, the summary, the author's
traceback, and the ``make demo`` word count."""

from __future__ import annotations

from minga.compute._progress import ProgressDisplay, print_summary
from minga.compute._runner import demo
from minga.compute._tracebacks import user_traceback

__all__ = ["ProgressDisplay", "demo", "print_summary", "user_traceback"]
