"""The Spark engine: the examples give the serial engine's output byte for byte; faults are survived."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from minga.cli import app
from minga.compute.engines import get_engine

# an optional engine (minga[spark]): `make test` installs it, a bare install skips this module
pytest.importorskip("pyspark")

from minga.compute.engines.spark_engine import SparkEngine  # after the skip: it imports pyspark

pytestmark = pytest.mark.engine




@pytest.fixture(scope="module")
def spark() -> Iterator[SparkEngine]:
    # one local[2] session for the module: a JVM takes seconds to start; engines find it active
    engine = SparkEngine(workers=2)
    try:
        yield engine
    finally:
        engine.close()


def test_examples_match_the_serial_engine(
    example_name: str, spark: SparkEngine, examples: dict, run_on: Callable, tmp_path: Path
) -> None:
    example = examples[example_name]
    assert run_on("spark")(example, tmp_path / "out") == example.expected


def test_engine_is_registered_and_leaves_an_active_session_alone(spark: SparkEngine) -> None:
    engine = get_engine("spark")
    assert isinstance(engine, SparkEngine)
    assert engine.session is spark.session
    assert engine.workers == 2
    engine.close()
    assert not spark.session.sparkContext._jsc.sc().isStopped()


def test_a_killed_python_worker_still_gives_exact_output(
    spark: SparkEngine, survives_a_killed_worker: Callable
) -> None:
    survives_a_killed_worker("spark")


def test_failed_attempts_are_retried_then_give_up(
    spark: SparkEngine, retries_then_gives_up: Callable
) -> None:
    retries_then_gives_up("spark")


def test_minga_run_runs_a_job_on_spark(spark: SparkEngine, examples: dict, tmp_path: Path) -> None:
    # `minga run --engine spark` in this process: the engine finds the module's session and uses it
    example = examples["wordcount"]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, example.cli_args(out, "spark"))
    assert result.exit_code == 0, result.output
    assert example.written(out) == example.expected
