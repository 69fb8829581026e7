"""The Ray engine: the examples give the serial engine's output byte for byte; faults are survived."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from minga.cli import app
from minga.compute.engines import get_engine

# an optional engine (minga[ray]): `make test` installs it, a bare install skips this module
ray = pytest.importorskip("ray")

from minga.compute.engines.ray_engine import RayEngine  # noqa: E402  (imports ray)

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    # one local Ray for the module: starting it takes seconds; engines find it initialised
    context = ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


def test_examples_match_the_serial_engine(
    example_name: str, ray_address: str, examples: dict, run_on: Callable, tmp_path: Path
) -> None:
    example = examples[example_name]
    assert run_on("ray")(example, tmp_path / "out") == example.expected


def test_engine_is_registered_and_leaves_a_running_ray_alone(ray_address: str) -> None:
    engine = get_engine("ray")
    assert isinstance(engine, RayEngine)
    assert engine.workers == 2
    engine.close()
    assert ray.is_initialized()


def test_a_killed_worker_still_gives_exact_output(
    ray_address: str, survives_a_killed_worker: Callable
) -> None:
    result = survives_a_killed_worker("ray")
    assert result.record["attempts"]["failed"] == 1


def test_failed_attempts_are_retried_then_give_up(ray_address: str, retries_then_gives_up: Callable) -> None:
    retries_then_gives_up("ray")


def test_minga_run_runs_a_job_on_ray(ray_address: str, examples: dict, tmp_path: Path) -> None:
    # `minga run --engine ray` in this process: the engine finds the module's Ray and uses it
    example = examples["wordcount"]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, example.cli_args(out, "ray"))
    assert result.exit_code == 0, result.output
    assert example.written(out) == example.expected
