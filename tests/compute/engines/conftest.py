"""What the Dask, Ray and Spark tests share: the example jobs, small inputs, and the reference output;
the fault runs (a killed worker, failing attempts) every engine must survive.

The reference is each example run by the serial engine in this process; every other engine must
write byte-identical part files for the same input and number of reducers.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from minga.compute import JobRef, JobResult, run
from minga.compute.engines import SerialEngine, make_job
from minga.compute.testing import generate_corpus, generate_records
from minga.errors import JobFailed

ROOT = Path(__file__).resolve().parents[3]
JOBS = ROOT / "examples" / "jobs"
WORD_JOBS = Path(__file__).resolve().parents[1] / "word_jobs.py"
"""Word count and its faulty variants, loaded by path so that every engine's workers can load them."""


@dataclass(frozen=True)
class Example:
    """One example job with its inputs and the reference output (part file name → bytes)."""

    name: str
    job_file: Path
    inputs: list[Path]
    reducers: int
    expected: dict[str, bytes]

    def cli_args(self, out: Path, engine: str) -> list[str]:
        """The arguments of ``minga run`` that run this example on ``engine`` into ``out``, quietly."""
        where = [str(self.job_file), *map(str, self.inputs), "-o", str(out)]
        return ["run", *where, "--engine", engine, "--reducers", str(self.reducers), "-q"]

    @staticmethod
    def written(out: Path) -> dict[str, bytes]:
        """The part files under ``out`` (name → bytes), to compare with ``expected``."""
        return read_parts(out)


def _inputs(name: str, d: Path) -> list[Path]:
    d.mkdir(parents=True)
    if name == "wordcount":
        return [generate_corpus(d / "corpus.txt", 200_000, seed=3)]
    if name == "inverted_index":
        rng = random.Random(5)
        words = [f"w{i}" for i in range(60)] + ["Alpha", "alpha", "ünï"]
        for i in range(6):
            lines = [" ".join(rng.choices(words, k=rng.randint(1, 9))) for _ in range(80)]
            (d / f"doc{i}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [d]
    if name == "join":
        rng = random.Random(8)
        with open(d / "customers.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "name", "country"])
            for i in range(300):
                w.writerow([i, f"customer {i}", rng.choice(["PE", "BO", "EC", "CL"])])
        with open(d / "orders.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["order_id", "customer_id", "amount"])
            for i in range(2000):
                w.writerow([i, rng.randrange(320), round(rng.uniform(1, 500), 2)])
        return [d / "customers.csv", d / "orders.csv"]
    if name == "terasort":
        return [generate_records(d / "records.txt", 5000, seed=4)]
    if name == "wordcount_vectorized":
        return [generate_corpus(d / "corpus.txt", 100_000, seed=6)]
    if name == "groupby_sum":
        rng = random.Random(9)
        with open(d / "readings.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["key", "value"])
            for _ in range(5000):
                w.writerow([rng.randint(-50, 50), rng.randint(-(10**9), 10**9)])
        return [d / "readings.csv"]
    raise AssertionError(name)


EXAMPLE_NAMES = ["wordcount", "inverted_index", "join", "terasort", "wordcount_vectorized", "groupby_sum"]
REDUCERS = {"wordcount": 2, "inverted_index": 2, "join": 2, "terasort": 3, "wordcount_vectorized": 2, "groupby_sum": 2}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # every test that takes `example_name` runs once per example job
    if "example_name" in metafunc.fixturenames:
        metafunc.parametrize("example_name", EXAMPLE_NAMES)


def read_parts(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("part-*"))}


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Example]:
    base = tmp_path_factory.mktemp("examples")
    found: dict[str, Example] = {}
    for name in EXAMPLE_NAMES:
        job_file = JOBS / f"{name}.py"
        inputs = _inputs(name, base / name)
        out = base / f"{name}-serial"
        spec = make_job(JobRef.from_file(job_file), inputs, out, reducers=REDUCERS[name])
        SerialEngine().run(spec)
        expected = read_parts(out)
        assert expected and any(expected.values()), f"{name} wrote no output"
        found[name] = Example(name, job_file, inputs, REDUCERS[name], expected)
    return found


RunOn = Callable[[Example, Path], dict[str, bytes]]


@pytest.fixture
def run_on() -> Callable[..., RunOn]:
    """``run_on(engine, **options)(example, out)`` runs an example through ``minga.compute.run``."""

    def bind(engine: str, **options: object) -> RunOn:
        def go(example: Example, out: Path) -> dict[str, bytes]:
            result = run(
                JobRef.from_file(example.job_file),
                example.inputs,
                out,
                engine=engine,
                reducers=example.reducers,
                **options,  # type: ignore[arg-type]
            )
            assert result.record["engine"] == engine
            assert (out / "_SUCCESS").exists()
            return read_parts(out)

        return go

    return bind


@pytest.fixture
def survives_a_killed_worker(tmp_path: Path) -> Callable[..., JobResult]:
    """``survives_a_killed_worker(engine, **options)`` runs a word count on ``engine`` whose first map
    task SIGKILLs its own worker once; checks that the kill happened and the output is exact, and
    returns the result."""

    def go(engine: str, **options: Any) -> JobResult:
        text = "".join(f"a{i % 13} b{i % 7} c\n" for i in range(400))
        (tmp_path / "in.txt").write_text(text)
        result = run(
            JobRef.from_file(WORD_JOBS, "KillWorkerOnce"),
            [tmp_path / "in.txt"],
            tmp_path / "out",
            engine=engine,
            split_size=1024,
            config={"marker": str(tmp_path / "killed")},
            **options,
        )
        assert (tmp_path / "killed").exists(), "the worker was never killed: the test proves nothing"
        assert dict(result.read()) == Counter(text.split())
        return result

    return go


@pytest.fixture
def retries_then_gives_up(tmp_path: Path) -> Callable[..., None]:
    """``retries_then_gives_up(engine, **options)`` checks on ``engine`` that a job whose every task
    fails its first attempt gives exact output after retries, and that a job failing every attempt
    raises :class:`JobFailed` with the job's own error."""

    def go(engine: str, **options: Any) -> None:
        (tmp_path / "in.txt").write_text("x y x\n" * 100)
        first = JobRef.from_file(WORD_JOBS, "FailFirstAttempt")
        result = run(first, [tmp_path / "in.txt"], tmp_path / "out", engine=engine, **options)
        assert dict(result.read()) == {"x": 200, "y": 100}
        assert result.record["attempts"]["failed"] >= 1
        always = JobRef.from_file(WORD_JOBS, "AlwaysFails")
        with pytest.raises(JobFailed, match="broken on purpose"):
            run(always, [tmp_path / "in.txt"], tmp_path / "o2", engine=engine, **options)

    return go
