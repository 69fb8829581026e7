"""`make demo` installs minga alone, `make test` every extra, into one venv: `make -n` in a copy of
the Makefile shows which pip install each runs, before and after the other."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_INSTALL = "pip install -q -e .\n"
TEST_INSTALL = "pip install -q -e '.[test]'"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    old = 1_700_000_000  # stamps made later are newer than the project file
    os.utime(tmp_path / "pyproject.toml", (old, old))
    return tmp_path


def dry_run(checkout: Path, target: str) -> str:
    out = subprocess.run(["make", "-n", target], cwd=checkout, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def stamp(checkout: Path, name: str) -> None:
    (checkout / ".venv").mkdir(exist_ok=True)
    (checkout / ".venv" / name).touch()


def test_the_demo_installs_minga_without_the_test_extra(checkout: Path) -> None:
    plan = dry_run(checkout, "demo")
    assert DEMO_INSTALL in plan and TEST_INSTALL not in plan
    assert "-m minga demo" in plan
    assert TEST_INSTALL in dry_run(checkout, "test")


def test_test_after_demo_upgrades_the_same_venv_to_the_test_extra(checkout: Path) -> None:
    stamp(checkout, ".installed-demo")  # what `make demo` leaves
    assert "pip install" not in dry_run(checkout, "demo")
    plan = dry_run(checkout, "test")
    assert TEST_INSTALL in plan and DEMO_INSTALL not in plan
    assert "-m pytest" in plan


def test_after_test_neither_installs_again(checkout: Path) -> None:
    stamp(checkout, ".installed-demo")
    stamp(checkout, ".installed-test")
    assert "pip install" not in dry_run(checkout, "demo")
    assert "pip install" not in dry_run(checkout, "test")


def test_a_changed_project_file_reinstalls(checkout: Path) -> None:
    stamp(checkout, ".installed-demo")
    stamp(checkout, ".installed-test")
    (checkout / "pyproject.toml").touch()
    os.utime(checkout / ".venv" / ".installed-demo", (1_600_000_000, 1_600_000_000))
    os.utime(checkout / ".venv" / ".installed-test", (1_600_000_000, 1_600_000_000))
    assert DEMO_INSTALL in dry_run(checkout, "demo")
    assert TEST_INSTALL in dry_run(checkout, "test")
