"""``minga mpirun``: run an mpi4py program on N ranks with the system's MPI."""

from __future__ import annotations

from typing import Annotated

import typer

from minga.compute.mpi import find_mpi_launcher, run_mpi


def mpirun(
    script: Annotated[str, typer.Argument(help="The Python script every rank runs.")],
    args: Annotated[
        list[str] | None, typer.Argument(help="Arguments passed to the script.", show_default=False)
    ] = None,
    ranks: Annotated[int, typer.Option("-n", "--np", help="Number of MPI ranks.", min=1)] = 2,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Host to place ranks on (repeat it); default: this machine only."),
    ] = None,
    launcher: Annotated[
        str | None, typer.Option("--launcher", help="MPI launcher to use (default: mpirun, else mpiexec).")
    ] = None,
) -> None:
    """Run SCRIPT on N MPI ranks (Open MPI or MPICH), e.g. minga mpirun -n 4 job.py ARGS.

    Everything after SCRIPT is passed to it. The exit status is the launcher's.
    """
    found = find_mpi_launcher(launcher)
    code = run_mpi(ranks, script, args or [], launcher=found, hosts=host or [])
    raise typer.Exit(code)
