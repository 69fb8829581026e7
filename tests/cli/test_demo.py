"""``minga demo``: the walk through the bus runs to the end and says what happened."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from minga.cli.demo import STEPS, DemoContext, run_demo
from minga.cli.shopdemo import find_shop, what_next


async def test_the_demo_walks_through_every_step() -> None:
    out = io.StringIO()
    await run_demo(once=True, console=Console(file=out, width=200))
    text = out.getvalue()
    assert "publish / subscribe" in text and "a queue group" in text and "request / reply" in text
    assert "bob (orders.>)" in text and "orders.eu.paid" in text
    assert "every job handled exactly once: True" in text
    assert "no responders" in text
    assert "MapReduce: word count" in text and "top words" in text
    assert "broker stopped" in text


async def test_the_walk_is_extensible() -> None:
    seen: list[str] = []

    async def extra(ctx: DemoContext) -> None:
        nc = await ctx.connect("extra")
        seen.append(ctx.url)
        assert nc.is_connected

    out = io.StringIO()
    await run_demo([*STEPS[:1], extra], once=True, console=Console(file=out, width=200))
    assert len(seen) == 1 and seen[0].startswith("nats://127.0.0.1:")


def test_what_next_while_the_shop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(find_shop().parents[2])
    lines = what_next(find_shop(), "http://127.0.0.1:4100/dashboard/", running=True)
    assert lines[0] == "what next:"
    text = "\n".join(lines)
    assert "http://127.0.0.1:4100/dashboard/" in text
    assert "minga token --read-only -f examples/shop/minga.yaml" in text
    assert "minga traces -f examples/shop/minga.yaml" in text and "Ctrl-C here stops the shop" in text
    assert "minga up" not in text  # it runs already


def test_what_next_once_the_shop_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # outside the checkout: the spec is named by its full path
    lines = what_next(find_shop(), None, running=False)
    text = "\n".join(lines)
    assert f"minga up --detach -f {find_shop()}" in text
    assert "the dashboard's URL" in text and "/dashboard/" not in text
    assert lines[-1].startswith(f"  minga down -f {find_shop()}")
