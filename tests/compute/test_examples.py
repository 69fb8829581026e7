"""Every job in examples/jobs/ runs, and its output is checked against plain Python."""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from pathlib import Path

from minga.compute import JobRef, run, verify_job
from minga.compute.testing import generate_corpus, generate_records

JOBS = Path(__file__).resolve().parents[2] / "examples" / "jobs"


def test_wordcount(tmp_path: Path) -> None:
    corpus = generate_corpus(tmp_path / "corpus.txt", 400_000, seed=3, vocabulary=5000)
    result = run(
        JobRef.from_file(JOBS / "wordcount.py"), [corpus], tmp_path / "out", workers=2, split_size=50_000
    )
    assert dict(result.read()) == dict(Counter(corpus.read_text().split()))
    assert verify_job(JobRef.from_file(JOBS / "wordcount.py").load(), [corpus], seeds=(1,), work_dir=tmp_path)


def test_inverted_index(tmp_path: Path) -> None:
    rng = random.Random(1)
    words = [f"w{i}" for i in range(60)]
    docs = tmp_path / "docs"
    docs.mkdir()
    expected: dict[str, set[str]] = {}
    for d in range(12):
        lines = [
            " ".join(rng.choice(words).upper() if rng.random() < 0.1 else rng.choice(words) for _ in range(8))
            for _ in range(200)
        ]
        (docs / f"doc{d:02d}.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            for w in line.lower().split():
                expected.setdefault(w, set()).add(f"doc{d:02d}.txt")
    result = run(
        JobRef.from_file(JOBS / "inverted_index.py"), [docs], tmp_path / "out", workers=2, reducers=3
    )
    assert dict(result.read()) == {w: sorted(ds) for w, ds in expected.items()}


def test_join(tmp_path: Path) -> None:
    rng = random.Random(2)
    customers = [{"id": i, "name": f"name{i}", "country": rng.choice(["PE", "BO", "EC"])} for i in range(300)]
    orders = [
        {"order_id": o, "customer_id": rng.randrange(320), "amount": round(rng.uniform(1, 99), 2)}
        for o in range(4000)
    ]
    for name, rows in [("customers.csv", customers), ("orders.csv", orders)]:
        with open(tmp_path / name, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    result = run(
        JobRef.from_file(JOBS / "join.py"), [tmp_path / "customers.csv", tmp_path / "orders.csv"], tmp_path / "out",
        workers=2, reducers=2, split_size=20_000,
    )  # fmt: skip
    by_id = {c["id"]: c for c in customers}
    expected = {
        o["order_id"]: {
            "customer": o["customer_id"],
            "name": by_id[o["customer_id"]]["name"],
            "country": by_id[o["customer_id"]]["country"],
            "amount": o["amount"],
        }
        for o in orders
        if o["customer_id"] in by_id
    }
    assert dict(result.read()) == expected
    assert result.counter("join", "joined orders") == len(expected)
    assert result.counter("join", "orders without customer") == len(orders) - len(expected)


def test_terasort(tmp_path: Path) -> None:
    records = generate_records(tmp_path / "records.txt", 30_000, seed=4)
    result = run(
        JobRef.from_file(JOBS / "terasort.py"),
        [records],
        tmp_path / "out",
        workers=2,
        reducers=4,
        split_size=500_000,
    )
    lines = "".join(p.read_text() for p in sorted((tmp_path / "out").glob("part-*.tsv"))).splitlines()
    assert [line.replace("\t", " ", 1) for line in lines] == sorted(records.read_text().splitlines())
    sizes = [len(p.read_text()) for p in sorted((tmp_path / "out").glob("part-*.tsv"))]
    assert min(sizes) > max(sizes) / 2, "the sampled boundaries should balance the reducers"
    assert all(re.fullmatch(r"[A-Za-z0-9]{10}\t[A-Za-z0-9]{88}", line) for line in lines[:100])
    assert result.counter("minga", "reduce output records") == 30_000
