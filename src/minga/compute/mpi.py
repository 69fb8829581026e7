"""Launch mpi4py programs with the MPI that the system provides (Open MPI or MPICH).

``minga mpirun -n 4 script.py ARGS`` is :func:`run_mpi` from the command line::

    from minga.compute.mpi import run_mpi

    exit_code = run_mpi(4, "examples/mpi/collectives.py", ["corpus.txt"])

The launcher is ``mpirun`` (or ``mpiexec``) from ``PATH``; its flavour decides the flags:

- Open MPI refuses to start as root without ``--allow-run-as-root`` (containers often run as
  root), and refuses more ranks than cores without ``--oversubscribe``; minga passes both when
  they are needed. In a local run the ranks use shared memory only and Open MPI's runtime
  traffic stays on the loopback interface (``mpirun`` itself still opens its out-of-band
  listener on every interface: Open MPI has no setting to bind it).
- MPICH's Hydra needs neither; a local run starts its ranks with the ``fork`` launcher.

mpi4py's wheels from PyPI carry one build for each MPI ABI (MPICH and Open MPI) and load the
``libmpi`` that the launcher's ranks find, so ``pip install mpi4py`` works with the Debian
packages ``openmpi-bin`` or ``mpich`` without compiling anything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from minga.errors import ComputeError, UsageError

__all__ = [
    "Flavour",
    "MpiCommand",
    "MpiLauncher",
    "find_mpi_launcher",
    "mpi_command",
    "run_mpi",
]

Flavour = Literal["openmpi", "mpich", "unknown"]
"""The MPI implementation behind a launcher."""

_LAUNCHERS = ("mpirun", "mpiexec")


@dataclass(frozen=True)
class MpiLauncher:
    """An MPI launcher found on this machine: its ``path``, ``flavour`` and first ``--version`` line."""

    path: str
    flavour: Flavour
    version: str


@dataclass(frozen=True)
class MpiCommand:
    """What to execute: ``argv`` and the variables ``env`` adds to the caller's environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def _flavour_of(version_text: str) -> Flavour:
    text = version_text.lower()
    if "open mpi" in text or "open-mpi" in text or "openrte" in text:
        return "openmpi"
    if "hydra" in text or "mpich" in text:
        return "mpich"
    return "unknown"


def find_mpi_launcher(name: str | None = None) -> MpiLauncher:
    """Find the MPI launcher: ``name`` if given (a command or a path), else ``mpirun`` or ``mpiexec``.

    Raises:
        UsageError: no launcher is installed (the message says which Debian package brings one).
    """
    candidates = (name,) if name else _LAUNCHERS
    for candidate in candidates:
        path = shutil.which(candidate)
        if path is None:
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"the MPI launcher {path} does not run: {exc}") from exc
        text = (out.stdout + out.stderr).strip()
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        return MpiLauncher(path=path, flavour=_flavour_of(text), version=first)
    wanted = name or " or ".join(_LAUNCHERS)
    raise UsageError(
        f"no MPI launcher ({wanted}) on PATH: install Open MPI (apt-get install openmpi-bin) or MPICH (apt-get install mpich)"
    )


def mpi_command(
    launcher: MpiLauncher,
    ranks: int,
    program: Sequence[str],
    *,
    as_root: bool | None = None,
    cpus: int | None = None,
    hosts: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> MpiCommand:
    """The command that starts ``ranks`` copies of ``program`` through ``launcher``.

    A pure function: it decides the flags and environment, it starts nothing. ``as_root``
    defaults to whether this process runs as root; ``cpus`` (default: the number of cores) decides
    whether Open MPI must be told to oversubscribe. With no ``hosts`` the run is local: Open MPI
    keeps its TCP traffic on the loopback interface. ``extra`` goes to the launcher as is.

    Raises:
        UsageError: ``ranks`` is below 1 or ``program`` is empty.
    """
    if ranks < 1:
        raise UsageError(f"-n must be at least 1, got {ranks}")
    if not program:
        raise UsageError("no program to run: give a script, e.g. minga mpirun -n 4 job.py")
    if as_root is None:
        as_root = os.geteuid() == 0
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    argv = [launcher.path, "-n", str(ranks)]
    env: dict[str, str] = {}
    if launcher.flavour == "openmpi":
        if as_root:
            argv.append("--allow-run-as-root")
        if ranks > cpus:
            argv.append("--oversubscribe")
        if hosts:
            argv += ["--host", ",".join(hosts)]
        else:
            # one machine: ranks talk through shared memory only (no TCP listener of their own),
            # and the runtime's own traffic stays on loopback
            env["OMPI_MCA_btl"] = "self,vader"
            env["OMPI_MCA_oob_tcp_if_include"] = "lo"
        # containers forbid the cross-memory-attach syscalls the shared-memory transport tries first
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
    elif launcher.flavour == "mpich":
        if hosts:
            argv += ["-hosts", ",".join(hosts)]
        else:
            argv += ["-launcher", "fork"]
    elif hosts:
        argv += ["-host", ",".join(hosts)]
    argv += list(extra)
    argv += list(program)
    return MpiCommand(argv=argv, env=env)


def run_mpi(
    ranks: int,
    script: str | os.PathLike[str],
    args: Sequence[str] = (),
    *,
    launcher: MpiLauncher | None = None,
    python: str = sys.executable,
    hosts: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the Python ``script`` with ``args`` on ``ranks`` MPI ranks; return the launcher's exit status.

    Every rank runs ``python script args`` (by default the interpreter running minga, so the ranks
    see the same packages). Variables already set in ``env`` (default: this process's environment)
    win over the ones minga adds.

    Raises:
        UsageError: the script is missing, mpi4py is not installed, or no MPI launcher is found.
        ComputeError: the launcher could not be started.
    """
    path = Path(script)
    if not path.is_file():
        raise UsageError(f"no such script: {path}")
    if importlib.util.find_spec("mpi4py") is None:
        raise UsageError("mpi4py is not installed: pip install 'minga[mpi]'")
    launcher = launcher or find_mpi_launcher()
    command = mpi_command(launcher, ranks, [python, str(path), *args], hosts=hosts)
    base = dict(os.environ if env is None else env)
    full_env = {**command.env, **base}
    try:
        return subprocess.run(command.argv, env=full_env, check=False).returncode
    except OSError as exc:
        raise ComputeError(f"could not start {launcher.path}: {exc}") from exc
