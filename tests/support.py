"""Helpers for tests that start real servers: free ports, readiness waits, process lifetimes.

Every server a test needs is started on a free loopback port in a temp dir and stopped
when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from minga.discovery.ports import free_port as free_port  # the helpers minga itself uses
from minga.discovery.ports import wait_for_port as wait_for_port

T = TypeVar("T")


@dataclass
class ServerProcess:
    """A server started as a child process in its own process group.

    With ``port`` 0 the child binds a port of its own choosing and says which in its output
    (``log``): ``port_pattern`` is a regular expression whose first group is that port. No other
    process can take the port between its choice and the bind, as one picked by
    :func:`free_port` can be taken. :meth:`start` sets ``port``; started again, the server runs
    ``argv_at(port)``, on the port its clients know.
    """

    argv: list[str]
    port: int
    host: str = "127.0.0.1"
    cwd: Path | None = None
    env: dict[str, str] | None = None
    log: Path | None = None
    port_pattern: str | None = None
    argv_at: Callable[[int], list[str]] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.port == 0 and (self.port_pattern is None or self.log is None):
            raise ValueError("a server on port 0 needs a log and a port_pattern to report its port in")

    def start(self, timeout: float = 15.0) -> ServerProcess:
        reported = self.port_pattern is not None and self.port == 0
        argv = self.argv_at(self.port) if self.argv_at is not None and not reported else self.argv
        offset = self.log.stat().st_size if self.log is not None and self.log.exists() else 0
        out = open(self.log, "ab") if self.log is not None else subprocess.DEVNULL  # noqa: SIM115
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        try:
            self.proc = subprocess.Popen(
                argv, cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own copy of the descriptor
        deadline = time.monotonic() + timeout
        if reported:
            assert self.log is not None and self.port_pattern is not None
            self.port = reported_port(self.log, offset, self.port_pattern, timeout, self.proc)
        wait_for_port(self.host, self.port, max(0.1, deadline - time.monotonic()), self.proc)
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


def reported_port(
    log: Path, offset: int, pattern: str, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> int:
    """The port a child wrote to ``log`` past byte ``offset``: the first group of ``pattern``.

    Raises RuntimeError when ``proc`` exits first, TimeoutError after ``timeout`` seconds.
    """
    regex = re.compile(pattern.encode())
    deadline = time.monotonic() + timeout
    while True:
        if log.exists():
            with log.open("rb") as f:
                f.seek(offset)
                found = regex.search(f.read())
            if found:
                return int(found.group(1))
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before reporting its port in {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no port reported in {log} within {timeout:g}s")
        time.sleep(0.02)


@contextlib.contextmanager
def running(server: ServerProcess, timeout: float = 15.0) -> Iterator[ServerProcess]:
    server.start(timeout)
    try:
        yield server
    finally:
        server.stop()


_serial = itertools.count(1)

NATS_LISTENING = r"Listening for client connections on [^\s]+:(\d+)"
"""What nats-server logs once it listens for clients; the group is the port."""


def nats_server(tmp: Path, *extra: str, jetstream: bool = False, port: int | None = None) -> ServerProcess:
    """A real ``nats-server`` on a loopback port, its state under ``tmp``.

    Without ``port`` the server picks one (``-p -1``) and :meth:`ServerProcess.start` reads it
    from the log; give ``port`` to restart a server where its clients expect it.
    """
    binary = shutil.which("nats-server")
    if binary is None:
        raise RuntimeError(
            "nats-server is not installed: `make test` installs it (Debian package nats-server)"
        )

    def argv_at(port: int) -> list[str]:
        argv = [str(binary), "-a", "127.0.0.1", "-p", str(port) if port else "-1"]
        if jetstream:
            argv += ["-js", "-sd", str(tmp / "js")]
        return argv + list(extra)

    log = tmp / f"nats-server-{port or next(_serial)}.log"
    return ServerProcess(argv_at(port or 0), port or 0, log=log, port_pattern=NATS_LISTENING, argv_at=argv_at)


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


def minga(
    *args: str, home: Path, cwd: Path | None = None, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``minga`` command as a user would, with ``MINGA_HOME`` set to ``home``, on a wide
    terminal (tables are not wrapped); ``stdin`` is typed into it."""
    env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
