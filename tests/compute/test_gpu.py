"""minga.compute.gpu on the CPU path: word count and group-by-sum equal plain Python exactly.

The same functions run on CuPy when a GPU is present (bench/gpu_check.py compares both there).
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# NumPy comes with minga[parallel] (or minga[gpu]): `make test` installs it, a bare install skips
np = pytest.importorskip("numpy")

from minga.compute.gpu import (  # noqa: E402  (imports numpy)
    ArrayBackend,
    array_backend,
    count_packed,
    gpu_unavailable,
    group_by_sum,
    unpack_counts,
    word_count,
)
from minga.errors import UsageError  # noqa: E402

CPU = array_backend("cpu")


def _python_word_count(data: bytes) -> dict[bytes, int]:
    return dict(sorted(Counter(data.split()).items()))


def _corpus(seed: int, words: int) -> bytes:
    rng = random.Random(seed)
    lengths = [1, 2, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 50]
    alphabet = b"abcdefghijklmnopqrstuvwxyz\xc3\xa9\xe2\x82\xac\x1c\x85"
    vocab = [bytes(rng.choice(alphabet) for _ in range(rng.choice(lengths))) for _ in range(400)]
    seps = [b" ", b"\n", b"\t", b"\r\n", b"\x0b", b"\x0c", b"   ", b"\xc2\xa0 "]
    return b"".join(rng.choice(vocab) + rng.choice(seps) for _ in range(words))


def test_the_documented_example() -> None:
    assert word_count(b"to be or not to be", CPU) == {b"be": 2, b"not": 1, b"or": 1, b"to": 2}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_word_count_equals_counter_of_split(seed: int) -> None:
    data = _corpus(seed, 30_000)
    got = word_count(data, CPU)
    expected = _python_word_count(data)
    assert got == expected
    assert list(got) == list(expected)  # sorted by word, like the reference
    assert sum(got.values()) == len(data.split())


def test_every_packing_width_and_the_host_path_are_used() -> None:
    data = b" ".join([b"a" * n for n in (1, 8, 9, 16, 17, 32, 33, 100)] * 3)
    packed = count_packed(CPU.asarray(data), CPU, data)
    assert [k.shape[0] for k in packed.keys] == [1, 2, 3, 4]  # widths 1..4 in order
    assert packed.host == Counter({b"a" * 33: 3, b"a" * 100: 3})
    assert unpack_counts(packed, CPU) == _python_word_count(data)


def test_words_that_share_a_prefix_stay_apart() -> None:
    data = b"abcdefgh abcdefghi abcdefghX abcdefgh\tabcdefghi " + b"p" * 16 + b" " + b"p" * 15
    assert word_count(data, CPU) == _python_word_count(data)


@pytest.mark.parametrize(
    "data", [b"", b" ", b"\n\n\t", b"x", b"x ", b" x", b"a\0b c a\0b", b"\0", b"tail-without-space"]
)
def test_edges(data: bytes) -> None:
    assert word_count(data, CPU) == _python_word_count(data)


def test_text_already_in_an_array() -> None:
    data = _corpus(9, 2000)
    assert word_count(np.frombuffer(data, dtype=np.uint8), CPU) == _python_word_count(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes(data: bytes) -> None:
    assert word_count(data, CPU) == _python_word_count(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"ab", b"abcdefgh", b"abcdefghi", b" ", b"\n", b"\x00", b"\xff"]), max_size=60))
def test_any_mix_of_tricky_tokens(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert word_count(data, CPU) == _python_word_count(data)


def _python_group_by_sum(keys: list[int], values: list[float] | list[int]) -> dict[int, float | int]:
    out: dict[int, float | int] = defaultdict(int)
    for k, v in zip(keys, values, strict=True):
        out[k] += v
    return dict(sorted(out.items()))


def test_group_by_sum_of_integers_is_exact() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(-50, 50, 20_000)
    values = rng.integers(-(2**40), 2**40, 20_000)
    uniq, sums = group_by_sum(keys, values, CPU)
    assert dict(zip(uniq.tolist(), sums.tolist(), strict=True)) == _python_group_by_sum(keys.tolist(), values.tolist())
    assert uniq.tolist() == sorted(set(keys.tolist()))


def test_group_by_sum_near_the_int64_limits() -> None:
    # partial sums overflow, the per-key totals do not: the result must still be exact
    keys = np.array([1, 2, 1, 2, 1], dtype=np.int64)
    big = 2**62
    values = np.array([big, big, big, -big, -big], dtype=np.int64)
    uniq, sums = group_by_sum(keys, values, CPU)
    assert uniq.tolist() == [1, 2]
    assert sums.tolist() == [big + big - big, big - big]


def test_group_by_sum_of_floats_adds_in_input_order() -> None:
    rng = random.Random(3)
    keys = [rng.randrange(30) for _ in range(5000)]
    values = [rng.random() * 10 ** rng.randint(-8, 8) for _ in range(5000)]
    uniq, sums = group_by_sum(np.array(keys), np.array(values), CPU)
    assert dict(zip(uniq.tolist(), sums.tolist(), strict=True)) == _python_group_by_sum(keys, values)


def test_group_by_sum_rejects_bad_input() -> None:
    with pytest.raises(UsageError, match="integer keys"):
        group_by_sum(np.array([1.5]), np.array([1]), CPU)
    with pytest.raises(UsageError, match="one length"):
        group_by_sum(np.array([1, 2]), np.array([1]), CPU)
    uniq, sums = group_by_sum(np.array([], dtype=np.int64), np.array([], dtype=np.int64), CPU)
    assert uniq.size == 0 and sums.size == 0


def test_gpu_request_falls_back_to_the_cpu_with_a_reason() -> None:
    backend = array_backend("gpu")
    assert isinstance(backend, ArrayBackend)
    if backend.device == "cpu":
        assert backend.xp is np and backend.reason
    data = _corpus(4, 3000)
    assert word_count(data, backend) == _python_word_count(data)
    with pytest.raises(UsageError, match="cpu or gpu"):
        array_backend("tpu")


def test_minga_run_says_once_why_device_gpu_runs_on_the_cpu(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("a b a\n" * 200)
    job = Path(__file__).resolve().parents[2] / "examples" / "jobs" / "wordcount_vectorized.py"
    proc = subprocess.run(
        [sys.executable, "-m", "minga", "run", str(job), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"),
         "--device", "gpu", "--workers", "2", "-q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "--device gpu" in line]
    reason = gpu_unavailable()
    if reason is None:  # a GPU here: nothing to say
        assert notices == []
    else:
        assert notices == [f"--device gpu runs on the CPU: {reason}"]
