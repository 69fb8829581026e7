"""Running a job from Python, from ``python job.py`` (:func:`main`) and for the demo."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from minga.compute._api import JobRef, MapReduce
from minga.compute._corpus import generate_corpus
from minga.compute._device import gpu_unavailable
from minga.compute._driver import JobProgress, JobResult, make_job
from minga.compute._progress import ProgressDisplay, print_summary
from minga.compute._registry import engine_names, get_engine
from minga.compute._tasks import DEFAULT_MEMORY_BUDGET
from minga.errors import MingaError, UsageError

__all__ = ["demo", "main", "run"]


def run(
    job: type[MapReduce] | JobRef,
    inputs: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    engine: str = "local",
    workers: int | None = None,
    reducers: int | None = None,
    address: str | None = None,
    config: Mapping[str, Any] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    split_size: int | None = None,
    overwrite: bool = False,
    progress: bool | Console = False,
    engine_options: Mapping[str, Any] | None = None,
    on_progress: Callable[[JobProgress], None] | None = None,
) -> JobResult:
    """Run ``job`` over ``inputs`` into ``output_dir`` on the engine named ``engine``.

    ``progress`` True (or a rich Console) shows the live display; ``on_progress`` is called with
    the job's :class:`JobProgress` whenever the engine reports (often: throttle what it does). Raises
    :class:`~minga.errors.UsageError` for bad arguments and
    :class:`~minga.errors.JobFailed` when a task exhausts its attempts.
    """
    eng = get_engine(engine, workers=workers, address=address, **dict(engine_options or {}))
    if (config or {}).get("device") == "gpu":
        reason = gpu_unavailable()
        if reason is not None:  # said once here, not by every task that falls back
            notice = progress if isinstance(progress, Console) else Console(stderr=True)
            notice.print(f"[yellow]--device gpu runs on the CPU:[/] {escape(reason)}", highlight=False)
    try:
        parallelism = int(getattr(eng, "workers", None) or workers or os.cpu_count() or 2)
        spec = make_job(
            job, inputs, output_dir, reducers=reducers, config=config, memory_budget=memory_budget,
            split_size=split_size, overwrite=overwrite, parallelism=parallelism,
        )  # fmt: skip
        state = JobProgress(on_tick=on_progress)
        if progress is False:
            return eng.run(spec, state)
        console = progress if isinstance(progress, Console) else Console(stderr=True)
        with ProgressDisplay(state, console):
            return eng.run(spec, state)
    finally:
        eng.close()


def main(job: type[MapReduce], argv: Sequence[str] | None = None) -> None:
    """``python job.py INPUT... -o OUT``: run ``job`` with progress, then print a summary.

    A job file ends with ``if __name__ == "__main__": main(WordCount)``; ``argv`` defaults to
    the command line.

    A user's mistake prints one line and exits with status 2; a failed job exits with 1.
    """
    parser = argparse.ArgumentParser(description=(job.__doc__ or job.__name__).strip().splitlines()[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files, globs or directories")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.add_argument("--engine", default="local", choices=engine_names())
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--reducers", type=int, default=None)
    parser.add_argument(
        "--address", default=None, help="scheduler or cluster address, for engines that take one"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument(
        "--device", choices=["cpu", "gpu"], default=None,
        help="for vectorised jobs (self.config['device']); gpu falls back to cpu without a GPU",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display and no summary")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        result = run(
            JobRef.of(job), args.inputs, args.output, engine=args.engine, workers=args.workers,
            reducers=args.reducers, address=args.address, overwrite=args.overwrite,
            progress=False if args.quiet else console,
            config={"device": args.device} if args.device is not None else None,
        )  # fmt: skip
    except UsageError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except MingaError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    if not args.quiet:
        print_summary(result, console)


def demo(
    console: Console | None = None,
    *,
    job_file: str | os.PathLike[str] | None = None,
    size: int = 16 << 20,
    workers: int = 2,
    work_dir: str | os.PathLike[str] | None = None,
) -> list[tuple[str, int]]:
    """The ``make demo`` step: generate a small Zipf corpus (``size`` bytes), run
    ``examples/jobs/wordcount.py`` on it with the local engine, showing progress and a summary,
    and print the ten most frequent words, which it returns. Nothing is left on disk."""
    console = console or Console()
    path = Path(job_file) if job_file is not None else _find_example("wordcount.py")
    ref = JobRef.from_file(path)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="minga-demo-") as tmp:
        corpus = generate_corpus(Path(tmp) / "corpus.txt", size, seed=7)
        console.print(f"word count over {size / 1e6:.0f} MB of Zipf-distributed text with {workers} workers")
        result = run(ref, [corpus], Path(tmp) / "out", workers=workers, progress=console)
        print_summary(result, console)
        top = sorted(result.read(), key=lambda kv: (-kv[1], kv[0]))[:10]
        console.print("top words: " + ", ".join(f"{w} {n:,}" for w, n in top))
        return top


def _find_example(name: str) -> Path:
    for base in (Path.cwd(), *Path(__file__).resolve().parents):
        candidate = base / "examples" / "jobs" / name
        if candidate.is_file():
            return candidate
    raise UsageError(f"examples/jobs/{name} not found: run the demo from a minga checkout")
