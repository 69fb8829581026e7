"""docs/broker.md's example runs as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "broker" / "hello.py"


def test_the_example_runs() -> None:
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("listening on nats://127.0.0.1:")
    assert "reply: hello, world" in lines
    assert "broker saw audit.login: b'alice'" in lines
    assert "headers seen by the broker: b'NATS/1.0\\r\\nHost: web-1\\r\\n\\r\\n'" in lines
