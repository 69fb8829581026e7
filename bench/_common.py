"""What the benchmarks share: waiting for a server they started to listen.

``python bench/NAME.py`` puts bench/ on ``sys.path``, so a benchmark imports this as ``_common``.
Free ports come from :func:`minga.deploy.free_port`.
"""

from __future__ import annotations

import socket
import subprocess
import time


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> None:
    """Block until 127.0.0.1:``port`` accepts a TCP connection (a child process announces nothing).

    Raises RuntimeError when ``proc`` exits first, TimeoutError after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listened on port {port} within {timeout:g}s") from None
            time.sleep(0.05)
