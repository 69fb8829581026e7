"""`minga logs -f`: following the per-instance files as replicas write them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from minga.deploy import LogLine, follow_logs


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


async def test_follow_prints_old_lines_then_new_ones_and_new_instances(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "web-1.log", "2026-01-01T10:00:00.000Z first\n")
    seen: list[LogLine] = []
    first = asyncio.Event()
    got = asyncio.Event()

    async def follow() -> None:
        async for line in follow_logs(tmp_path, "web", poll=0.01):
            seen.append(line)
            first.set()
            if len(seen) == 3:
                got.set()

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(follow())
        async with asyncio.timeout(10):
            await first.wait()  # the file as it was is printed; what follows is new
        append(logs / "web-1.log", "2026-01-01T10:00:01.000Z second")  # no newline yet: not a line
        await asyncio.sleep(0.05)  # let the follower look at the half-written line
        append(logs / "db-1.log", "2026-01-01T10:00:01.500Z another service\n")
        append(logs / "web-2.log", "2026-01-01T10:00:02.000Z a new replica\n")
        append(logs / "web-1.log", " half\n")
        async with asyncio.timeout(10):
            await got.wait()
        task.cancel()
    assert [(line.instance, line.text) for line in seen] == [
        ("web-1", "first"),
        ("web-1", "second half"),
        ("web-2", "a new replica"),
    ]
