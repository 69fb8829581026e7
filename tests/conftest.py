"""Fixtures and hooks shared by the whole suite."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/support.py is imported as `support` by every test module
sys.path.insert(0, str(Path(__file__).parent))

from no_skip import pytest_make_collect_report, pytest_runtest_makereport

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]
