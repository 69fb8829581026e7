"""The vectorised example jobs with ``--device gpu``: without a GPU they run on NumPy, same output as Python."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from minga.compute import JobRef, run, verify_job
from minga.compute.testing import generate_corpus

# NumPy comes with minga[parallel] (or minga[gpu]): `make test` installs it, a bare install skips
pytest.importorskip("numpy")

from minga.compute.gpu import array_backend  # after the skip: it imports numpy

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "examples" / "jobs"
EXPECTED_DEVICE = array_backend("gpu").device  # "cpu" on a machine without a usable GPU


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_corpus(tmp_path_factory.mktemp("text") / "corpus.txt", 300_000, seed=11)


@pytest.fixture(scope="module")
def readings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(4)
    path = tmp_path_factory.mktemp("csv") / "readings.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "value"])
        for _ in range(20_000):
            w.writerow([rng.randint(-300, 300), rng.randint(-(10**12), 10**12)])
    return path


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_vectorized_word_count_equals_python(device: str, corpus: Path, tmp_path: Path) -> None:
    result = run(
        JobRef.from_file(JOBS / "wordcount_vectorized.py"),
        [corpus],
        tmp_path / "out",
        engine="serial",
        reducers=2,
        split_size=64 << 10,
        config={"device": device},
    )
    expected = Counter(corpus.read_bytes().split())
    assert {w.encode(): n for w, n in result.read()} == expected
    ran_on = EXPECTED_DEVICE if device == "gpu" else "cpu"
    assert result.counters["device"] == {ran_on: result.counter("device", ran_on)}
    assert result.counter("device", ran_on) >= 2  # several map batches, all on that device


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_group_by_sum_equals_python(device: str, readings: Path, tmp_path: Path) -> None:
    result = run(
        JobRef.from_file(JOBS / "groupby_sum.py"),
        [readings],
        tmp_path / "out",
        engine="serial",
        reducers=3,
        split_size=64 << 10,
        config={"device": device},
    )
    expected: dict[int, int] = defaultdict(int)
    with open(readings, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            expected[int(row["key"])] += int(row["value"])
    assert dict(result.read()) == expected
    assert set(result.counters["device"]) == {EXPECTED_DEVICE if device == "gpu" else "cpu"}


@pytest.mark.parametrize(("job", "data"), [("wordcount_vectorized.py", "corpus"), ("groupby_sum.py", "readings")])
def test_the_vectorised_jobs_pass_the_test_mode(job: str, data: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    # combiner run 0..n times, values shuffled, tasks re-executed: the output must not move
    full: Path = request.getfixturevalue(data)
    lines = full.read_text(encoding="utf-8").splitlines(keepends=True)[:400]  # the test mode cuts tiny splits
    small = tmp_path / full.name
    small.write_text("".join(lines), encoding="utf-8")
    pairs = verify_job(JobRef.from_file(JOBS / job).load(), [small], seeds=(1, 2), reducers=2, work_dir=tmp_path)
    assert pairs


def _read_counts(out: Path) -> Counter[bytes]:
    counts: Counter[bytes] = Counter()
    for part in sorted(out.glob("part-*")):
        for line in part.read_text(encoding="utf-8").splitlines():
            word, n = json.loads(line)
            counts[word.encode()] += n
    return counts


@pytest.mark.parametrize(
    "how",
    [
        ["-m", "minga", "run", str(JOBS / "wordcount_vectorized.py")],  # minga run
        [str(JOBS / "wordcount_vectorized.py")],  # python job.py, through main(VectorizedWordCount)
    ],
    ids=["minga-run", "job-main"],
)
def test_device_flag_on_the_command_line(how: list[str], corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, *how, str(corpus), "-o", str(out), "--device", "gpu", "--workers", "2", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert _read_counts(out) == Counter(corpus.read_bytes().split())
    record = json.loads((out / "_job.json").read_text(encoding="utf-8"))
    assert record["config"]["job_config"]["device"] == "gpu"
    assert set(record["counters"]["device"]) == {EXPECTED_DEVICE}


def test_a_bad_device_is_one_line(corpus: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "minga", "run", str(JOBS / "wordcount_vectorized.py"), str(corpus),
         "-o", str(tmp_path / "out"), "--device", "tpu"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--device must be cpu or gpu" in proc.stderr and "Traceback" not in proc.stderr
