"""The Dask engine: the examples give the serial engine's output byte for byte; faults are survived."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minga.compute.engines import get_engine

# an optional engine (minga[dask]): `make test` installs it, a bare install skips this module
distributed = pytest.importorskip("distributed")

from minga.compute.engines.dask_engine import DaskEngine  # noqa: E402  (imports distributed)

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    # one cluster for the module: starting one takes seconds
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        yield cluster.scheduler_address


def test_examples_match_the_serial_engine(
    example_name: str, scheduler: str, examples: dict, run_on: Callable, tmp_path: Path
) -> None:
    example = examples[example_name]
    assert run_on("dask", address=scheduler)(example, tmp_path / "out") == example.expected


def test_engine_is_registered_and_uses_the_address(scheduler: str) -> None:
    engine = get_engine("dask", address=scheduler)
    try:
        assert isinstance(engine, DaskEngine)
        assert engine.client.scheduler.address == scheduler
        assert engine.workers == 2
    finally:
        engine.close()


def test_a_killed_worker_still_gives_exact_output(scheduler: str, survives_a_killed_worker: Callable) -> None:
    survives_a_killed_worker("dask", address=scheduler)


def test_failed_attempts_are_retried_then_give_up(scheduler: str, retries_then_gives_up: Callable) -> None:
    retries_then_gives_up("dask", address=scheduler)


def test_minga_run_runs_a_job_on_dask(scheduler: str, examples: dict, tmp_path: Path) -> None:
    example = examples["wordcount"]
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "minga", *example.cli_args(out, "dask"), "--address", scheduler],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert example.written(out) == example.expected


@pytest.mark.slow
def test_without_an_address_the_engine_starts_and_stops_its_own_cluster(
    examples: dict, run_on: Callable, tmp_path: Path
) -> None:
    example = examples["wordcount"]
    assert run_on("dask", workers=2)(example, tmp_path / "out") == example.expected
