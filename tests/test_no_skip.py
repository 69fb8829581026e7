"""Under `make test` (every extra installed) no test may be skipped; elsewhere an absent engine is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SKIPPING = '''
import pytest

pytest.importorskip("minga_no_such_engine")


def test_never_collected() -> None:
    pass
'''

SKIPPING_AT_RUN = '''
import pytest


def test_skips() -> None:
    pytest.skip("not here")


def test_passes() -> None:
    pass
'''


def _pytest(tmp_path: Path, all_extras: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_collect_skip.py").write_text(SKIPPING)
    (tmp_path / "test_run_skip.py").write_text(SKIPPING_AT_RUN)
    env = {k: v for k, v in os.environ.items() if k != "MINGA_TEST_ALL_EXTRAS"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if all_extras:
        env["MINGA_TEST_ALL_EXTRAS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no_skip", "-p", "no:cacheprovider", "-q",
         "--continue-on-collection-errors", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_skips_are_failures_when_every_extra_is_installed(tmp_path: Path) -> None:
    out = _pytest(tmp_path, all_extras=True)
    assert out.returncode == 1, out.stdout
    assert "1 failed, 1 passed, 1 error" in out.stdout, out.stdout
    assert "minga_no_such_engine" in out.stdout and "not here" in out.stdout


def test_skips_are_skips_on_a_bare_install(tmp_path: Path) -> None:
    out = _pytest(tmp_path, all_extras=False)
    assert out.returncode == 0, out.stdout
    assert "1 passed, 2 skipped" in out.stdout, out.stdout
