"""``GET /api/logs``: the replicas' lines a bounded page at a time, read from the files' ends."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from minga.controlplane._api import api_routes
from minga.deploy import log_files, page_logs, read_logs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def write_logs(home: Path, lines_per_file: int = 400) -> None:
    """Three replicas' files, each in time order, their lines interleaved in time."""
    rng = random.Random(7)
    logs = home / "logs"
    logs.mkdir(parents=True)
    for inst in ("web-1", "web-2", "db-1"):
        stamps = sorted(rng.randrange(10**7) for _ in range(lines_per_file))
        with (logs / f"{inst}.log").open("w", encoding="utf-8") as f:
            for i, ms in enumerate(stamps):
                f.write(
                    f"{(T0 + timedelta(milliseconds=ms)).isoformat()} {inst} line {i} {'x' * rng.randrange(80)}\n"
                )
    with (logs / "web-1.log").open("a", encoding="utf-8") as f:
        f.write("2026-01-02T00:00:00+00:00 half-written")  # no newline yet: not a line


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    write_logs(tmp_path)

    async def nothing() -> bool:
        return True

    async def stop() -> None:
        return None

    app = web.Application()
    app.add_routes(api_routes(lambda: {"services": []}, nothing, stop, tmp_path))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def fetch(url: str, **params: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/logs", params=params) as resp:
        return resp.status, (await resp.json() if resp.status == 200 else await resp.text())


async def test_a_limit_of_zero_or_beyond_the_bound_is_refused(served: str) -> None:
    for bad in ("0", "-5", "10001"):
        status, text = await fetch(served, limit=bad)
        assert status == 400 and "limit must be between 1 and 10000" in text
    status, text = await fetch(served, before="not-a-cursor")
    assert status == 400 and "not a cursor" in text


async def test_pages_cover_every_line_once_in_time_order(served: str, tmp_path: Path) -> None:
    every = [(ln.at.isoformat(), ln.instance, ln.text) for ln in read_logs(log_files(tmp_path))]
    every = [x for x in every if "half-written" not in x[2]]
    status, doc = await fetch(served)
    assert status == 200 and doc["next"] is not None and len(doc["lines"]) == 1000  # the default limit
    got: list[tuple[str, str, str]] = []
    params: dict[str, str] = {"limit": "170"}
    pages = 0
    while True:
        status, doc = await fetch(served, **params)
        assert status == 200 and len(doc["lines"]) <= 170
        got = [(x["at"], x["instance"], x["text"]) for x in doc["lines"]] + got
        pages += 1
        if doc["next"] is None:
            break
        params["before"] = doc["next"]
    assert pages == -(-len(every) // 170)
    assert got == every
    # one service, since a time
    since = T0 + timedelta(seconds=5000)
    status, doc = await fetch(served, service="web", since=since.isoformat(), limit="10000")
    assert [x["text"] for x in doc["lines"]] == [
        x[2] for x in every if x[1] != "db-1" and x[0] >= since.isoformat()
    ]


def test_a_page_reads_from_the_end_not_every_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    line = " ".join(["word"] * 20)
    with (logs / "big-1.log").open("w", encoding="utf-8") as f:
        for i in range(100_000):  # about 12 MB
            f.write(f"{(T0 + timedelta(milliseconds=i)).isoformat()} {i} {line}\n")
    read = [0]
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        f = real_open(self, *args, **kwargs)
        if not isinstance(f, io.BufferedReader):
            return f
        real_read = f.read

        def counted(size: int = -1) -> bytes:
            data = real_read(size)
            read[0] += len(data)
            return data

        f.read = counted  # type: ignore[method-assign]
        return f

    monkeypatch.setattr(Path, "open", counting_open)
    page = page_logs(log_files(tmp_path), limit=50)
    assert [ln.text.split()[0] for ln in page.lines] == [str(i) for i in range(99_950, 100_000)]
    assert page.before is not None
    assert 0 < read[0] <= 2 * 65536  # a block or two from the end, not 12 MB
