"""minga mpirun: real mpi4py programs on 2 to 4 ranks of the system's MPI, and the flags it picks."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from minga.compute.mpi import MpiLauncher, find_mpi_launcher, mpi_command
from minga.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mpi" / "collectives.py"


def _minga(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    # own process group, so a hung run takes its ranks down with it
    proc = subprocess.Popen(
        [sys.executable, "-m", "minga", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"minga {' '.join(args)} did not finish in {timeout}s: {err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(11)
    vocab = [f"w{i}" for i in range(300)] + ["ünïcode", "naïve", "x"]
    lines = [" ".join(rng.choices(vocab, k=rng.randint(0, 15))) for _ in range(1501)]
    path = tmp_path_factory.mktemp("mpi") / "text.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_collectives_on_n_ranks_match_plain_python(ranks: int, corpus: Path) -> None:
    result = _minga("mpirun", "-n", str(ranks), str(EXAMPLE), str(corpus))
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])

    lines = corpus.read_text(encoding="utf-8").splitlines()
    expected = Counter(word for line in lines for word in line.split())
    assert report["ranks"] == ranks
    assert report["counts"] == dict(expected)
    assert report["total_words"] == sum(expected.values())
    assert report["longest_line"] == max(len(line) for line in lines)
    # bcast reached every rank, scatter gave each a share, allreduce agreed everywhere
    seen = report["seen"]
    assert [s["rank"] for s in seen] == list(range(ranks))
    assert all(s["settings"] == {"top": 5, "lines": len(lines)} for s in seen)
    assert sum(s["lines"] for s in seen) == len(lines)
    assert {s["total_words"] for s in seen} == {sum(expected.values())}


def test_arguments_after_the_script_reach_the_script(tmp_path: Path) -> None:
    script = tmp_path / "echo_args.py"
    script.write_text(
        "import sys, json\nfrom mpi4py import MPI\n"
        "c = MPI.COMM_WORLD\nv = c.bcast(sys.argv[1:] if c.rank == 0 else None)\n"
        "assert v == sys.argv[1:]\nif c.rank == 0: print(json.dumps(v))\n",
        encoding="utf-8",
    )
    result = _minga("mpirun", "-n", "2", str(script), "--lines", "10", "-n", "x")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["--lines", "10", "-n", "x"]


def test_a_failing_rank_fails_the_run(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text(
        "import sys\nfrom mpi4py import MPI\nif MPI.COMM_WORLD.rank == 1: sys.exit(3)\n", encoding="utf-8"
    )
    result = _minga("mpirun", "-n", "2", str(script))
    assert result.returncode == 3  # the failing rank's status


def test_a_missing_script_is_one_line(tmp_path: Path) -> None:
    result = _minga("mpirun", "-n", "2", str(tmp_path / "nope.py"), timeout=60)
    assert result.returncode == 2
    assert "no such script" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_system_launcher_is_found_and_recognised() -> None:
    launcher = find_mpi_launcher()
    assert launcher.flavour in ("openmpi", "mpich"), launcher
    assert launcher.version
    with pytest.raises(UsageError, match="no MPI launcher"):
        find_mpi_launcher("no-such-mpirun")


OPENMPI = MpiLauncher("/usr/bin/mpirun", "openmpi", "mpirun (Open MPI) 4.1.4")
MPICH = MpiLauncher("/usr/bin/mpiexec", "mpich", "HYDRA build details:")


def test_open_mpi_flags_for_root_and_oversubscription() -> None:
    cmd = mpi_command(OPENMPI, 4, ["python", "a.py"], as_root=True, cpus=2)
    assert cmd.argv == ["/usr/bin/mpirun", "-n", "4", "--allow-run-as-root", "--oversubscribe", "python", "a.py"]
    assert cmd.env["OMPI_MCA_oob_tcp_if_include"] == "lo"
    assert cmd.env["OMPI_MCA_btl"] == "self,vader"
    plain = mpi_command(OPENMPI, 2, ["python", "a.py"], as_root=False, cpus=2)
    assert plain.argv == ["/usr/bin/mpirun", "-n", "2", "python", "a.py"]
    remote = mpi_command(OPENMPI, 2, ["python", "a.py"], as_root=False, cpus=8, hosts=["h1", "h2"])
    assert remote.argv == ["/usr/bin/mpirun", "-n", "2", "--host", "h1,h2", "python", "a.py"]
    assert "OMPI_MCA_oob_tcp_if_include" not in remote.env and "OMPI_MCA_btl" not in remote.env


def test_mpich_flags() -> None:
    cmd = mpi_command(MPICH, 3, ["python", "a.py"], as_root=True, cpus=1)
    assert cmd.argv == ["/usr/bin/mpiexec", "-n", "3", "-launcher", "fork", "python", "a.py"]
    assert cmd.env == {}


def test_bad_rank_counts_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        mpi_command(OPENMPI, 0, ["python", "a.py"])
    with pytest.raises(UsageError, match="no program"):
        mpi_command(OPENMPI, 2, [])
