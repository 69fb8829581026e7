"""`minga run` and `python job.py` (main(JobClass)): output, progress summary, one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console

from minga.compute.console import demo

JOBS = Path(__file__).resolve().parents[2] / "examples" / "jobs"
TEXT = "".join(f"alpha beta{i % 3} gamma{i % 5}\n" for i in range(2000))


def _minga(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "minga", *args], capture_output=True, text=True, timeout=60)


def _output(out: Path) -> dict[str, int]:
    pairs = [
        json.loads(line) for p in sorted(out.glob("part-*.jsonl")) for line in p.read_text().splitlines()
    ]
    return dict(pairs)


def test_minga_run(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text(TEXT)
    proc = _minga("run", f"{JOBS / 'wordcount.py'}:WordCount", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"),
                  "--workers", "2", "--reducers", "3")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _output(tmp_path / "out") == dict(Counter(TEXT.split()))
    assert len(list((tmp_path / "out").glob("part-*.jsonl"))) == 3
    assert "WordCount" in proc.stderr and "MB/s" in proc.stderr and "map input records" in proc.stderr


def test_python_job_file(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text(TEXT)
    proc = subprocess.run(
        [sys.executable, str(JOBS / "wordcount.py"), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"), "--workers", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _output(tmp_path / "out") == dict(Counter(TEXT.split()))
    record = json.loads((tmp_path / "out" / "_job.json").read_text())
    assert record["job"].endswith(":WordCount") and record["status"] == "succeeded"


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text(TEXT)
    for args, message in [
        (
            ["run", str(tmp_path / "missing.py"), str(tmp_path / "in.txt"), "-o", str(tmp_path / "o")],
            "does not exist",
        ),
        (
            ["run", str(JOBS / "wordcount.py"), str(tmp_path / "nope*.txt"), "-o", str(tmp_path / "o")],
            "matches no file",
        ),
        (
            [
                "run",
                str(JOBS / "wordcount.py"),
                str(tmp_path / "in.txt"),
                "-o",
                str(tmp_path / "o"),
                "--engine",
                "nope",
            ],
            "unknown engine",
        ),
        (
            ["run", f"{JOBS / 'wordcount.py'}:Nope", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o")],
            "has no class Nope",
        ),
    ]:
        proc = _minga(*args)
        assert proc.returncode == 2, proc.stderr
        assert message in " ".join(proc.stderr.split())  # rich wraps long lines
        assert "Traceback" not in proc.stderr


def test_the_demo_step(tmp_path: Path) -> None:
    console = Console(file=io.StringIO(), width=120)
    top = demo(console, size=300_000, work_dir=tmp_path)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "WordCount" in shown and "map input records" in shown and "top words" in shown
    assert len(top) == 10 and all(top[i][1] >= top[i + 1][1] for i in range(9))
    assert list(tmp_path.iterdir()) == []


def test_a_job_that_fails_to_import_shows_its_authors_traceback_only(tmp_path: Path) -> None:
    job = tmp_path / "broken.py"
    job.write_text("from minga.compute import MapReduce\nimport no_such_module_for_minga\n")
    (tmp_path / "in.txt").write_text(TEXT)
    proc = _minga("run", str(job), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: job file {job} cannot be imported:",
        "Traceback (most recent call last):",
        f'  File "{job}", line 2, in <module>',
        "    import no_such_module_for_minga",
        "ModuleNotFoundError: No module named 'no_such_module_for_minga'",
    ]


def test_a_failed_task_shows_the_authors_traceback_and_where_every_attempt_is(tmp_path: Path) -> None:
    job = tmp_path / "divides.py"
    job.write_text(
        "from minga.compute import MapReduce\n\n\ndef helper(line):\n    return 1 / 0\n\n\n"
        "class Divides(MapReduce):\n    def map(self, key, line):\n        yield line, helper(line)\n"
    )
    (tmp_path / "in.txt").write_text("a b\n")
    out = tmp_path / "out"
    proc = _minga("run", str(job), str(tmp_path / "in.txt"), "-o", str(out), "--workers", "1", "-q")
    assert proc.returncode == 1
    assert f'  File "{job}", line 5, in helper' in proc.stderr.splitlines()
    assert "ZeroDivisionError: division by zero" in proc.stderr
    assert "minga/compute" not in proc.stderr  # minga's own frames are left out
    assert proc.stderr.rstrip().endswith(f"every attempt's traceback is in {out / '_job.json'}")
    record = json.loads((out / "_job.json").read_text())
    assert "minga/compute" in record["attempts"]["log"][-1]["error"]  # the record keeps everything
