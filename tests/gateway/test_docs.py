"""docs/gateway.md starts from a runnable example: run it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"


def test_the_docs_example_runs(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    code = re.search(r"```python\n(# gateway_demo\.py.*?)```", text, re.S)
    assert code is not None
    script = tmp_path / "gateway_demo.py"
    script.write_text(code.group(1), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(
        line.startswith("200 {") and "'path': '/hello'" in line for line in lines
    )
