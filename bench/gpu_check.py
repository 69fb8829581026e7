"""GPU check: word count and group-by-sum on CuPy against NumPy, identical results, both throughputs.

Run on a machine with an NVIDIA GPU and CuPy (``pip install 'minga[gpu]'``)::

    python bench/gpu_check.py              # 256 MiB corpus, a few minutes at most
    python bench/gpu_check.py --mb 64      # quicker

What it does, in order:

1. generates a seeded Zipf-distributed text corpus in host memory (``--mb`` MiB);
2. checks that the GPU word count, the NumPy word count and ``Counter(data.split())`` agree
   exactly, and that group-by-sum over integer keys agrees on GPU, NumPy and a Python dict;
3. measures, in GB/s of input text (10**9 bytes per second):

   - ``gpu in-memory``: the text is already in GPU memory; the time covers finding the words,
     packing them into 64-bit keys and counting them with a sort (``unique``), the counts left
     in GPU memory; the median of ``--repeat`` runs after a warm-up;
   - ``gpu end-to-end``: from ``bytes`` in host memory to a ``{word: count}`` dict on the host:
     the copy to the GPU, the count, the copy back and the decoding;
   - ``numpy (1 core)``: the same array code on NumPy, which computes on one core;
   - ``python Counter``: ``collections.Counter(data.split())``, the plain-Python anchor;

   and the ratios of the GPU rates to NumPy's, all measured in this run.

Without a GPU (or without CuPy) it says so, checks the NumPy path against plain Python and
prints the CPU rates only. It exits with status 1 when any result differs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from minga.compute.gpu import ArrayBackend, array_backend, count_packed, group_by_sum, word_count

TARGET_GBPS = 5.0  # word count on text already in GPU memory, on an H100


def make_corpus(mib: int, seed: int = 42, vocabulary: int = 100_000) -> bytes:
    """``mib`` MiB of lowercase words, Zipf-distributed (s=1.1), about one line per ten words."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.geometric(0.2, vocabulary), 1, 40).astype(np.int64)
    letters = rng.integers(ord("a"), ord("z") + 1, int(lengths.sum()), dtype=np.uint8)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    weights = 1.0 / np.arange(1, vocabulary + 1) ** 1.1
    cdf = np.cumsum(weights) / weights.sum()
    target = mib << 20
    chunks: list[np.ndarray[Any, Any]] = []
    size = 0
    while size < target:
        ids = np.minimum(np.searchsorted(cdf, rng.random(2_000_000)), vocabulary - 1)
        wl = lengths[ids]
        ends = np.cumsum(wl + 1)
        starts = ends - wl - 1
        out = np.full(int(ends[-1]), ord(" "), dtype=np.uint8)
        within = np.arange(int(wl.sum())) - np.repeat(np.cumsum(wl) - wl, wl)
        out[np.repeat(starts, wl) + within] = letters[np.repeat(offsets[ids], wl) + within]
        out[ends[rng.random(ids.size) < 0.1] - 1] = ord("\n")
        chunks.append(out)
        size += out.size
    return np.concatenate(chunks)[:target].tobytes()


def timed(fn: Callable[[], Any], repeat: int, sync: Callable[[], None]) -> tuple[float, Any]:
    """The median wall time of ``repeat`` calls of ``fn`` (each followed by ``sync``), and its last result."""
    times = []
    result: Any = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def python_group_by_sum(keys: list[int], values: list[int]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for k, v in zip(keys, values, strict=True):
        out[k] += v
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=256, help="corpus size in MiB (default 256)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--cpu-repeat", type=int, default=1, help="timed NumPy / Python runs (they are slow)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    ok = True
    cpu = array_backend("cpu")
    gpu: ArrayBackend | None = array_backend("gpu")
    assert gpu is not None
    if gpu.device != "gpu":
        print(f"GPU: not used ({gpu.reason}); checking and timing the CPU path only")
        gpu = None
    else:
        props = gpu.xp.cuda.runtime.getDeviceProperties(gpu.xp.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"GPU: {name}, CuPy {gpu.xp.__version__}")

    t = time.perf_counter()
    data = make_corpus(args.mb, args.seed)
    n = len(data)
    print(f"corpus: {n / 2**20:.0f} MiB, {len(data.split())} words, made in {time.perf_counter() - t:.1f}s")

    # -- correctness ------------------------------------------------------------------------
    t_py, reference = timed(lambda: dict(sorted(Counter(data.split()).items())), args.cpu_repeat, lambda: None)
    t_np, on_cpu = timed(lambda: word_count(data, cpu), args.cpu_repeat, cpu.synchronize)
    same_cpu = on_cpu == reference
    ok &= same_cpu
    print(f"word count  numpy == python Counter: {same_cpu} ({len(reference)} distinct words)")

    rng = np.random.default_rng(args.seed)
    rows = 4_000_000
    keys = (rng.zipf(1.3, rows) % 1_000_003).astype(np.int64) - 500_000
    values = rng.integers(-(10**9), 10**9, rows, dtype=np.int64)
    t_gnp, (uk, us) = timed(lambda: group_by_sum(keys, values, cpu), args.cpu_repeat, cpu.synchronize)
    slice_rows = 1_000_000
    expected_groups = python_group_by_sum(keys[:slice_rows].tolist(), values[:slice_rows].tolist())
    sk, ss = group_by_sum(keys[:slice_rows], values[:slice_rows], cpu)
    same_groups_cpu = dict(zip(sk.tolist(), ss.tolist(), strict=True)) == expected_groups
    ok &= same_groups_cpu
    print(f"group-by-sum numpy == python dict (first {slice_rows} rows): {same_groups_cpu}")

    results: dict[str, float] = {
        "python Counter": gbps(n, t_py),
        "numpy (1 core)": gbps(n, t_np),
    }
    if gpu is not None:
        xp = gpu.xp
        warm = data[: 1 << 20]
        word_count(warm, gpu)  # compiles CuPy's kernels outside the timings
        t_e2e, on_gpu = timed(lambda: word_count(data, gpu), args.repeat, gpu.synchronize)
        same_gpu = on_gpu == reference
        ok &= same_gpu
        print(f"word count  gpu == numpy == python Counter: {same_gpu}")

        device_text = xp.asarray(np.frombuffer(data, dtype=np.uint8))
        gpu.synchronize()
        count_packed(device_text, gpu, data)
        t_mem, _ = timed(lambda: count_packed(device_text, gpu, data), args.repeat, gpu.synchronize)
        results["gpu end-to-end"] = gbps(n, t_e2e)
        results["gpu in-memory"] = gbps(n, t_mem)

        dk, dv = xp.asarray(keys), xp.asarray(values)
        group_by_sum(dk[:1000], dv[:1000], gpu)
        t_ggpu, (gk, gs) = timed(lambda: group_by_sum(dk, dv, gpu), args.repeat, gpu.synchronize)
        same_groups = bool(np.array_equal(gk, uk) and np.array_equal(gs, us))
        ok &= same_groups
        print(f"group-by-sum gpu == numpy ({rows} rows, {uk.size} keys): {same_groups}")
        print(
            f"group-by-sum rows/s: gpu (in memory) {rows / t_ggpu / 1e6:,.0f} M, "
            f"numpy {rows / t_gnp / 1e6:,.1f} M, ratio {t_gnp / t_ggpu:,.1f}x"
        )
    else:
        print(f"group-by-sum rows/s: numpy {rows / t_gnp / 1e6:,.1f} M")

    print()
    print(f"word count throughput on {n / 1e9:.3f} GB of text (GB/s, median of runs):")
    anchor = results["numpy (1 core)"]
    for name, rate in results.items():
        print(f"  {name:<16} {rate:8.3f} GB/s   {rate / anchor:8.1f}x numpy")
    if gpu is not None:
        verdict = "meets" if results["gpu in-memory"] >= TARGET_GBPS else "is below"
        print(f"gpu in-memory {verdict} the {TARGET_GBPS:g} GB/s target set for an H100")
    print("results identical: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
