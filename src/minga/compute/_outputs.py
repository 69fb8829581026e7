"""Output files: one per reduce partition, as JSON lines, tab-separated text or Parquet."""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from minga.compute._shuffle import read_run_file, write_pairs_file
from minga.errors import UsageError

__all__ = ["OUTPUT_FORMATS", "PartWriter", "part_name", "read_output"]

OUTPUT_FORMATS = {"jsonl": "jsonl", "tsv": "tsv", "parquet": "parquet", "runs": "run"}
_FLUSH = 8192
_WRITE_BATCH = 1 << 16  # pairs formatted at once by PartWriter.write_pairs
_READ_CHUNK = 4 << 20  # characters of JSON lines parsed at once by read_output
_json_str = json.encoder.encode_basestring  # the C escaper json.dumps uses
_KEY = itemgetter(0)
_VALUE = itemgetter(1)


def part_name(partition: int, fmt: str) -> str:
    return f"part-{partition:05d}.{OUTPUT_FORMATS[fmt]}"


def _cell(x: Any) -> str:
    return x if type(x) is str else json.dumps(x, ensure_ascii=False)


class PartWriter:
    """Writes one partition's (key, value) pairs to ``path`` in ``fmt``; ``close()`` returns bytes written."""

    def __init__(self, path: str, fmt: str) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise UsageError(f"unknown output format {fmt!r}: use jsonl, tsv or parquet")
        self.path = path
        self.fmt = fmt
        self.records = 0
        self._pairs: list[tuple[Any, Any]] = []
        self._lines: list[str] = []
        self._file: IO[str] | None = None
        if fmt in ("jsonl", "tsv"):
            self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        #: write(key, value): one pair; bound to the format's writer once, not tested per pair
        self.write: Callable[[Any, Any], None] = {"jsonl": self._write_jsonl, "tsv": self._write_tsv}.get(fmt, self._write_pair)

    def write_pairs(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        """Write many pairs at once: when every key is a str and every value an int (or, for
        TSV, an int or a str) the lines are formatted by C loops, without a call per pair.
        An iterator is taken ``_WRITE_BATCH`` pairs at a time, so it may be long."""
        if type(pairs) is list:
            self._write_batch(pairs)
            return
        it = iter(pairs)
        while batch := list(itertools.islice(it, _WRITE_BATCH)):
            self._write_batch(batch)

    def _write_batch(self, batch: list[tuple[Any, Any]]) -> None:
        if self._file is not None and _plain_pairs(batch, self.fmt):
            keys = map(_KEY, batch)
            values = map(_VALUE, batch)
            if self.fmt == "jsonl":
                lines = map("[{},{}]".format, map(_json_str, keys), values)
            else:
                lines = map("{}\t{}".format, keys, values)
            self._flush()
            self._file.write("\n".join(lines))
            self._file.write("\n")
            self.records += len(batch)
            return
        write = self.write
        for key, value in batch:
            write(key, value)

    def _write_pair(self, key: Any, value: Any) -> None:
        self.records += 1
        self._pairs.append((key, value))

    def _write_jsonl(self, key: Any, value: Any) -> None:
        self.records += 1
        if type(key) is str and type(value) is int:  # the common case, without the encoder's overhead
            self._lines.append(f"[{_json_str(key)},{value}]")
        else:
            self._lines.append(self._dumps([key, value]))
        if len(self._lines) >= _FLUSH:
            self._flush()

    def _write_tsv(self, key: Any, value: Any) -> None:
        self.records += 1
        self._lines.append(
            f"{key if type(key) is str else _cell(key)}\t{value if type(value) is str else _cell(value)}"
        )
        if len(self._lines) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self._lines and self._file is not None:
            self._file.write("\n".join(self._lines))
            self._file.write("\n")
            self._lines.clear()

    def close(self) -> int:
        if self._file is not None:
            self._flush()
            self._file.close()
        elif self.fmt == "runs":
            write_pairs_file(self.path, self._pairs)
        else:
            _write_parquet(self.path, self._pairs)
        return os.path.getsize(self.path)


def _plain_pairs(batch: list[Any], fmt: str) -> bool:
    """Whether ``batch`` is a non-empty list of 2-tuples of str keys and int (TSV: int or str)
    values, exactly those types (a bool is not an int here: JSON spells it otherwise)."""
    if not batch or set(map(type, batch)) != {tuple} or set(map(len, batch)) != {2}:
        return False
    if set(map(type, map(_KEY, batch))) != {str}:
        return False
    kinds = set(map(type, map(_VALUE, batch)))
    return kinds == {int} or (fmt == "tsv" and kinds <= {int, str})


def _write_parquet(path: str, pairs: list[tuple[Any, Any]]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("Parquet output needs pyarrow: pip install 'minga[arrow]'") from None
    table = pa.table({"key": [k for k, _ in pairs], "value": [v for _, v in pairs]})
    pq.write_table(table, path)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block of work that allocates very many small
    containers: they would otherwise set off collections of the whole heap again and again
    (measured: a third of a word count's time). Cycles are collected afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _read_jsonl_pairs(path: Path) -> Iterator[tuple[Any, Any]]:
    """The [key, value] lines of a JSON lines part file as pairs. A few megabytes of lines are
    parsed at a time as one JSON array (a newline between values is whitespace to JSON), so
    the parsing runs in C rather than once per line."""
    loads = json.loads
    with open(path, encoding="utf-8") as f:
        while lines := f.readlines(_READ_CHUNK):
            try:
                with gc_paused():
                    rows = loads("[" + ",".join(lines) + "]")
            except json.JSONDecodeError:  # a blank or broken line: parse line by line to say where
                rows = [loads(line) for line in lines]
            yield from map(tuple, rows)


def read_output(output_dir: str | os.PathLike[str]) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) pair of a job's output directory, partition by partition.

    JSON lines come back as the JSON values; TSV as strings; Parquet as Python objects.
    """
    parts = sorted(p for p in Path(output_dir).iterdir() if p.name.startswith("part-"))
    for part in parts:
        if part.suffix == ".jsonl":
            yield from _read_jsonl_pairs(part)
        elif part.suffix == ".tsv":
            with open(part, encoding="utf-8") as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition("\t")
                    yield k, v
        elif part.suffix == ".run":
            for block, _ in read_run_file(str(part)):
                yield from block
        elif part.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(part)
            yield from zip(table.column("key").to_pylist(), table.column("value").to_pylist(), strict=True)
