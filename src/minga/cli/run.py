"""``minga run JOBFILE[:Class] INPUT... -o OUTDIR``: run a MapReduce job with live progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from minga.compute import JobRef, print_summary
from minga.compute import run as run_job
from minga.errors import UsageError


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
    result = run_job(
        ref, inputs, output, engine=engine, workers=workers, reducers=reducers, address=address,
        overwrite=overwrite, progress=False if quiet else console,
        config={"device": device} if device is not None else None,
    )  # fmt: skip
    if not quiet:
        print_summary(result, console)
