"""What the Dask, Ray and Spark tests share: the example jobs, small inputs, and the reference output.

The reference is each example run by the serial engine in this process; every other engine must
write byte-identical part files for the same input and number of reducers.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from minga.compute import JobRef, SerialEngine, generate_corpus, generate_records, make_job, run

ROOT = Path(__file__).resolve().parents[3]
JOBS = ROOT / "examples" / "jobs"


@dataclass(frozen=True)
class Example:
    """One example job with its inputs and the reference output (part file name → bytes)."""

    name: str
    job_file: Path
    inputs: list[Path]
    reducers: int
    expected: dict[str, bytes]


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
