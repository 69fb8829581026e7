"""Vectorised word count and group-by-sum on the GPU with CuPy, on the CPU with NumPy otherwise.

One code path runs on both array libraries; :func:`array_backend` picks CuPy when
``device="gpu"`` is asked for and a GPU is usable, NumPy when it is not (the reason is kept in
``ArrayBackend.reason``)::

    from minga.compute.gpu import array_backend, word_count

    counts = word_count(b"to be or not to be", array_backend("gpu"))
    assert counts == {b"be": 2, b"not": 1, b"or": 1, b"to": 2}

**Word count** splits bytes on ASCII whitespace exactly as ``bytes.split()`` does and returns
the same counts as ``collections.Counter(data.split())``, keys sorted. It finds word boundaries
with array operations, packs each word of up to 8 bytes into one 64-bit key (9 to 16 bytes
into two keys, up to 32 bytes into four) and counts the keys with a sort (``unique``).
Words longer than 32 bytes, rare in text, are counted on the host. Text that contains NUL
bytes is counted on the host entirely, because zero is the packing's padding.

**Group-by-sum** sums ``values`` per distinct key of an integer ``keys`` array. Integer sums
are exact on both devices. Float sums on the CPU add in input order, like a Python loop; on
the GPU they are added in an unspecified order and may differ in the last bits.

CuPy is an optional extra (``pip install 'minga[gpu]'``, CUDA 12).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from minga.compute._device import cupy_or_reason, gpu_unavailable
from minga.errors import UsageError

__all__ = [
    "ArrayBackend",
    "Device",
    "PackedCounts",
    "array_backend",
    "count_packed",
    "gpu_unavailable",
    "group_by_sum",
    "unpack_counts",
    "word_count",
]

Device = Literal["cpu", "gpu"]
"""Where vectorised work runs."""

MAX_PACKED_WORDS = 4
"""Words up to ``8 * MAX_PACKED_WORDS`` bytes are counted as packed keys on the device."""

# bytes.split() splits on these six bytes and on nothing else
_WHITESPACE = np.zeros(256, dtype=np.bool_)
_WHITESPACE[[0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C]] = True


@dataclass(frozen=True)
class ArrayBackend:
    """An array library and the device it computes on.

    ``xp`` is :mod:`cupy` or :mod:`numpy`; ``device`` where the work runs; ``reason`` says why a
    GPU asked for is not used (empty when it is, or when the CPU was asked for).
    """

    xp: Any
    device: Device
    reason: str = ""

    def asarray(self, data: Any) -> Any:
        """``data`` (bytes, a NumPy or CuPy array) as an array on this backend's device."""
        if isinstance(data, bytes | bytearray | memoryview):
            data = np.frombuffer(data, dtype=np.uint8)
        return self.xp.asarray(data)

    def to_host(self, array: Any) -> np.ndarray[Any, Any]:
        """``array`` as a NumPy array in host memory."""
        if self.device == "gpu":
            return np.asarray(self.xp.asnumpy(array))
        return np.asarray(array)

    def synchronize(self) -> None:
        """Wait for the device's queued work (a timing point); nothing to wait for on the CPU."""
        if self.device == "gpu":
            self.xp.cuda.get_current_stream().synchronize()


def array_backend(device: Device | str = "cpu") -> ArrayBackend:
    """The backend for ``device``: CuPy for ``"gpu"`` when a GPU is usable, NumPy otherwise.

    Raises:
        UsageError: ``device`` is neither ``"cpu"`` nor ``"gpu"``.
    """
    if device == "cpu":
        return ArrayBackend(np, "cpu")
    if device != "gpu":
        raise UsageError(f"--device must be cpu or gpu, not {device!r}")
    cupy, reason = cupy_or_reason()
    if cupy is None:
        return ArrayBackend(np, "cpu", reason)
    return ArrayBackend(cupy, "gpu")


@dataclass
class PackedCounts:
    """Word counts still on the device: for each packing width k (1..4), the distinct words as
    ``(k, n)`` uint64 keys and their counts; plus the words that were counted on the host."""

    keys: list[Any]
    counts: list[Any]
    host: Counter[bytes]


def _word_bounds(xp: Any, text: Any) -> tuple[Any, Any]:
    """Start (inclusive) and end (exclusive) offsets of every word of the uint8 array ``text``."""
    n = int(text.shape[0])
    inside = xp.zeros(n + 2, dtype=xp.int8)
    inside[1:-1] = ~xp.asarray(_WHITESPACE)[text]
    edge = inside[1:] - inside[:-1]  # +1 where a word starts, -1 one past where it ends
    return xp.flatnonzero(edge == 1), xp.flatnonzero(edge == -1)


# MASKS[k] keeps the low k bytes of a 64-bit key
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _pack(xp: Any, words: Any, starts: Any, lengths: Any, width: int) -> Any:
    """``(width, n)`` uint64 keys: byte j of a word goes to key j // 8, bits 8 * (j % 8); zero-padded.

    ``words`` is the zero-padded text viewed as little-endian uint64: the 8 bytes from any
    offset are two aligned words shifted together, so each key costs two gathers, not eight.
    """
    keys = xp.empty((width, int(starts.shape[0])), dtype=xp.uint64)
    masks = xp.asarray(_MASKS)
    for c in range(width):
        at = starts + 8 * c
        shift = ((at % 8) * 8).astype(xp.uint64)
        low = words[at // 8] >> shift
        high = words[at // 8 + 1] << ((xp.uint64(64) - shift) & xp.uint64(63))
        high *= (shift != 0).astype(xp.uint64)  # a shift by 64 is no shift at all in C
        keep = xp.clip(lengths - 8 * c, 0, 8)
        keys[c] = (low | high) & masks[keep]
    return keys


def _count_rows(xp: Any, keys: Any) -> tuple[Any, Any]:
    """Distinct columns of the ``(k, n)`` key array and how often each occurs."""
    if keys.shape[0] == 1:
        uniq, counts = xp.unique(keys[0], return_counts=True)
        return uniq[None, :], counts
    order = xp.lexsort(xp.ascontiguousarray(keys[::-1]))  # the primary key is the last row
    ordered = keys[:, order]
    n = int(ordered.shape[1])
    change = xp.ones(n, dtype=xp.bool_)
    change[1:] = xp.any(ordered[:, 1:] != ordered[:, :-1], axis=0)
    first = xp.flatnonzero(change)
    bounds = xp.empty(int(first.shape[0]) + 1, dtype=first.dtype)
    bounds[:-1] = first
    bounds[-1] = n
    return ordered[:, first], xp.diff(bounds)


def count_packed(text: Any, backend: ArrayBackend, host_text: bytes | None = None) -> PackedCounts:
    """Count the words of ``text`` (a uint8 array already on ``backend``'s device); results stay there.

    ``host_text`` (the same bytes in host memory) serves the rare words longer than 32 bytes;
    without it they are copied from the device.
    """
    xp = backend.xp
    if int(text.shape[0]) == 0:
        return PackedCounts([], [], Counter())
    if bool((text == 0).any()):
        data = host_text if host_text is not None else backend.to_host(text).tobytes()
        return PackedCounts([], [], Counter(data.split()))
    starts, ends = _word_bounds(xp, text)
    lengths = ends - starts
    n = int(text.shape[0])
    padded = xp.zeros((n + 8 * MAX_PACKED_WORDS + 16) // 8 * 8, dtype=xp.uint8)
    padded[:n] = text
    words = padded.view(xp.uint64)
    keys: list[Any] = []
    counts: list[Any] = []
    for width in range(1, MAX_PACKED_WORDS + 1):
        sel = xp.flatnonzero((lengths > 8 * (width - 1)) & (lengths <= 8 * width))
        if int(sel.shape[0]) == 0:
            continue
        k, c = _count_rows(xp, _pack(xp, words, starts[sel], lengths[sel], width))
        keys.append(k)
        counts.append(c)
    host: Counter[bytes] = Counter()
    long_words = xp.flatnonzero(lengths > 8 * MAX_PACKED_WORDS)
    if int(long_words.shape[0]):
        s = backend.to_host(starts[long_words])
        e = backend.to_host(ends[long_words])
        data = host_text if host_text is not None else backend.to_host(text).tobytes()
        host.update(data[a:b] for a, b in zip(s.tolist(), e.tolist(), strict=True))
    return PackedCounts(keys, counts, host)


def unpack_counts(packed: PackedCounts, backend: ArrayBackend) -> dict[bytes, int]:
    """Bring :class:`PackedCounts` to the host as ``{word: count}``, sorted by word."""
    out: dict[bytes, int] = dict(packed.host)
    for keys, counts in zip(packed.keys, packed.counts, strict=True):
        k = backend.to_host(keys).astype("<u8")  # (width, n)
        raw = np.ascontiguousarray(k.T).view(np.uint8)  # (n, 8 * width): the word's bytes, zero-padded
        for row, n in zip(raw, backend.to_host(counts).tolist(), strict=True):
            out[row.tobytes().rstrip(b"\0")] = int(n)
    return dict(sorted(out.items()))


def word_count(data: bytes | Any, backend: ArrayBackend | None = None) -> dict[bytes, int]:
    """``{word: count}`` of ``data`` split on ASCII whitespace, sorted by word: ``Counter(data.split())``.

    ``data`` is bytes or a uint8 array (NumPy, or CuPy already on the GPU).
    """
    backend = backend or array_backend("cpu")
    host_text = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else None
    text = backend.asarray(data)
    return unpack_counts(count_packed(text, backend, host_text), backend)


def group_by_sum(
    keys: Any, values: Any, backend: ArrayBackend | None = None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The distinct ``keys`` (sorted) and the sum of ``values`` for each, as NumPy arrays.

    ``keys`` must be integers; ``values`` integers (exact) or floats (see the module notes).

    Raises:
        UsageError: the arrays differ in length or the keys are not integers.
    """
    backend = backend or array_backend("cpu")
    xp = backend.xp
    k = xp.asarray(keys)
    v = xp.asarray(values)
    if k.shape != v.shape or k.ndim != 1:
        raise UsageError(f"group_by_sum needs two 1-d arrays of one length, got {k.shape} and {v.shape}")
    if k.dtype.kind not in "iu":
        raise UsageError(f"group_by_sum needs integer keys, got {k.dtype}")
    if int(k.shape[0]) == 0:
        return np.empty(0, dtype=k.dtype), np.empty(0, dtype=v.dtype)
    if v.dtype.kind == "f":
        uniq, inverse = xp.unique(k, return_inverse=True)
        sums = xp.bincount(inverse.ravel(), weights=v, minlength=int(uniq.shape[0])).astype(v.dtype)
        return backend.to_host(uniq), backend.to_host(sums)
    acc = xp.int64 if v.dtype.kind in "ib" else xp.uint64
    order = xp.argsort(k, kind="stable")
    ks = k[order]
    n = int(ks.shape[0])
    change = xp.ones(n, dtype=xp.bool_)
    change[1:] = ks[1:] != ks[:-1]
    first = xp.flatnonzero(change)
    running = xp.zeros(n + 1, dtype=acc)
    running[1:] = xp.cumsum(v[order].astype(acc))  # wraps on overflow, the differences stay exact
    bounds = xp.empty(int(first.shape[0]) + 1, dtype=first.dtype)
    bounds[:-1] = first
    bounds[-1] = n
    sums = running[bounds[1:]] - running[bounds[:-1]]
    return backend.to_host(ks[first]), backend.to_host(sums)
