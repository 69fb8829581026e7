"""The JetStream example in docs/jetstream.md runs and prints what the page says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "jetstream" / "orders.py"


def test_the_example_runs() -> None:
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert "order 0 sent twice: duplicate=True" in lines
    assert "orders left in the queue: 0" in lines
    assert "color = green (revision 2)" in lines
