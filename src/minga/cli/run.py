"""``minga run JOBFILE[:Class] INPUT... -o OUTDIR``: run a MapReduce job with live progress."""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from minga.compute import JobProgress, JobRef
from minga.compute import run as run_job
from minga.compute.console import print_summary, user_traceback
from minga.controlplane import jobs_dir
from minga.errors import ComputeError, JobFailed, UsageError
from minga.spec import home_dir


class _Journal:
    """Keeps a job's record in ``<MINGA_HOME>/jobs/`` (when that home exists), where the dashboard
    shows it: ``running`` while it runs, then the record the driver wrote, succeeded or failed."""

    def __init__(self, ref: JobRef, engine: str, inputs: list[str], output: Path) -> None:
        home = home_dir()
        self.path: Path | None = None
        if home.is_dir():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            self.path = jobs_dir(home) / f"{stamp}-{ref.qualname}-{os.getpid()}.json"
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.t0 = time.monotonic()
        self.base: dict[str, Any] = {
            "job": f"{ref.module}:{ref.qualname}", "job_file": ref.path, "engine": engine,
            "started_at": self.started_at, "config": {"inputs": inputs, "output_dir": str(output)},
        }  # fmt: skip
        self.output = output
        self._last_tick = 0.0

    def tick(self, p: JobProgress) -> None:
        """The job's progress, at most twice a second (the engine reports far more often)."""
        now = time.monotonic()
        if now - self._last_tick < 0.5:
            return
        self._last_tick = now
        self.write({"status": "running", "seconds": round(p.elapsed, 2), "input_bytes": p.input_bytes, "progress": {
            "phase": p.phase, "step": p.step, "steps": p.steps, "maps_done": p.maps_done, "maps_total": p.maps_total,
            "reduces_done": p.reduces_done, "reduces_total": p.reduces_total, "bytes_done": p.bytes_done,
            "records_done": p.records_done, "failed_attempts": p.failed_attempts}})  # fmt: skip

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**self.base, **record}, default=str) + "\n", encoding="utf-8")
            tmp.replace(self.path)

    def failed(self, error: BaseException) -> None:
        record: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            record = json.loads((self.output / "_job.json").read_text(encoding="utf-8"))
        if record.get("status") != "failed":
            record = {"status": "failed", "error": str(error) or type(error).__name__,
                      "seconds": round(time.monotonic() - self.t0, 4),
                      "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        self.write(record)


def _last_failure(record: Path) -> str | None:
    """The error (a traceback) of the last failed attempt in the job record ``record``, if any."""
    try:
        doc = json.loads(record.read_text(encoding="utf-8"))
        failed = [a for a in doc["attempts"]["log"] if a.get("status") == "failed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(failed[-1].get("error") or "") or None if failed else None


def run(
    job: Annotated[
        str, typer.Argument(metavar="JOBFILE[:Class]", help="a Python file defining a MapReduce class")
    ],
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="files, globs or directories")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="output directory (must not exist, or be empty)")
    ],
    engine: Annotated[
        str, typer.Option("--engine", help="local, serial, chaos, or an installed engine (dask, ray, spark)")
    ] = "local",
    workers: Annotated[
        int | None, typer.Option("--workers", help="worker processes (local: the CPU count)")
    ] = None,
    reducers: Annotated[
        int | None, typer.Option("--reducers", help="reduce partitions, one output file each")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="scheduler or cluster address, for engines that take one")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing output directory")
    ] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu or gpu, for vectorised jobs (self.config['device']); gpu falls back to cpu"),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="no progress display and no summary")] = False,
) -> None:
    """Run a MapReduce job over INPUT files into OUTDIR, one part file per reducer."""
    if device not in (None, "cpu", "gpu"):
        raise UsageError(f"--device must be cpu or gpu, not {device!r}")
    path, sep, name = job.rpartition(":")
    if not sep or not name.isidentifier():
        path, name = job, ""
    ref = JobRef.from_file(path, name or None)
    console = Console(stderr=True)
    journal = _Journal(ref, engine, inputs, output)
    journal.write({"status": "running"})
    try:
        result = run_job(
            ref, inputs, output, engine=engine, workers=workers, reducers=reducers, address=address,
            overwrite=overwrite, progress=False if quiet else console,
            config={"device": device} if device is not None else None, on_progress=journal.tick,
        )  # fmt: skip
    except JobFailed as exc:
        journal.failed(exc)
        record = output / "_job.json"  # the job record the driver writes, also on failure
        last = _last_failure(record)
        if last:
            console.print(user_traceback(last), markup=False, highlight=False, soft_wrap=True)
        raise ComputeError(f"{exc}\nevery attempt's traceback is in {record}") from None
    except BaseException as exc:
        journal.failed(exc)
        raise
    journal.write(result.record)
    if not quiet:
        print_summary(result, console)
