from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_runnable_example_runs_as_documented() -> None:
    page = (Path(__file__).parents[2] / "docs" / "discovery.md").read_text()
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "['127.0.0.1:8100', '127.0.0.1:8101', '127.0.0.1:8100', '127.0.0.1:8101']",
        "['inventory-1', 'inventory-1']",
    ]
