"""The Ray engine: the examples give the serial engine's output byte for byte; faults are survived."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray
from typer.testing import CliRunner

from minga.cli import app
from minga.compute import JobRef, get_engine, run
from minga.compute.engines.ray_engine import RayEngine
from minga.errors import JobFailed

HERE = Path(__file__).parent

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


def test_a_killed_worker_still_gives_exact_output(ray_address: str, tmp_path: Path) -> None:
    text = "".join(f"a{i % 13} b{i % 7} c\n" for i in range(400))
    (tmp_path / "in.txt").write_text(text)
    result = run(
        JobRef.from_file(HERE / "faulty_jobs.py", "KillWorkerOnce"),
        [tmp_path / "in.txt"],
        tmp_path / "out",
        engine="ray",
        split_size=1024,
        config={"marker": str(tmp_path / "killed")},
    )
    assert (tmp_path / "killed").exists(), "the worker was never killed: the test proves nothing"
    assert dict(result.read()) == Counter(text.split())
    assert result.record["attempts"]["failed"] == 1


def test_failed_attempts_are_retried_then_give_up(ray_address: str, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x y x\n" * 100)
    result = run(
        JobRef.from_file(HERE / "faulty_jobs.py", "FailFirstAttempt"), [tmp_path / "in.txt"], tmp_path / "out", engine="ray"
    )
    assert dict(result.read()) == {"x": 200, "y": 100}
    assert result.record["attempts"]["failed"] >= 1
    with pytest.raises(JobFailed, match="broken on purpose"):
        run(JobRef.from_file(HERE / "faulty_jobs.py", "AlwaysFails"), [tmp_path / "in.txt"], tmp_path / "o2", engine="ray")


def test_minga_run_runs_a_job_on_ray(ray_address: str, examples: dict, tmp_path: Path) -> None:
    # `minga run --engine ray` in this process: the engine finds the module's Ray and uses it
    example = examples["wordcount"]
    out = tmp_path / "out"
    args = ["run", str(example.job_file), *map(str, example.inputs), "-o", str(out), "--engine", "ray", "-q"]
    result = CliRunner().invoke(app, [*args, "--reducers", str(example.reducers)])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in sorted(out.glob("part-*"))} == example.expected
