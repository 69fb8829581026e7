"""MapReduce benchmark: word count and sort with minga's local engine against its peers.

    .venv/bin/python bench/mapreduce.py                    # 1 GB corpus, 1 GB of records
    .venv/bin/python bench/mapreduce.py --size-mb 256 --sort-mb 256 --repeat 2

Word count over a seeded Zipf corpus (minga.compute.testing.generate_corpus) with:
minga local (examples/jobs/wordcount.py, N workers), a single-process collections.Counter
(the anchor), Dask bag (process scheduler, N workers), PySpark local[N] and mrjob's local
runner (on a slice, its MB/s compared). Then a sort of 100-byte records
(examples/jobs/terasort.py) against a single-process sorted(). Every output is checked
against the anchor's. Prints MB/s per contestant and minga's ratio to each; times are the
best of --repeat runs, contestants interleaved. Data is cached in .bench-data/.

The machine is shared, so the run also measures its parallel headroom before and after: how
much faster N plain processes count words than one. No engine can beat the Counter anchor by
more than that.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import multiprocessing
import operator
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minga.compute import JobRef, run
from minga.compute.testing import generate_corpus, generate_records

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "examples" / "jobs"

MRJOB_WORDCOUNT = '''
from mrjob.job import MRJob


class MRWordCount(MRJob):
    def mapper(self, _, line):
        for word in line.split():
            yield word, 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


if __name__ == "__main__":
    MRWordCount.run()
'''


def counter_wordcount(path: Path) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            chunk += f.readline()
            counts.update(chunk.decode().split())
    return dict(counts)


def _count_range(job: tuple[str, int, int]) -> int:
    path, start, end = job
    counts: Counter[str] = Counter()
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(4 << 20, left))
            left -= len(chunk)
            counts.update(chunk.decode(errors="replace").split())
    return len(counts)


def parallel_headroom(path: Path, workers: int, size: int) -> float:
    """How much faster ``workers`` plain processes count ``size`` bytes than one process, now:
    the most any engine can gain on this machine under its current load."""
    one, _ = timed(lambda: _count_range((str(path), 0, size)))
    step = size // workers
    jobs = [(str(path), i * step, (i + 1) * step) for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        many, _ = timed(lambda: pool.map(_count_range, jobs))
    return one / many


def codec_table(groups: int = 100_000) -> dict[str, dict[str, float]]:
    """Encode and decode one run block of 100,000 (word, count) pairs with each codec, in ms:
    as minga writes runs (two flat lists, keys and values) and as groups of (word, [count])."""
    import marshal
    import pickle
    import random

    rng = random.Random(1)
    keys = ["".join(rng.choices("etaoinshrd", k=rng.randint(2, 10))) for _ in range(groups)]
    values = [rng.randint(1, 999) for _ in range(groups)]
    flat = (keys, values)
    grouped = [(k, [v]) for k, v in zip(keys, values, strict=True)]
    codecs: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any], Any]] = {
        "marshal v2, flat (minga's runs)": (lambda o: marshal.dumps(o, 2), marshal.loads, flat),
        "marshal v2, (word, [count])": (lambda o: marshal.dumps(o, 2), marshal.loads, grouped),
        "pickle protocol 5, flat": (lambda o: pickle.dumps(o, 5), pickle.loads, flat),
    }
    try:
        import msgpack

        codecs["msgpack, flat"] = (msgpack.packb, msgpack.unpackb, flat)
    except ImportError:
        pass
    out = {}
    gc.disable()  # as in minga's tasks: the collector would rescan the decoded groups
    for name, (dumps, loads, items) in codecs.items():
        data = dumps(items)
        enc = min(timed(lambda d=dumps, o=items: d(o))[0] for _ in range(5))
        dec = min(timed(lambda ld=loads, b=data: ld(b))[0] for _ in range(5))
        out[name] = {"encode_ms": round(enc * 1e3, 1), "decode_ms": round(dec * 1e3, 1), "mb": round(len(data) / 1e6, 2)}
    gc.enable()
    return out


def minga_wordcount(path: Path, workers: int, tmp: Path) -> dict[str, int]:
    out = tmp / "minga-wc"
    shutil.rmtree(out, ignore_errors=True)
    result = run(JobRef.from_file(JOBS / "wordcount.py"), [path], out, workers=workers)
    return dict(result.read())


def dask_wordcount(path: Path, workers: int) -> dict[str, int]:
    import dask
    import dask.bag as db

    with dask.config.set(scheduler="processes", num_workers=workers):
        bag = db.read_text(str(path), blocksize=64 << 20)
        return dict(bag.str.split().flatten().frequencies().compute())


class Spark:
    def __init__(self, workers: int) -> None:
        from pyspark import SparkConf, SparkContext

        conf = SparkConf().setMaster(f"local[{workers}]").setAppName("minga-bench").set("spark.ui.enabled", "false")
        started = time.perf_counter()
        self.sc = SparkContext(conf=conf)
        self.sc.setLogLevel("ERROR")
        self.startup = time.perf_counter() - started

    def wordcount(self, path: Path) -> dict[str, int]:
        rdd = self.sc.textFile(str(path)).flatMap(lambda line: line.split()).map(lambda w: (w, 1))
        return dict(rdd.reduceByKey(operator.add).collect())


def mrjob_wordcount(path: Path, workers: int, tmp: Path) -> dict[str, int]:
    job = tmp / "mr_wordcount.py"
    job.write_text(MRJOB_WORDCOUNT)
    proc = subprocess.run(
        [sys.executable, str(job), "-r", "local", "--num-cores", str(workers), str(path)],
        capture_output=True, text=True, check=True, cwd=tmp,
    )  # fmt: skip
    out = {}
    for line in proc.stdout.splitlines():
        k, _, v = line.partition("\t")
        out[json.loads(k)] = int(v)
    return out


def sorted_baseline(path: Path, out: Path) -> None:
    with open(path, "rb") as f:
        lines = f.readlines()
    lines.sort()
    with open(out, "wb") as f:
        f.writelines(lines)


def minga_sort(path: Path, workers: int, tmp: Path) -> Path:
    out = tmp / "minga-sort"
    shutil.rmtree(out, ignore_errors=True)
    run(JobRef.from_file(JOBS / "terasort.py"), [path], out, workers=workers, reducers=workers * 2)
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (minga's workers), user + system."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def slice_of(path: Path, size: int, target: Path) -> Path:
    if not target.exists() or target.stat().st_size < size:
        with open(path, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read(size))
            dst.write(src.readline())
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="word count corpus size (MB, 2**20 bytes)")
    ap.add_argument("--sort-mb", type=int, default=1024, help="sort input size (MB of 100-byte records)")
    ap.add_argument("--mrjob-mb", type=int, default=50, help="slice of the corpus given to mrjob")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs per contestant; the best counts")
    ap.add_argument("--skip", nargs="*", default=[], choices=["dask", "spark", "mrjob", "sort"])
    ap.add_argument("--data", type=Path, default=ROOT / ".bench-data")
    args = ap.parse_args()
    w = args.workers
    corpus = args.data / f"zipf-{args.size_mb}mb-seed42.txt"
    if not corpus.exists():
        print(f"generating {corpus} ...", flush=True)
        generate_corpus(corpus, args.size_mb << 20, seed=42)
    mb = corpus.stat().st_size / 1e6
    results: dict[str, Any] = {"corpus_mb": round(mb, 1), "workers": w, "load_before": os.getloadavg()[0]}
    results["codecs"] = codec_table()
    print("run-file codecs, 100,000 (word, count) pairs:")
    for name, c in results["codecs"].items():
        print(f"  {name:<32} encode {c['encode_ms']:>7.1f} ms  decode {c['decode_ms']:>7.1f} ms  {c['mb']:.2f} MB")
    tmp = Path(tempfile.mkdtemp(prefix="minga-bench-"))
    try:
        headroom = parallel_headroom(corpus, w, min(corpus.stat().st_size, 64 << 20))
        results["parallel_headroom"] = round(headroom, 2)
        print(f"parallel headroom now: {w} plain processes count {headroom:.2f}x as fast as one", flush=True)
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}
        expected: dict[str, int] = {}
        spark = None if "spark" in args.skip else Spark(w)
        for _ in range(args.repeat):
            c0 = cpu_seconds()
            t, expected = timed(lambda: counter_wordcount(corpus))
            c1 = cpu_seconds()
            best["counter"] = min(best.get("counter", t), t)
            t, got = timed(lambda: minga_wordcount(corpus, w, tmp))
            c2 = cpu_seconds()
            cpu["counter"] = min(cpu.get("counter", c1 - c0), c1 - c0)
            cpu["minga"] = min(cpu.get("minga", c2 - c1), c2 - c1)
            assert got == expected, "minga's word count differs from Counter's"
            best["minga"] = min(best.get("minga", t), t)
            if "dask" not in args.skip:
                t, got = timed(lambda: dask_wordcount(corpus, w))
                assert got == expected, "Dask's word count differs"
                best["dask"] = min(best.get("dask", t), t)
            if spark is not None:
                t, got = timed(lambda: spark.wordcount(corpus))
                assert got == expected, "Spark's word count differs"
                best["spark"] = min(best.get("spark", t), t)
            print("  ...", {k: round(v, 2) for k, v in best.items()}, flush=True)
        if spark is not None:
            results["spark_startup_s"] = round(spark.startup, 2)
            spark.sc.stop()
        rates = {k: mb / v for k, v in best.items()}
        if "mrjob" not in args.skip and importlib.util.find_spec("mrjob") is None:
            print("  mrjob is not installed (pip install mrjob): its row is left out", flush=True)
        elif "mrjob" not in args.skip:
            part = slice_of(corpus, args.mrjob_mb << 20, args.data / f"zipf-{args.mrjob_mb}mb-slice.txt")
            t, got = timed(lambda: mrjob_wordcount(part, w, tmp))
            assert got == counter_wordcount(part), "mrjob's word count differs"
            rates["mrjob"] = part.stat().st_size / 1e6 / t
            best["mrjob"] = t
        print(f"\nword count, {mb:,.0f} MB Zipf corpus, {w} workers (best of {args.repeat})")
        print(f"{'contestant':<28}{'seconds':>10}{'MB/s':>10}{'minga x':>10}")
        names = {
            "minga": f"minga local ({w} workers)", "counter": "Counter, one process",
            "dask": f"Dask bag ({w} processes)", "spark": f"PySpark local[{w}]",
            "mrjob": f"mrjob local ({args.mrjob_mb} MB slice)",
        }  # fmt: skip
        for key, rate in rates.items():
            print(f"{names[key]:<28}{best[key]:>10.2f}{rate:>10.1f}{rates['minga'] / rate:>10.2f}")
        results["wordcount"] = {k: {"seconds": round(best[k], 3), "mb_s": round(r, 2)} for k, r in rates.items()}
        results["cpu_s"] = {k: round(v, 2) for k, v in cpu.items()}
        print(
            f"CPU time: Counter {cpu['counter']:.2f}s, minga {cpu['minga']:.2f}s (all processes): minga spends "
            f"{cpu['minga'] / cpu['counter']:.2f}x the Counter's CPU for the same words; wall-clock ratio = "
            f"parallel headroom / that"
        )
        results["ratios"] = {k: round(rates["minga"] / r, 2) for k, r in rates.items() if k != "minga"}
        if "sort" not in args.skip:
            records = args.data / f"records-{args.sort_mb}mb-seed42.txt"
            if not records.exists():
                print(f"generating {records} ...", flush=True)
                generate_records(records, (args.sort_mb << 20) // 100, seed=42)
            smb = records.stat().st_size / 1e6
            ts, _ = timed(lambda: sorted_baseline(records, tmp / "sorted.txt"))
            tm, out = timed(lambda: minga_sort(records, w, tmp))
            with open(tmp / "sorted.txt", "rb") as f:
                want = f.read()
            got_bytes = b"".join(p.read_bytes() for p in sorted(out.glob("part-*.tsv"))).replace(b"\t", b" ")
            assert got_bytes == want, "minga's sort differs from sorted()"
            print(f"\nsort, {smb:,.0f} MB of 100-byte records, {w} workers")
            print(f"{'sorted(), one process':<28}{ts:>10.2f}{smb / ts:>10.1f}{ts / tm:>10.2f}")
            print(f"{'minga local terasort':<28}{tm:>10.2f}{smb / tm:>10.1f}")
            results["sort"] = {"mb": round(smb, 1), "sorted_s": round(ts, 2), "minga_s": round(tm, 2), "ratio": round(ts / tm, 2)}
        results["parallel_headroom_after"] = round(parallel_headroom(corpus, w, min(corpus.stat().st_size, 64 << 20)), 2)
        results["load_after"] = os.getloadavg()[0]
        print("\n" + json.dumps(results))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
