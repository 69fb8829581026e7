"""Input splitting and reading: text, JSON lines, CSV, Parquet, and a previous step's output.

A text file is split at byte ranges; a line belongs to the split that holds its first byte,
so every line is read exactly once whatever the split size. Gzip files are read whole.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from minga.compute._shuffle import read_run_file
from minga.errors import UsageError

__all__ = ["FORMATS", "InputSplit", "Lines", "expand_inputs", "plan_splits", "read_batches", "split_size_for"]

FORMATS = ("text", "jsonl", "csv", "parquet", "runs")

#: bytes read and handed to a mapper at once; large enough to amortise per-batch costs,
#: small enough that a batch split into words stays well inside a worker's memory
BATCH_BYTES = 4 << 20


class Lines:
    """A batch of text lines: iterate it for the lines (without their newline), or take
    ``text``, the whole chunk, to process it in one call (``Counter(lines.text.split())``)."""

    __slots__ = ("_lines", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: list[str] | None = None

    def _split(self) -> list[str]:
        if self._lines is None:
            lines = self.text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            self._lines = lines
        return self._lines

    def __iter__(self) -> Iterator[str]:
        return iter(self._split())

    def __len__(self) -> int:
        if self._lines is None:  # counting newlines is far cheaper than splitting
            n = self.text.count("\n")
            return n + (1 if self.text and not self.text.endswith("\n") else 0)
        return len(self._lines)

    def __getitem__(self, i: int) -> str:
        return self._split()[i]

    def __repr__(self) -> str:
        return f"Lines({len(self.text)} chars)"


@dataclass(frozen=True)
class InputSplit:
    """A piece of input one map task reads: ``path`` from byte ``start`` to ``end``
    (``end`` -1: to the end of the file), or row group ``start`` of a Parquet file.

    ``fmt`` is one of "text", "jsonl", "csv", "parquet" or "runs" (a previous step's output).
    """

    path: str
    start: int
    end: int
    fmt: str
    size: int

    def describe(self) -> str:
        return f"{self.path}[{self.start}:{self.end}]"


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files named by ``inputs``: plain files, globs, and directories (walked; names starting
    with ``_`` or ``.`` are skipped, like ``_SUCCESS``). Raises UsageError when one matches nothing."""
    files: list[str] = []
    for item in inputs:
        s = os.fspath(item)
        if os.path.isdir(s):
            found = []
            for root, dirs, names in os.walk(s):
                dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
                found += [os.path.join(root, n) for n in sorted(names) if not n.startswith(("_", "."))]
            files += found
        elif os.path.isfile(s):
            files.append(s)
        else:
            matched = sorted(p for p in glob.glob(s, recursive=True) if os.path.isfile(p))
            if not matched:
                raise UsageError(f"input {s} matches no file")
            files += matched
    if not files:
        raise UsageError("no input files")
    return [str(Path(f).resolve()) for f in files]


def format_of(path: str, forced: str | None) -> str:
    if forced is not None:
        if forced not in FORMATS:
            raise UsageError(f"unknown input format {forced!r}: use one of {', '.join(FORMATS[:4])}")
        return forced
    name = path.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    return "text"


#: the smallest split worth two tasks per worker: each map task pays a fixed cost per distinct
#: key it emits (partitioning, sorting and encoding its run), whatever the split's size
MIN_SPLIT = 64 << 20


def split_size_for(total_bytes: int, parallelism: int) -> int:
    """A split size giving each worker about two tasks of at least ``MIN_SPLIT`` bytes, or
    else one task, between 1 MiB and 256 MiB.

    Few large splits keep the shuffle small (each map emits its distinct keys once when it
    combines); two per worker leave room to even out the finish and to back up a straggler.
    Memory does not grow with the split: inputs are read in batches of ``BATCH_BYTES``."""
    workers = max(1, parallelism)
    per = total_bytes // (workers * 2) + 1
    if per < MIN_SPLIT:
        per = total_bytes // workers + 1
    return max(1 << 20, min(256 << 20, per))


def plan_splits(
    files: Sequence[str], *, fmt: str | None = None, split_size: int | None = None, parallelism: int = 2
) -> list[InputSplit]:
    """Cut ``files`` into splits of about ``split_size`` bytes (chosen from ``parallelism`` when None)."""
    sizes = [os.path.getsize(f) for f in files]
    size = split_size or split_size_for(sum(sizes), parallelism)
    splits: list[InputSplit] = []
    for path, total in zip(files, sizes, strict=True):
        kind = format_of(path, fmt)
        if kind == "parquet":
            splits += _parquet_splits(path, total)
        elif kind == "runs" or path.endswith(".gz") or total <= size:
            splits.append(InputSplit(path, 0, -1, kind, total))
        else:
            for start in range(0, total, size):
                end = min(total, start + size)
                splits.append(InputSplit(path, start, end, kind, end - start))
    return splits


def _parquet_splits(path: str, total: int) -> list[InputSplit]:
    pq = _pyarrow_parquet()
    meta = pq.ParquetFile(path).metadata
    groups = meta.num_row_groups
    return [InputSplit(path, i, i + 1, "parquet", total // max(1, groups)) for i in range(groups)]


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("Parquet needs pyarrow: pip install 'minga[arrow]'") from None
    return pq


def _byte_chunks(f: IO[bytes], start: int, end: int, batch: int) -> Iterator[bytes]:
    """Chunks of whole lines whose first byte lies in [start, end); end -1 reads to EOF."""
    if start > 0:
        f.seek(start - 1)
        f.readline()  # the line holding byte start-1 belongs to the split before
        pos = f.tell()
    else:
        pos = 0
    if end < 0:
        end = 1 << 62
    carry = b""
    while pos < end:
        data = f.read(min(batch, end - pos))
        if not data:
            break
        pos += len(data)
        if carry:
            data = carry + data
            carry = b""
        if pos >= end:
            if not data.endswith(b"\n"):
                data += f.readline()  # finish the last line, which started inside this split
            yield data
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        yield data[: cut + 1]
        carry = data[cut + 1 :]
    if carry:
        yield carry


def _open(path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is a binary IO in all but name
    return open(path, "rb")


def read_batches(split: InputSplit, batch_bytes: int = BATCH_BYTES) -> Iterator[tuple[Any, int]]:
    """Yield ``(batch, bytes)`` for ``split``: a :class:`Lines`, a list of records, or a pyarrow
    Table, with the number of input bytes it came from."""
    if split.fmt == "parquet":
        table = _pyarrow_parquet().ParquetFile(split.path).read_row_group(split.start)
        yield table, split.size
        return
    if split.fmt == "runs":
        yield from read_run_file(split.path)
        return
    header: list[str] | None = None
    if split.fmt == "csv":
        with _open(split.path) as f:
            first = f.readline().decode("utf-8")
        header = next(csv.reader([first]), [])
    with _open(split.path) as f:
        skip_header = split.fmt == "csv" and split.start == 0
        for chunk in _byte_chunks(f, split.start, split.end, batch_bytes):
            text = chunk.decode("utf-8")
            if skip_header:
                skip_header = False
                text = text.partition("\n")[2]
            if split.fmt == "text":
                yield Lines(text), len(chunk)
            elif split.fmt == "jsonl":
                loads = json.loads
                yield [loads(line) for line in text.split("\n") if line.strip()], len(chunk)
            else:
                rows = csv.DictReader(io.StringIO(text), fieldnames=header)
                yield list(rows), len(chunk)
