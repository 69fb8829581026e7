"""The MapReduce job class users subclass, its steps, and how a job class is found again in a worker."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from minga.compute._tracebacks import user_traceback
from minga.errors import UsageError

__all__ = ["JobRef", "MapReduce", "Step", "stable_hash"]

Pair = tuple[Any, Any]
Mapper = Callable[[Any, Any], Iterable[Pair]]
BatchMapper = Callable[[Any], Iterable[Pair]]
Grouper = Callable[[Any, Iterable[Any]], Iterable[Pair]]


def stable_hash(key: Any) -> int:
    """A hash of ``key`` that is the same in every process (``hash(str)`` is salted per process).

    str, bytes and int are hashed directly; other keys through their ``repr``, so tuples of
    those types hash the same everywhere.
    """
    if type(key) is str:
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))
    if type(key) is int:
        return key & 0x7FFFFFFF
    if type(key) is bytes:
        return zlib.crc32(key)
    return zlib.crc32(repr(key).encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Step:
    """One map → shuffle → reduce pass of a job.

    ``map`` is called per record as ``map(key, value)``; ``map_batch``, when given, instead
    receives a whole batch of records (it wins over ``map``). ``combine`` is optional and may
    run 0, 1 or several times on any subset of one key's values; ``reduce`` receives each key
    once per partition, with its values in no particular order. ``reducers`` overrides the
    job's number of reduce partitions for this step.
    """

    map: Mapper | None = None
    reduce: Grouper | None = None
    combine: Grouper | None = None
    map_batch: BatchMapper | None = None
    reducers: int | None = None


class MapReduce:
    """Base class of a MapReduce job: override ``map`` (or ``map_batch``), ``combine`` and ``reduce``.

    Example::

        class WordCount(MapReduce):
            def map(self, key, line):
                for word in line.split():
                    yield word, 1

            def combine(self, word, counts):
                yield word, sum(counts)

            def reduce(self, word, counts):
                yield word, sum(counts)

        if __name__ == "__main__":
            main(WordCount)  # from minga.compute import main

    Keys must be hashable and mutually orderable (they are grouped, then sorted within a
    partition); keys and values must be picklable. Per task, the runtime sets
    ``self.task_id`` (``"s0-m00003"``), ``self.attempt`` (1-based), ``self.input_path``
    (the file a map task reads, ``None`` in reduce tasks), then calls ``setup()``, runs the
    records, and calls ``teardown()``.
    """

    #: "text", "jsonl", "csv", "parquet" or None to choose by file extension
    input_format: ClassVar[str | None] = None
    #: "jsonl" (``[key, value]`` per line), "tsv" (``key<TAB>value``) or "parquet"
    output_format: ClassVar[str] = "jsonl"
    #: the number of reduce partitions when the caller does not choose
    reducers: ClassVar[int | None] = None

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.task_id: str = ""
        self.attempt: int = 0
        self.input_path: str | None = None
        self.counters: dict[tuple[str, str], int] = {}

    # -- what users override -------------------------------------------------------------

    def setup(self) -> None:
        """Called once per task before the first record."""

    def teardown(self) -> Iterable[Pair] | None:
        """Called once per task after the last record (not when the task failed).

        In a map task it may return pairs to emit, which is how a mapper combines in memory
        across batches: count into ``self.counts`` in ``map_batch``, return
        ``self.counts.items()`` here. In a reduce task what it returns is ignored.
        """
        return None

    def map(self, key: Any, value: Any) -> Iterable[Pair]:
        """Turn one input record into (key, value) pairs; the default passes it through."""
        yield key, value

    def map_batch(self, records: Any) -> Iterable[Pair]:
        """Turn a batch of records into pairs in one call; override it where speed matters.

        For text inputs ``records`` is a :class:`~minga.compute.Lines` (iterate the lines, or
        take ``records.text``, the whole chunk); for JSON lines and CSV a list of objects; for
        Parquet a ``pyarrow.Table``; for the later steps of a multi-step job a list of
        ``(key, value)`` tuples. The default calls :meth:`map` per record.
        """
        for record in records:
            yield from self.map(None, record)

    def combine(self, key: Any, values: Iterable[Any]) -> Iterable[Pair]:
        """Optional local pre-reduction; it may run 0, 1 or several times, so it must be
        associative and commutative and yield the key it was given."""
        raise NotImplementedError

    def reduce(self, key: Any, values: Iterable[Any]) -> Iterable[Pair]:
        """Turn one key and all its values (in no particular order) into output pairs."""
        for value in values:
            yield key, value

    def partition(self, key: Any, partitions: int) -> int:
        """The reduce partition (0..partitions-1) of ``key``; the default is a stable hash."""
        return stable_hash(key) % partitions

    def prepare(self, inputs: Sequence[str], reducers: int) -> Mapping[str, Any]:
        """Runs once in the driver before the first step; the mapping it returns is merged
        into ``self.config`` of every task (a range partitioner's sampled boundaries, say)."""
        return {}

    def steps(self) -> list[Step]:
        """The passes of the job; the default is one step made of the methods above."""
        cls = type(self)
        return [
            Step(
                map=self.map,
                map_batch=self.map_batch if cls.map_batch is not MapReduce.map_batch else None,
                combine=self.combine if cls.combine is not MapReduce.combine else None,
                reduce=self.reduce,
            )
        ]

    # -- what the runtime offers -----------------------------------------------------------

    def count(self, group: str, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``group/name``; counters are summed job-wide over the
        committed attempts of every task."""
        k = (group, name)
        self.counters[k] = self.counters.get(k, 0) + n


@dataclass(frozen=True)
class JobRef:
    """Where a job class lives, as plain data that every worker process can load again.

    ``module`` is the module name; ``path`` the file it was loaded from, used when the module
    is not importable by name in the worker (a job file given on the command line).
    """

    module: str
    qualname: str
    path: str | None = None

    @classmethod
    def of(cls, job_class: type[MapReduce]) -> JobRef:
        """Raises :class:`~minga.errors.UsageError` for a class defined inside a function,
        which no worker could find again."""
        if "<locals>" in job_class.__qualname__:
            raise UsageError(f"{job_class.__qualname__} is defined inside a function: define job classes at module level")
        module = sys.modules.get(job_class.__module__)
        path = getattr(module, "__file__", None)
        return cls(job_class.__module__, job_class.__qualname__, str(Path(path).resolve()) if path else None)

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> JobRef:
        """Load the job file ``path`` and pick the class ``name`` (or its only MapReduce subclass).

        Raises :class:`~minga.errors.UsageError` when the file or the class is missing, or when the
        file fails to import (with the traceback of the author's own code).
        """
        p = Path(path).resolve()
        if not p.is_file():
            raise UsageError(f"job file {path} does not exist")
        try:
            module = _load_file(_module_name(p), p)
        except Exception as exc:
            raise UsageError(f"job file {path} cannot be imported:\n{user_traceback(exc)}") from None
        if name is None:
            found = [
                v.__qualname__
                for v in vars(module).values()
                if isinstance(v, type)
                and issubclass(v, MapReduce)
                and v is not MapReduce
                and v.__module__ == module.__name__
            ]
            if len(found) != 1:
                what = (
                    "no MapReduce class" if not found else f"several MapReduce classes ({', '.join(found)})"
                )
                raise UsageError(f"{path} defines {what}: name one as {path}:ClassName")
            name = found[0]
        if not isinstance(getattr(module, name, None), type):
            raise UsageError(f"{path} has no class {name}")
        return cls(module.__name__, name, str(p))

    def load(self) -> type[MapReduce]:
        """The job class, importing its module (or loading its file) when needed."""
        module = sys.modules.get(self.module)
        if module is None and self.module != "__main__":
            try:
                module = importlib.import_module(self.module)
            except ImportError:
                if self.path is None:
                    raise
        obj: Any = _lookup(module, self.qualname)
        if obj is None and self.path is not None:
            # a job run as a script is `__main__` in the driver, not in a fresh worker
            obj = _lookup(_load_file(self.module, Path(self.path)), self.qualname)
        if not (isinstance(obj, type) and issubclass(obj, MapReduce)):
            raise UsageError(f"{self.module}:{self.qualname} is not a MapReduce class")
        return obj


def _lookup(module: Any, qualname: str) -> Any:
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _module_name(path: Path) -> str:
    return f"minga_job_{path.stem}_{zlib.crc32(str(path).encode()):08x}"


def _load_file(name: str, path: Path) -> Any:
    if name == "__main__":
        name = _module_name(path)
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load job file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def iter_pairs(items: Iterable[Pair]) -> Iterator[Pair]:
    """Iterate pairs a user function returned (generator, list or None)."""
    if items is None:
        return iter(())
    return iter(items)
