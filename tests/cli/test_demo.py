"""``minga demo``: the walk through the bus runs to the end and says what happened."""

from __future__ import annotations

import io

from rich.console import Console

from minga.cli.demo import STEPS, DemoContext, run_demo


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
