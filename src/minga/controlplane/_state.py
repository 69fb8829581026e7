"""The state file under MINGA_HOME that lets ``minga status``, ``logs`` and ``down`` find the server."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from minga.errors import UsageError

__all__ = ["STATE_FILE", "ServerState", "pid_alive", "read_state"]

STATE_FILE = "server.json"


def pid_alive(pid: int) -> bool:
    """A process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


@dataclass(frozen=True)
class ServerState:
    """Where a running control plane answers: its HTTP API ``url``, its ``pid``, the broker's ``nats_url``."""

    url: str
    pid: int
    home: str
    spec: str | None
    nats_url: str
    started_at: float

    def write(self, home: Path) -> None:
        """Write atomically, so a reader never sees half a file."""
        tmp = home / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(home / STATE_FILE)

    @staticmethod
    def remove(home: Path) -> None:
        (home / STATE_FILE).unlink(missing_ok=True)


def read_state(home: Path, *, required: bool = True) -> ServerState | None:
    """The running server's state under ``home``; a stale file (its pid is gone) counts as none.

    Raises UsageError when ``required`` and no server runs there.
    """
    path = home / STATE_FILE
    state: ServerState | None = None
    with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
        state = ServerState(**json.loads(path.read_text(encoding="utf-8")))
    if state is not None and not pid_alive(state.pid):
        state = None
    if state is None and required:
        raise UsageError(f"no minga server is running for {home}: start one with `minga up`")
    return state
