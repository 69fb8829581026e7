"""Helpers for tests that start real servers: free ports, readiness waits, process lifetimes.

Every server a test needs is started on a free loopback port in a temp dir and stopped
when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from minga.discovery import free_port as free_port  # the helpers minga itself uses
from minga.discovery import wait_for_port as wait_for_port

T = TypeVar("T")


@dataclass
class ServerProcess:
    """A server started as a child process in its own process group."""

    argv: list[str]
    port: int
    host: str = "127.0.0.1"
    cwd: Path | None = None
    env: dict[str, str] | None = None
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, timeout: float = 15.0) -> ServerProcess:
        out = open(self.log, "ab") if self.log is not None else subprocess.DEVNULL  # noqa: SIM115
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own copy of the descriptor
        wait_for_port(self.host, self.port, timeout, self.proc)
        return self

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)


@contextlib.contextmanager
def running(server: ServerProcess, timeout: float = 15.0) -> Iterator[ServerProcess]:
    server.start(timeout)
    try:
        yield server
    finally:
        server.stop()


def nats_server(tmp: Path, *extra: str, jetstream: bool = False, port: int | None = None) -> ServerProcess:
    """A real ``nats-server`` on a free loopback port, its state under ``tmp``."""
    binary = shutil.which("nats-server")
    if binary is None:
        raise RuntimeError(
            "nats-server is not installed: `make test` installs it (Debian package nats-server)"
        )
    port = port or free_port()
    argv: list[str] = [binary, "-a", "127.0.0.1", "-p", str(port)]
    if jetstream:
        argv += ["-js", "-sd", str(tmp / "js")]
    argv += list(extra)
    return ServerProcess(argv, port, log=tmp / f"nats-server-{port}.log")


def file_server(kind: str, conf: Path, port: int, env: dict[str, str], log: Path) -> ServerProcess:
    """``nats-server -c conf`` (``kind`` "nats-server") or ``minga broker -c conf``, not started yet,
    listening on ``port`` (which the file sets) with ``env`` added to the environment."""
    if kind == "nats-server":
        binary = shutil.which("nats-server")
        if binary is None:
            raise RuntimeError("nats-server is not installed: `make test` installs it (Debian package nats-server)")
        argv = [binary, "-c", str(conf)]
    else:
        argv = python_module("minga", ["broker", "-c", str(conf)])
    return ServerProcess(argv, port, env=env, log=log)


def python_module(module: str, args: Sequence[str]) -> list[str]:
    """argv that runs ``python -m module args`` with the interpreter running the tests."""
    import sys

    return [sys.executable, "-m", module, *args]


async def nats_barrier(nc: Any) -> None:
    """Wait until the server has processed everything nats-py client ``nc`` sent before this call.

    ``nc.flush()`` alone is not such a barrier: nats-py writes its PING straight to the socket
    while SUB/PUB commands may still sit in its pending buffer, so the PONG can come back before
    the server saw them. The first flush gets the pending commands written; the second PING
    travels behind them.
    """
    await nc.flush()
    await nc.flush()


async def eventually(
    what: str, check: Callable[[], Awaitable[T]], seconds: float = 30, every: float = 0.3
) -> T:
    """Await ``check()`` every ``every`` seconds until it returns something true, and return that;
    fail the test, naming ``what``, once ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(every)
