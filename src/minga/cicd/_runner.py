"""Running a pipeline: a clean checkout of the commit, each step a process, logs, artifacts.

One run at a time per branch: a run waits for the branch's lock (a file lock, released by the
kernel if its holder dies), and a run still queued when a newer push of its branch arrives is
``superseded`` and never starts. A running one is stopped by :meth:`PipelineRunner.cancel`.

Each step runs ``bash -eo pipefail -c RUN`` in its own process group, in the checkout, with an
environment of its own: ``PATH``, ``HOME``, ``LANG`` from the runner, then ``MINGA_COMMIT``,
``MINGA_REF``, ``MINGA_CACHE`` (kept between runs of the branch), the step's ``env`` and its
secrets. What a step prints goes to its log (0600) line by line, every secret value masked as
``***``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TextIO

from minga.cicd._pipeline import Pipeline, Step, load_pipeline
from minga.cicd._runs import ArtifactRecord, RunRecord, RunStore, StepRecord
from minga.errors import MingaError, UsageError
from minga.security import SecretStore, private_umask

__all__ = ["PipelineRunner"]

_BRANCH_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_POLL = 0.2  # seconds between looks at a running step for a cancel


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300)


class PipelineRunner:
    """Triggers, runs and cancels the pipeline runs of one home.

    ``on_line(text)`` receives every log line as it is written (``[stage/step] line``), for a
    caller that shows them live.
    """

    def __init__(self, home: Path, *, on_line: Callable[[str], None] | None = None) -> None:
        self.home = home
        self.store = RunStore(home)
        self.on_line = on_line or (lambda _text: None)

    # -- queueing -------------------------------------------------------------------------

    def trigger(self, repo: Path, ref: str, commit: str) -> RunRecord:
        """Queue a run of ``commit`` (pushed to ``ref`` of ``repo``); older queued runs of the
        same branch are superseded."""
        record = self.store.new(ref, commit, str(repo))
        for older in self.store.all():
            if older.id != record.id and older.branch == record.branch and older.status == "queued":
                older.status, older.reason = "superseded", f"a newer push of {record.branch}: run {record.id}"
                older.ended = time.time()
                self.store.save(older)
        return record

    def cancel(self, run_id: str) -> RunRecord:
        """Stop a run: a queued one never starts, a running one has its step killed."""
        record = self.store.get(run_id)
        if record.ended_yet:
            raise UsageError(f"run {run_id} has already ended ({record.status})")
        (self.store.runs / f"{run_id}.cancel").touch()
        if record.status == "queued":
            record.status, record.reason, record.ended = "cancelled", "cancelled by hand", time.time()
            self.store.save(record)
        return record

    def _cancelled(self, run_id: str) -> bool:
        return (self.store.runs / f"{run_id}.cancel").exists()

    @contextlib.contextmanager
    def _branch_lock(self, branch: str) -> Iterator[None]:
        locks = self.store.root / "locks"
        locks.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (locks / f"{_BRANCH_SAFE.sub('_', branch)}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if this process dies
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- running --------------------------------------------------------------------------

    def execute(self, run_id: str) -> RunRecord:
        """Run a queued run to its end (waiting for its branch's turn) and return its record."""
        record = self.store.get(run_id)
        with self._branch_lock(record.branch):
            record = self.store.get(run_id)
            if record.status != "queued":
                return record  # superseded or cancelled while it waited
            record.status, record.started, record.pid = "running", time.time(), os.getpid()
            self.store.save(record)
            workdir = Path(tempfile.mkdtemp(prefix="minga-pipeline-"))
            try:
                self._run(record, workdir / "checkout")
            except MingaError as exc:
                record.status, record.reason = "error", str(exc)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
                record.ended = time.time()
                self.store.save(record)
        return record

    def _run(self, record: RunRecord, checkout: Path) -> None:
        cloned = _git("clone", "--quiet", "--no-checkout", record.repo, str(checkout))
        if cloned.returncode != 0:
            raise UsageError(f"cannot clone {record.repo}: {cloned.stderr.strip()}")
        checked = _git("checkout", "--quiet", "--detach", record.commit, cwd=checkout)
        if checked.returncode != 0:
            raise UsageError(f"cannot check out {record.commit}: {checked.stderr.strip()}")
        pipeline = load_pipeline(checkout)
        record.steps = [
            StepRecord(stage.name, step.name) for stage in pipeline.stages for step in stage.steps
        ]
        self.store.save(record)
        secrets = self._secrets(pipeline)
        for stage in pipeline.stages:
            for step in stage.steps:
                status = self._step(record, stage.name, step, checkout, secrets)
                if status != "succeeded":
                    record.status = "cancelled" if status == "cancelled" else "failed"
                    record.reason = f"step {stage.name}/{step.name} {status}"
                    for rest in record.steps:
                        if rest.status == "pending":
                            rest.status = "skipped"
                    return
                record.artifacts += self._keep_artifacts(step, checkout)
                self.store.save(record)
        record.status = "succeeded"

    def _secrets(self, pipeline: Pipeline) -> dict[str, str]:
        names = {name for stage in pipeline.stages for step in stage.steps for name in step.secrets.values()}
        if not names:
            return {}
        store = SecretStore(self.home)
        values = {}
        for name in names:
            try:
                values[name] = store.get(name).decode()
            except MingaError:
                raise UsageError(
                    f"the pipeline needs the secret {name!r}: `minga secret set {name}`"
                ) from None
        return values

    def _environment(self, record: RunRecord, step: Step, secrets: dict[str, str]) -> dict[str, str]:
        cache = self.store.root / "cache" / _BRANCH_SAFE.sub("_", record.branch)
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        env |= {"MINGA_COMMIT": record.commit, "MINGA_REF": record.ref, "MINGA_CACHE": str(cache)}
        env |= step.env
        env |= {var: secrets[name] for var, name in step.secrets.items()}
        return env

    def _step(
        self, record: RunRecord, stage: str, step: Step, checkout: Path, secrets: dict[str, str]
    ) -> str:
        entry = next(s for s in record.steps if (s.stage, s.name) == (stage, step.name))
        logs = self.store.root / "logs" / record.id
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = logs / f"{stage}-{step.name}.log"
        entry.status, entry.started, entry.log = "running", time.time(), str(log_path)
        self.store.save(record)
        masks = sorted((v for v in secrets.values() if v), key=len, reverse=True)
        process = subprocess.Popen(
            ["bash", "-eo", "pipefail", "-c", step.run],
            cwd=checkout,
            env=self._environment(record, step, secrets),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        with private_umask(), log_path.open("w", encoding="utf-8") as log:
            reader = threading.Thread(
                target=self._copy_lines,
                args=(process.stdout, log, f"[{stage}/{step.name}] ", masks),
                daemon=True,
            )
            reader.start()
            status = self._wait(process, step.timeout, record.id)
            reader.join(timeout=10)
        entry.exit_code = process.returncode
        entry.status, entry.ended = status, time.time()
        self.store.save(record)
        return status

    def _copy_lines(self, stream: IO[bytes], log: TextIO, prefix: str, masks: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            for secret in masks:
                line = line.replace(secret, "***")
            log.write(line + "\n")
            log.flush()
            self.on_line(prefix + line)

    def _wait(self, process: subprocess.Popen[bytes], timeout: float, run_id: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                code = process.wait(timeout=_POLL)
            except subprocess.TimeoutExpired:
                if self._cancelled(run_id):
                    _kill_group(process)
                    return "cancelled"
                if time.monotonic() > deadline:
                    _kill_group(process)
                    return "timeout"
                continue
            return "succeeded" if code == 0 else "failed"

    def _keep_artifacts(self, step: Step, checkout: Path) -> list[ArtifactRecord]:
        kept = []
        for pattern in step.artifacts:
            for path in sorted(checkout.glob(pattern)):
                if not path.is_file() or not path.resolve().is_relative_to(checkout.resolve()):
                    continue
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                target = self.store.root / "artifacts" / digest / path.name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not target.exists():
                    shutil.copyfile(path, target)
                    target.chmod(0o600)
                kept.append(ArtifactRecord(path.name, digest, path.stat().st_size, str(target)))
        return kept


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
