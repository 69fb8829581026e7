"""A safety net for a supervisor that died without stopping its replicas (SIGKILL, a crash).

The local provider keeps ``<home>/replicas.json`` (instance -> pid) current; :func:`reap_orphans`
stops what is left of those process groups, after checking that each pid is still the
replica it was (its environment names the same MINGA_INSTANCE and MINGA_HOME).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["REPLICAS_FILE", "reap_orphans", "write_replicas"]

REPLICAS_FILE = "replicas.json"


def write_replicas(home: Path, pids: Mapping[str, int]) -> None:
    """Record the live replicas' pids (atomically)."""
    tmp = home / f".{REPLICAS_FILE}.tmp"
    tmp.write_text(json.dumps(dict(pids), sort_keys=True), encoding="utf-8")
    tmp.replace(home / REPLICAS_FILE)


def _is_replica(pid: int, instance: str, home: Path) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, not ours, or no /proc: do not touch it
        return False
    return f"MINGA_INSTANCE={instance}".encode() in environ and f"MINGA_HOME={home}".encode() in environ


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def reap_orphans(home: Path, grace: float = 5.0) -> list[str]:
    """Stop the replicas a dead supervisor left under ``home``: SIGTERM, then SIGKILL after ``grace``
    seconds. Returns the instances that were found running. Call only when no server runs there."""
    path = home / REPLICAS_FILE
    try:
        recorded: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    found = {iid: pid for iid, pid in recorded.items() if _is_replica(pid, iid, home)}
    for pid in found.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in found.values():
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # another process's exit: nothing to wait on but time, bounded by grace
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return sorted(found)
