from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import minga
from minga.cli import app
from minga.cli._app import COMMANDS, GROUPS


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


def test_dash_dash_version_as_other_tools_have_it() -> None:
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(app, [flag])
        assert result.exit_code == 0 and result.stdout.strip() == minga.__version__


def _help_of_every_command() -> list[tuple[list[str], str]]:
    paths: list[list[str]] = [[], ["version"], *([name] for name in COMMANDS)]
    for name, (_, tree) in GROUPS.items():
        stack = [([name], tree)]
        while stack:
            prefix, sub = stack.pop()
            paths.append(prefix)
            for child, (_, second) in sub.items():
                if isinstance(second, dict):
                    stack.append(([*prefix, child], second))
                else:
                    paths.append([*prefix, child])
    out = []
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        out.append((path, result.stdout))
    return out


def test_help_shows_no_value_type_after_a_flag() -> None:
    helps = _help_of_every_command()
    assert len(helps) > len(COMMANDS)
    for path, text in helps:
        assert "<bool>" not in text, f"minga {' '.join(path)} --help: {text}"
    up = dict((tuple(p), t) for p, t in helps)[("up",)]
    assert "<float>" in up  # options that take a value still say which
