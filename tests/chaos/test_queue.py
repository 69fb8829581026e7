"""The work-queue checker: each promise broken once, and the documented redeliveries allowed."""

from __future__ import annotations

from pathlib import Path

from tests.support import minga

from minga.chaos import Event, check_queue, fault_windows


def enqueued(msg: str, t: float, outcome: str = "ok") -> list[Event]:
    return [
        Event("producer", "invoke", "enqueue", msg, time=t),
        Event("producer", outcome, "enqueue", msg, time=t + 0.01),
    ]  # type: ignore[arg-type]


def seen(consumer: str, f: str, msg: str, t: float) -> Event:
    return Event(consumer, "ok", f, msg, time=t)


def confirmed_ack(consumer: str, msg: str, t: float) -> list[Event]:
    return [Event(consumer, "invoke", "ack", msg, time=t), Event(consumer, "ok", "ack", msg, time=t + 0.01)]


def test_a_clean_run_with_documented_redeliveries_keeps_every_promise() -> None:
    history = [
        *enqueued("m1", 0),
        *enqueued("m2", 0.1),
        *enqueued("m3", 0.2, outcome="info"),  # unknown: may or may not exist
        seen("c1", "deliver", "m1", 1),
        seen("c1", "nak", "m1", 1.1),
        seen("c2", "deliver", "m1", 1.2),  # after a nak: redelivery is due
        seen("c2", "ack", "m1", 1.3),
        seen("c1", "deliver", "m2", 2),
        seen("c2", "deliver", "m2", 33),  # c1 went silent past the 30 s ack wait
        *confirmed_ack("c2", "m2", 33.5),
    ]
    result = check_queue(history, ack_wait=30)
    assert result.valid, [a.describe() for a in result.anomalies]
    assert (result.enqueued, result.acknowledged, result.deliveries, result.redeliveries) == (2, 2, 4, 2)


def test_each_broken_promise_is_named() -> None:
    history = [
        *enqueued("lost", 0),
        *enqueued("twice", 0),
        *enqueued("again", 0),
        *enqueued("refused", 0, outcome="fail"),
        seen("c1", "deliver", "twice", 1),
        seen("c2", "deliver", "twice", 2),  # c1's delivery still in force
        seen("c2", "ack", "twice", 3),
        seen("c1", "deliver", "again", 1),
        *confirmed_ack("c1", "again", 1.5),
        seen("c2", "deliver", "again", 4),  # the server confirmed the ack, then handed it out
        seen("c2", "ack", "again", 4.1),
        seen("c1", "deliver", "refused", 5),
        seen("c1", "ack", "refused", 5.1),
        seen("c1", "deliver", "ghost", 6),
        seen("c1", "ack", "ghost", 6.1),
    ]
    result = check_queue(history, ack_wait=30)
    kinds = sorted((a.kind, a.message) for a in result.anomalies)
    assert kinds == [
        ("after ack", "again"),
        ("concurrent", "twice"),
        ("lost", "lost"),
        ("phantom", "ghost"),
        ("phantom", "refused"),
    ]
    concurrent = next(a for a in result.anomalies if a.kind == "concurrent")
    assert [op.process for op in concurrent.operations] == ["c1", "c2"]
    assert "concurrent: message twice" in concurrent.describe()


def test_an_ack_only_sent_may_be_lost_so_the_redelivery_after_it_is_no_anomaly() -> None:
    history = [
        *enqueued("m", 0),
        seen("c1", "deliver", "m", 1),
        seen("c1", "ack", "m", 1.1),  # sent, never confirmed
        seen("c2", "deliver", "m", 40),
        seen("c2", "ack", "m", 40.1),
    ]
    assert check_queue(history, ack_wait=30).valid


def test_the_command_prints_the_verdict_and_exits_with_it(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        "\n".join(
            e.to_json() for e in [*enqueued("m", 0), seen("c", "deliver", "m", 1), seen("c", "ack", "m", 2)]
        )
    )
    done = minga("chaos", "check", str(good), home=tmp_path / ".minga")
    assert done.returncode == 0, done.stderr
    assert "1 enqueued, 1 acknowledged, 1 deliveries (0 redeliveries); every promise kept" in done.stdout

    stale = tmp_path / "stale.jsonl"
    events = [
        Event(0, "invoke", "write", 1, "k", 0.0),
        Event(0, "ok", "write", 1, "k", 0.1),
        Event(0, "invoke", "write", 2, "k", 0.2),
        Event(0, "ok", "write", 2, "k", 0.3),
        Event(1, "invoke", "read", None, "k", 0.4),
        Event(1, "ok", "read", 1, "k", 0.5),
    ]
    stale.write_text("\n".join(e.to_json() for e in events))
    done = minga("chaos", "check", str(stale), home=tmp_path / ".minga")
    assert done.returncode == 1
    assert "k: NOT linearizable; a smallest failing history (3 operations):" in done.stdout
    assert "process 1: read k 1 [0.400000 .. 0.500000] ok" in done.stdout

    done = minga("chaos", "check", str(tmp_path / "missing.jsonl"), home=tmp_path / ".minga")
    assert done.returncode != 0 and "cannot read" in done.stderr and "Traceback" not in done.stderr


def test_a_fault_releases_the_deliveries_in_force_when_it_happened() -> None:
    history = [
        *enqueued("m", 0),
        seen("c1", "deliver", "m", 1),
        Event("nemesis", "invoke", "restart", time=1.5),
        Event("nemesis", "ok", "restart", time=1.8),
        seen("c2", "deliver", "m", 2),  # the restarted server handed it out again at once
        seen("c2", "ack", "m", 2.1),
    ]
    assert check_queue(history, ack_wait=30).valid
    without_the_fault = [e for e in history if e.process != "nemesis"]
    assert [a.kind for a in check_queue(without_the_fault, ack_wait=30).anomalies] == ["concurrent"]


def test_a_fault_recorded_as_start_and_stop_spans_the_time_between() -> None:
    history = [
        *enqueued("m", 0),
        seen("c1", "deliver", "m", 1),
        Event("nemesis", "invoke", "start-partition", "n1", time=1.5),
        Event("nemesis", "ok", "start-partition", "n1", time=1.6),
        seen("c2", "deliver", "m", 2),  # while the partition held
        seen("c2", "ack", "m", 2.1),
        Event("nemesis", "invoke", "stop-partition", "n1", time=5),
        Event("nemesis", "ok", "stop-partition", "n1", time=5.1),
    ]
    (window,) = fault_windows(history)
    assert (window.fault, window.target, window.begins, window.in_force, window.ends) == (
        "partition",
        "n1",
        1.5,
        1.6,
        5.1,
    )
    assert check_queue(history, ack_wait=30).valid
