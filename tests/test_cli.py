from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import minga
from minga.cli import app


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == minga.__version__


def test_console_entry_runs_as_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "minga", "version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == minga.__version__
