"""The register checker against hand-made anomalies and against brute force."""

from __future__ import annotations

import itertools
import math
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from minga.chaos import Event, Operation, Recorder, check_register, check_registers, load_history
from minga.errors import UsageError


def op(
    f: str, value: Any, start: float, end: float = math.nan, outcome: str = "ok", process: int = 0
) -> Operation:
    """An operation over [start, end]; end omitted: it took no time."""
    finish = math.inf if outcome == "info" else (start if math.isnan(end) else end)
    return Operation(0, process, f, "x", value, start, finish, outcome)  # type: ignore[arg-type]


def verdict(*ops: Operation) -> bool | None:
    return check_register(list(ops)).valid


def test_sequential_reads_see_the_last_write() -> None:
    assert verdict(op("write", 1, 0, 1), op("read", 1, 2, 3), op("write", 2, 4, 5), op("read", 2, 6, 7))
    assert verdict(
        op("read", None, 0, 1), op("write", 1, 2, 3), op("delete", None, 4, 5), op("read", None, 6, 7)
    )


def test_a_stale_read_fails_and_its_smallest_history_keeps_the_writes_that_explain_it() -> None:
    w1, w2, r1 = op("write", 1, 0, 1), op("write", 2, 2, 3), op("read", 1, 4, 5)
    result = check_register([w1, w2, r1, op("read", 2, 6, 7, process=1)])
    assert result.valid is False
    assert result.anomaly == (w1, w2, r1)
    assert "NOT linearizable" in result.describe()


def test_a_lost_write_fails() -> None:
    w, r = op("write", 1, 0, 1), op("read", None, 2, 3)
    result = check_register([op("read", None, -2, -1), w, r])
    assert result.valid is False
    assert result.anomaly == (w, r)


def test_concurrent_operations_may_take_effect_in_either_order_but_not_undo_each_other() -> None:
    long_write = op("write", 1, 0, 10, process=1)
    assert verdict(long_write, op("read", None, 1, 2), op("read", 1, 3, 4))
    assert verdict(long_write, op("read", 1, 1, 2), op("read", 1, 3, 4))
    assert verdict(long_write, op("read", 1, 1, 2), op("read", None, 3, 4)) is False


def test_operations_that_touch_in_time_count_as_concurrent() -> None:
    assert verdict(op("read", 1, 0, 1), op("write", 1, 1, 2))


def test_an_unknown_write_may_take_effect_late_or_never() -> None:
    unknown = op("write", 2, 1, outcome="info", process=1)
    assert verdict(op("write", 1, 0, 0.5), unknown, op("read", 1, 5, 6))
    assert verdict(op("write", 1, 0, 0.5), unknown, op("read", 1, 5, 6), op("read", 2, 7, 8))
    # once it took effect it stays, no one else writes 1 again
    assert verdict(op("write", 1, 0, 0.5), unknown, op("read", 2, 5, 6), op("read", 1, 7, 8)) is False


def test_compare_and_set() -> None:
    assert verdict(op("write", 1, 0, 1), op("cas", [1, 2], 2, 3), op("read", 2, 4, 5))
    assert verdict(op("write", 1, 0, 1), op("cas", [3, 2], 2, 3)) is False
    with pytest.raises(UsageError, match="cas value"):
        check_register([op("cas", 5, 0, 1)])


def test_a_search_past_its_budget_answers_unknown_not_no() -> None:
    # many concurrent writes of distinct values and a read of none of them: the search must
    # try every order before it can say no
    ops = [op("write", i, 0, 100, process=i) for i in range(14)] + [op("read", 99, 101, 102)]
    result = check_register(ops, budget=1_000)
    assert result.valid is None and "budget" in result.describe()


# -- against brute force ------------------------------------------------------------------


def brute_force(ops: list[Operation]) -> bool:
    """Some subset of the unknown operations plus every definite one, in some order that keeps
    real-time precedence (a before b when a ended before b began), replays on a register."""
    definite = [o for o in ops if o.definite]
    unknown = [o for o in ops if not o.definite]
    for size in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, size):
            for order in itertools.permutations(definite + list(chosen)):
                if any(b.end < a.start for i, a in enumerate(order) for b in order[i + 1 :]):
                    continue
                state: Any = None
                for o in order:
                    if o.f == "read":
                        if o.definite and o.value != state:
                            break
                    elif o.f == "write":
                        state = o.value
                    elif o.f == "cas":
                        if state != o.value[0]:
                            break
                        state = o.value[1]
                else:
                    return True
    return False


def random_history(rng: random.Random) -> list[Operation]:
    ops = []
    for process in range(rng.randint(1, 5)):
        start = rng.uniform(0, 6)
        end = start + rng.uniform(0, 3)
        f = rng.choice(["read", "read", "write", "write", "cas"])
        value: Any = rng.choice([None, 1, 2])
        if f == "cas":
            value = [rng.choice([None, 1, 2]), rng.choice([1, 2])]
        outcome = "info" if f != "read" and rng.random() < 0.2 else "ok"
        ops.append(op(f, value, start, end, outcome, process))
    return ops


def test_the_checker_agrees_with_brute_force_on_random_small_histories() -> None:
    rng = random.Random(7)
    answers = {True: 0, False: 0}
    for _ in range(400):
        ops = random_history(rng)
        expected = brute_force(ops)
        assert check_register(ops).valid is expected, [o.describe() for o in ops]
        answers[expected] += 1
    assert min(answers.values()) > 50  # both answers were exercised


def test_a_real_concurrent_register_records_a_linearizable_history(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    recorder = Recorder(path)
    store: dict[str, int] = {}
    lock = threading.Lock()

    def client(process: int) -> None:
        rng = random.Random(process)
        for i in range(40):
            key = rng.choice("ab")
            if rng.random() < 0.5:
                recorder.invoke(process, "write", process * 100 + i, key=key)
                with lock:
                    store[key] = process * 100 + i
                recorder.complete(process, "ok", "write", process * 100 + i, key=key)
            else:
                recorder.invoke(process, "read", key=key)
                with lock:
                    seen = store.get(key)
                recorder.complete(process, "ok", "read", seen, key=key)

    threads = [threading.Thread(target=client, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.close()
    result = check_registers(load_history(path))
    assert [k.key for k in result.keys] == ["a", "b"]
    assert result.valid is True
    assert sum(k.operations for k in result.keys) == 160


def test_a_broken_history_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "h.jsonl"
    bad.write_text('{"process": 1, "type": "invoke", "f": "read"}\nnot json\n')
    with pytest.raises(UsageError, match=r"h.jsonl:2: not JSON"):
        load_history(bad)
    twice = [Event(1, "invoke", "read", key="x"), Event(1, "invoke", "write", 2, key="x")]
    with pytest.raises(UsageError, match="still in flight"):
        check_registers(twice)
