"""Stopping the background tasks of a task group entered by hand (in ``__aenter__``)."""

from __future__ import annotations

import asyncio


async def stop_group(
    group: asyncio.TaskGroup | None, keyed: dict[str, asyncio.Task[None]], *more: asyncio.Task[None] | None
) -> None:
    """Cancel the tasks of ``keyed`` (which is emptied) and ``more``, then wait until ``group`` has
    finished. ``None`` tasks (never started) are skipped; a ``None`` group (never entered) is not awaited.
    """
    tasks = [*keyed.values(), *more]
    keyed.clear()
    if group is None:
        return
    for task in tasks:
        if task is not None:
            task.cancel()
    await group.__aexit__(None, None, None)
