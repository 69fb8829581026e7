"""`minga run` keeps its job record where the dashboard looks (MINGA_HOME/jobs), failed runs too,
and only when that home exists."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from minga.controlplane import jobs_dir
from minga.controlplane._dashboard import ControlPlaneSource

HERE = Path(__file__).parent
WORDCOUNT = HERE.parents[1] / "examples" / "jobs" / "wordcount.py"


def run(job: Path, corpus: Path, out: Path, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MINGA_HOME"}
    if home.exists():
        env["MINGA_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "minga", "run", str(job), str(corpus), "-o", str(out), "-q", "--workers", "1"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_succeeded_and_failed_runs_are_recorded_for_the_dashboard(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("to be or not to be\n")
    home = tmp_path / "home"
    home.mkdir()
    ok = run(WORDCOUNT, corpus, tmp_path / "ok", home, tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = run(HERE / "failing_job.py", corpus, tmp_path / "bad", home, tmp_path)
    assert bad.returncode != 0
    jobs = asyncio.run(ControlPlaneSource(home=home).jobs())
    assert sorted(j["status"] for j in jobs) == ["failed", "succeeded"]
    failed = next(j for j in jobs if j["status"] == "failed")
    assert failed["job"].endswith(":Broken") and "cannot read" in failed["error"]
    done = next(j for j in jobs if j["status"] == "succeeded")
    assert done["counters"]["minga"]["map input records"] == 1 and done["started_at"]
    assert len(list(jobs_dir(home).glob("*.json"))) == 2


def test_no_home_no_record(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("x\n")
    home = tmp_path / "absent"
    ok = run(WORDCOUNT, corpus, tmp_path / "ok", home, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert not home.exists() and not (tmp_path / ".minga").exists()
