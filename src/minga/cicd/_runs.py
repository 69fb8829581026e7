"""Pipeline runs as records in minga's home: ``cicd/runs/<id>.json`` (0600), one per run.

A run is ``queued``, then ``running``, and ends ``succeeded``, ``failed``, ``cancelled`` (by
hand, or ``superseded`` by a newer push of its branch before it started) or ``error`` (the
pipeline could not start: no pipeline file, a commit that does not exist). Records are
rewritten whole (they are small) through a temporary file and a rename, so a reader never sees
half a record.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minga.errors import UsageError
from minga.security import write_private

__all__ = ["ArtifactRecord", "RunRecord", "RunStore", "StepRecord"]

ENDED = frozenset({"succeeded", "failed", "cancelled", "superseded", "error"})


@dataclass
class StepRecord:
    stage: str
    name: str
    status: str = "pending"  # pending | running | succeeded | failed | timeout | cancelled
    exit_code: int | None = None
    started: float | None = None
    ended: float | None = None
    log: str = ""  # the step's log file


@dataclass
class ArtifactRecord:
    name: str
    sha256: str
    size: int
    path: str  # where the store keeps it


@dataclass
class RunRecord:
    id: str
    ref: str
    commit: str
    repo: str
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    reason: str = ""  # why it failed, errored or was cancelled
    steps: list[StepRecord] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)

    @property
    def branch(self) -> str:
        return self.ref.removeprefix("refs/heads/")

    @property
    def ended_yet(self) -> bool:
        return self.status in ENDED

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        steps = [StepRecord(**s) for s in data.pop("steps", [])]
        artifacts = [ArtifactRecord(**a) for a in data.pop("artifacts", [])]
        return cls(**data, steps=steps, artifacts=artifacts)


class RunStore:
    """The runs of one home."""

    def __init__(self, home: Path) -> None:
        self.root = home / "cicd"
        self.runs = self.root / "runs"

    def _path(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def new(self, ref: str, commit: str, repo: str) -> RunRecord:
        self.runs.mkdir(parents=True, exist_ok=True, mode=0o700)
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{commit[:8]}-{os.urandom(2).hex()}"
        record = RunRecord(id=run_id, ref=ref, commit=commit, repo=repo)
        self.save(record)
        return record

    def save(self, record: RunRecord) -> None:
        path = self._path(record.id)
        tmp = path.with_suffix(".tmp")
        write_private(tmp, json.dumps(asdict(record), indent=1))
        tmp.replace(path)

    def get(self, run_id: str) -> RunRecord:
        try:
            return RunRecord.from_json(json.loads(self._path(run_id).read_text()))
        except FileNotFoundError:
            raise UsageError(f"no pipeline run {run_id!r}: `minga pipelines` lists them") from None

    def all(self) -> list[RunRecord]:
        if not self.runs.is_dir():
            return []
        records = []
        for path in self.runs.glob("*.json"):
            try:
                records.append(RunRecord.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # being replaced this instant
        return sorted(records, key=lambda r: r.created)
