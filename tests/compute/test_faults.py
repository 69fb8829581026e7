"""Task-level fault tolerance of the local engine: killed workers, failing tasks, stragglers."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from word_jobs import WordCount

from minga.compute import MapReduce, run
from minga.errors import JobFailed


class KilledInMap(WordCount):
    """The first attempt of the task reading the marked line SIGKILLs its own worker halfway
    through, after it has already emitted (and, with a tiny budget, spilled) output."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        if line.startswith("KILL"):
            marker = Path(self.config["marker"])
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        yield from super().map(key, line)


class KilledInReduce(WordCount):
    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        marker = Path(self.config["marker"])
        if word == "KILL" and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        yield word, sum(counts)


class AlwaysFails(MapReduce):
    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        if "bad" in line:
            raise ValueError("cannot parse a bad line")
        yield line, 1


class Straggler(MapReduce):
    """The first attempt of one map task hangs; its backup finishes at once."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        if line == "slow" and self.attempt == 1:
            time.sleep(60)  # far longer than the test lasts: only a backup can finish the job
        yield line, 1

    def reduce(self, key: str, ones: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield key, sum(ones)


def _corpus(tmp_path: Path, kill_line: int) -> tuple[Path, Counter[str]]:
    lines = [f"w{i % 50} w{i % 7} common" for i in range(6000)]
    lines[kill_line] = "KILL " + lines[kill_line]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "in.txt"
    path.write_text(text)
    return path, Counter(text.split())


@pytest.mark.parametrize("job", [KilledInMap, KilledInReduce])
def test_a_worker_killed_mid_task_is_replaced_and_output_is_exact(
    tmp_path: Path, job: type[MapReduce]
) -> None:
    path, expected = _corpus(tmp_path, 4000)
    marker = tmp_path / "killed"
    result = run(
        job, [path], tmp_path / "out", workers=2, reducers=2, split_size=16_384,
        config={"marker": str(marker)}, memory_budget=1 << 14,
    )  # fmt: skip
    assert marker.exists(), "the worker was never killed"
    assert dict(result.read()) == dict(expected)
    record = json.loads((tmp_path / "out" / "_job.json").read_text())
    failed = [a for a in record["attempts"]["log"] if a["status"] == "failed"]
    assert len(failed) == 1 and "died" in failed[0]["error"]
    assert result.counter("minga", "map input records") == 6000
    assert not (tmp_path / "out" / "_temporary").exists()


def test_a_task_failing_every_attempt_fails_the_job(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("good\nbad\n")
    with pytest.raises(JobFailed) as err:
        run(
            AlwaysFails,
            [tmp_path / "in.txt"],
            tmp_path / "out",
            workers=2,
            engine_options={"max_attempts": 3},
        )
    assert err.value.attempts == 3
    assert "ValueError: cannot parse a bad line" in err.value.cause
    record = json.loads((tmp_path / "out" / "_job.json").read_text())
    assert record["status"] == "failed"
    assert not (tmp_path / "out" / "_SUCCESS").exists()


@pytest.mark.slow
def test_a_straggler_gets_a_backup_that_wins(tmp_path: Path) -> None:
    lines = [f"fast{i}" for i in range(2000)] + ["slow"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = run(
        Straggler, [tmp_path / "in.txt"], tmp_path / "out", workers=2, split_size=4096,
        engine_options={"speculation_after": 0.5},
    )  # fmt: skip
    assert time.monotonic() - started < 45
    assert dict(result.read()) == {line: 1 for line in lines}
    attempts = result.record["attempts"]
    assert attempts["speculative"] >= 1
    assert attempts["failed"] == 0
