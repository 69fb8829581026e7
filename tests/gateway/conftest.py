"""Real upstream replicas for the gateway tests: tests/gateway/replica.py as subprocesses."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import ServerProcess

REPLICA = Path(__file__).with_name("replica.py")
LISTENING = r"replica listening on port (\d+)"


def replica(tmp: Path, name: str) -> ServerProcess:
    """One replica (not started); it binds a port of its own and reports it (``.port`` once started)."""

    def argv_at(port: int) -> list[str]:
        return [sys.executable, str(REPLICA), str(port), name]

    return ServerProcess(argv_at(0), 0, log=tmp / f"{name}.log", port_pattern=LISTENING, argv_at=argv_at)


@pytest.fixture
def make_replica(tmp_path: Path) -> Iterator[Callable[[str], ServerProcess]]:
    """``make_replica("x")`` is a replica not started yet; it is killed after the test."""
    made: list[ServerProcess] = []

    def make(name: str) -> ServerProcess:
        made.append(replica(tmp_path, name))
        return made[-1]

    yield make
    for proc in made:
        proc.kill()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., list[ServerProcess]]]:
    """``replicas("a", "b")`` starts one replica per name; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(*names: str) -> list[ServerProcess]:
        procs = [replica(tmp_path, n) for n in names]
        for p in procs:
            p.start()
            started.append(p)
        return procs

    yield start
    for p in started:
        p.kill()
