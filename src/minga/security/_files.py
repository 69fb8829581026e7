"""Files only their owner reads: minga's home is 0700, what lies in it 0600.

The control plane runs with a umask of 077 (:func:`private_umask`), so every file and directory
it or its replicas create afterwards is private; :func:`secure_home` also tightens what an
earlier version left readable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_umask", "secure_home", "write_private"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def secure_home(home: Path) -> None:
    """Create ``home`` (mode 0700) and make everything already under it private: directories
    0700, files 0600 (symbolic links are left alone)."""
    home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(home, PRIVATE_DIR)
    for root, dirs, files in os.walk(home):
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(path, PRIVATE_DIR)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(path, PRIVATE_FILE)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Within the block, new files are created 0600 and directories 0700 (umask 077);
    the previous umask comes back after it."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically, the file 0600 from its first byte."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, path)
