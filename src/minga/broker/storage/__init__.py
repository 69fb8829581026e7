"""Where streams keep their messages: a memory store and a crash-safe file store.

:class:`MemoryStore` indexes messages in memory and is also the base of
:class:`FileStore`, which logs every change to checksummed segment files and
acknowledges durability per :class:`FsyncPolicy` (fsync before the acknowledgement by
default). Recovery replays the segments and drops a torn tail.
"""

from __future__ import annotations

from minga.broker.storage._file import FileStore, FileStoreOptions, FsyncPolicy
from minga.broker.storage._memory import (
    DurableCallback,
    MemoryStore,
    Sizer,
    StoredMessage,
    file_size,
    memory_size,
)

__all__ = [
    "DurableCallback",
    "FileStore",
    "FileStoreOptions",
    "FsyncPolicy",
    "MemoryStore",
    "Sizer",
    "StoredMessage",
    "file_size",
    "memory_size",
]
