"""The shop part of ``minga demo``: the example shop runs, takes orders, survives a killed replica, stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from minga.cli.shopdemo import find_shop, run_shop, what_next
from minga.controlplane import read_state

pytestmark = [pytest.mark.slow]


async def test_the_shop_demo_runs_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MINGA_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    await run_shop(find_shop(), once=True, orders=12)
    out = capsys.readouterr().out
    assert "12 orders over RPC" in out and "paid" in out
    assert "-> 200: order" in out  # the HTTP entrypoint of orders
    assert "notifications sent from the durable queue: 13" in out
    assert "out of every picker after" in out and "20/20 orders placed meanwhile" in out
    assert "shop stopped: every replica is gone" in out
    assert "dashboard: http://127.0.0.1:" in out  # while it ran
    ending = out[out.index("shop stopped") :].splitlines()[1:]
    assert ending == what_next(find_shop(), None, running=False)  # --once ends with what to try next
    assert read_state(tmp_path, required=False) is None
