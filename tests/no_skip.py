"""A pytest plugin: with ``MINGA_TEST_ALL_EXTRAS=1`` in the environment, a skipped test fails.

``make test`` installs every optional engine and sets the variable, so a test skipped there hides
something broken (an engine that did not install, an import that fails). Without the variable,
tests of an engine that is not installed are skipped (``pytest.importorskip``), as on a bare
``pip install minga``. tests/conftest.py loads these hooks.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

ALL_EXTRAS = "MINGA_TEST_ALL_EXTRAS"


def _fail_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and os.environ.get(ALL_EXTRAS) == "1" and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"skipped ({reason}), but {ALL_EXTRAS}=1 says every extra is installed: nothing may be skipped"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    _fail_skip(outcome.get_result())
