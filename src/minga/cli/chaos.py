"""``minga chaos check``: read a recorded history and say whether the system kept its promises."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minga.chaos import check_queue, check_registers, load_history
from minga.chaos._linear import REGISTER_FUNCTIONS
from minga.chaos._queue import QUEUE_FUNCTIONS
from minga.errors import UsageError

__all__ = ["check"]


def check(
    history: Annotated[Path, typer.Argument(help="a JSON-lines history, one event per line")],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="register (key-value), queue (work queue), or auto from the events"
        ),
    ] = "auto",
    ack_wait: Annotated[
        float, typer.Option("--ack-wait", help="the queue consumer's ack wait, seconds")
    ] = 30.0,
    budget: Annotated[
        int, typer.Option("--budget", help="search steps per key before answering unknown")
    ] = 2_000_000,
) -> None:
    """Check a history: KV linearizability, or a work queue's no-loss and no-double-delivery.

    Exit status: 0 every promise kept, 1 an anomaly found (printed with a smallest failing
    history), 3 unknown (the search ran past its budget).
    """
    if model not in ("auto", "register", "queue"):
        raise UsageError(f"--model {model!r} is none of auto, register, queue")
    events = load_history(history)
    functions = {e.f for e in events}
    if model == "auto":
        if functions & REGISTER_FUNCTIONS and functions & QUEUE_FUNCTIONS:
            raise UsageError(f"{history} mixes key-value and queue events: say which with --model")
        model = "queue" if functions & QUEUE_FUNCTIONS else "register"
    if model == "queue":
        result = check_queue(events, ack_wait=ack_wait)
        for anomaly in result.anomalies:
            typer.echo(anomaly.describe())
        typer.echo(
            f"queue: {result.enqueued} enqueued, {result.acknowledged} acknowledged, {result.deliveries} deliveries "
            f"({result.redeliveries} redeliveries); "
            + ("every promise kept" if result.valid else f"{len(result.anomalies)} anomalies")
        )
        raise typer.Exit(0 if result.valid else 1)
    verdicts = check_registers(events, budget=budget)
    for key in verdicts.keys:
        typer.echo(key.describe())
    valid = verdicts.valid
    typer.echo(
        f"{len(verdicts.keys)} keys: "
        + {True: "linearizable", False: "NOT linearizable", None: "unknown (raise --budget)"}[valid]
    )
    raise typer.Exit({True: 0, False: 1, None: 3}[valid])
