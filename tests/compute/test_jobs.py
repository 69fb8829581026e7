"""The job API end to end on the local engine: inputs, outputs, counters, steps, the record."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import word_jobs

from minga.compute import MapReduce, Step, read_output, run
from minga.compute.engines import LocalEngine, SerialEngine, make_job
from minga.errors import UsageError

TEXT = "the quick brown fox\njumps over the lazy dog\n\nthe end\n"


class WordCount(word_jobs.WordCount):
    """Word count that also counts the distinct words (a user counter)."""

    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        self.count("words", "distinct")
        yield from super().reduce(word, counts)


class TsvWordCount(WordCount):
    output_format = "tsv"


class ParquetWordCount(WordCount):
    output_format = "parquet"


class TopLength(MapReduce):
    """Two steps: count words, then group the words by their count."""

    def count_words(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        for word in line.split():
            yield word, 1

    def total(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)

    def by_count(self, word: str, n: int) -> Iterator[tuple[int, str]]:
        yield n, word

    def collect(self, n: int, words: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
        yield n, sorted(words)

    def steps(self) -> list[Step]:
        return [
            Step(map=self.count_words, reduce=self.total),
            Step(map=self.by_count, reduce=self.collect, reducers=1),
        ]


class Lifecycle(MapReduce):
    def setup(self) -> None:
        self.count("life", f"setup {self.task_id[3]}")

    def teardown(self) -> None:
        self.count("life", f"teardown {self.task_id[3]}")

    def map(self, key: Any, line: str) -> Iterator[tuple[int, int]]:
        yield len(line), 1

    def reduce(self, key: int, ones: Iterable[int]) -> Iterator[tuple[int, int]]:
        yield key, sum(ones)


def _expected(text: str) -> dict[str, int]:
    return dict(Counter(text.split()))


def test_word_count_with_worker_processes(tmp_path: Path) -> None:
    corpus = "".join(f"w{i % 97} w{i % 13} w{i % 7}\n" for i in range(20_000))
    (tmp_path / "in.txt").write_text(corpus)
    result = run(WordCount, [tmp_path / "in.txt"], tmp_path / "out", workers=2, reducers=3, split_size=20_000)
    assert dict(result.read()) == _expected(corpus)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_SUCCESS", "_job.json", "part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"
    ]  # fmt: skip
    for part in (tmp_path / "out").glob("part-*"):
        keys = [json.loads(line)[0] for line in part.read_text().splitlines()]
        assert keys == sorted(keys)
    record = json.loads((tmp_path / "out" / "_job.json").read_text())
    assert record["status"] == "succeeded" and record["engine"] == "local"
    assert record["config"]["reducers"] == 3
    assert record["counters"]["minga"]["map input records"] == 20_000
    assert record["counters"]["words"]["distinct"] == len(_expected(corpus))
    assert {"plan", "step 0 map", "step 0 reduce"} <= set(record["phases"])
    assert record["attempts"]["failed"] == 0
    assert result.counter("minga", "map input bytes") == len(corpus)


def test_globs_directories_and_gzip(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_text("a b\n")
    (tmp_path / "d" / "sub" / "b.txt").write_text("b c")  # no final newline
    (tmp_path / "d" / "_SUCCESS").write_text("")
    with gzip.open(tmp_path / "c.txt.gz", "wt") as f:
        f.write("c d\n" * 1000)
    (tmp_path / "x1.txt").write_text("x\n")
    (tmp_path / "x2.txt").write_text("x\n")
    result = run(
        WordCount,
        [tmp_path / "d", tmp_path / "c.txt.gz", str(tmp_path / "x*.txt")],
        tmp_path / "o",
        workers=2,
    )
    assert dict(result.read()) == {"a": 1, "b": 2, "c": 1001, "d": 1000, "x": 2}
    with pytest.raises(UsageError, match="matches no file"):
        run(WordCount, [tmp_path / "nothing*.txt"], tmp_path / "o2")
    with pytest.raises(UsageError, match="already exists"):
        run(WordCount, [tmp_path / "x1.txt"], tmp_path / "o")
    assert dict(run(WordCount, [tmp_path / "x1.txt"], tmp_path / "o", overwrite=True).read()) == {"x": 1}


class JsonTotals(MapReduce):
    def map(self, key: Any, obj: dict[str, Any]) -> Iterator[tuple[str, float]]:
        yield obj["k"], obj["v"]

    def reduce(self, key: str, values: Iterable[float]) -> Iterator[tuple[str, float]]:
        yield key, sum(values)


class CsvTotals(JsonTotals):
    def map(self, key: Any, row: dict[str, Any]) -> Iterator[tuple[str, float]]:
        yield row["k"], float(row["v"])


class ParquetTotals(JsonTotals):
    def map_batch(self, table: Any) -> Iterator[tuple[str, float]]:
        yield from zip(table.column("k").to_pylist(), table.column("v").to_pylist(), strict=True)


def test_json_lines_csv_and_parquet_inputs(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"k": f"k{i % 5}", "v": float(i)} for i in range(3000)]
    expected: dict[str, float] = {}
    for r in rows:
        expected[r["k"]] = expected.get(r["k"], 0.0) + r["v"]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(tmp_path / "in.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["k", "v"])
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet", row_group_size=700)
    for cls, name in [(JsonTotals, "in.jsonl"), (CsvTotals, "in.csv"), (ParquetTotals, "in.parquet")]:
        out = tmp_path / f"out-{name}"
        result = run(cls, [tmp_path / name], out, workers=2, split_size=4096)
        assert dict(result.read()) == expected, name
        assert result.counter("minga", "map input records") == 3000, name


def test_tsv_and_parquet_outputs(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    (tmp_path / "in.txt").write_text(TEXT)
    tsv = run(TsvWordCount, [tmp_path / "in.txt"], tmp_path / "tsv", engine="serial", reducers=1)
    assert (tmp_path / "tsv" / "part-00000.tsv").read_text().splitlines()[:2] == ["brown\t1", "dog\t1"]
    assert dict(tsv.read())["the"] == "3"
    parquet = run(ParquetWordCount, [tmp_path / "in.txt"], tmp_path / "pq", engine="serial", reducers=2)
    assert dict(parquet.read()) == _expected(TEXT)
    assert dict(read_output(tmp_path / "pq")) == _expected(TEXT)


def test_multi_step_job(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text(TEXT * 3 + "fox\n")
    result = run(TopLength, [tmp_path / "in.txt"], tmp_path / "out", workers=2, reducers=3)
    counts = _expected(TEXT * 3 + "fox\n")
    expected: dict[int, list[str]] = {}
    for w, n in counts.items():
        expected.setdefault(n, []).append(w)
    assert list(result.read()) == sorted((n, sorted(ws)) for n, ws in expected.items())
    assert len(result.files) == 1  # the last step asked for one reducer


def test_setup_and_teardown_run_once_per_task(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("ab\n" * 5000)
    result = run(Lifecycle, [tmp_path / "in.txt"], tmp_path / "out", workers=2, reducers=2, split_size=4096)
    life = result.counters["life"]
    maps = len(result.record["attempts"]["log"]) - 2
    assert life["setup m"] == life["teardown m"] == maps > 1
    assert life["setup r"] == life["teardown r"] == 2
    assert dict(result.read()) == {2: 5000}


def test_engines_agree_whatever_the_workers(tmp_path: Path) -> None:
    corpus = "".join(f"{i % 31} {i % 17} x{i % 5}\n" for i in range(5000))
    (tmp_path / "in.txt").write_text(corpus)
    outputs = []
    for i, engine in enumerate([SerialEngine(), LocalEngine(1), LocalEngine(3)]):
        spec = make_job(WordCount, [tmp_path / "in.txt"], tmp_path / f"o{i}", reducers=2, split_size=8192)
        try:
            outputs.append(list(engine.run(spec).read()))
        finally:
            engine.close()
    assert outputs[0] == outputs[1] == outputs[2]
    assert dict(outputs[0]) == _expected(corpus)


def test_job_classes_must_be_findable_by_workers(tmp_path: Path) -> None:
    class Local(WordCount):
        pass

    (tmp_path / "in.txt").write_text(TEXT)
    with pytest.raises(UsageError, match="module level"):
        run(Local, [tmp_path / "in.txt"], tmp_path / "out")
