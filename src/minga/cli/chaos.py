"""``minga chaos check``: read a recorded history and say whether the system kept its promises."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from minga.chaos import (
    Recorder,
    check_queue,
    check_registers,
    history_model,
    load_history,
    run_etcd_workload,
    run_workloads,
)
from minga.errors import UsageError

__all__ = ["check", "workload"]


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
    if model == "auto":
        model = history_model(events)
        if model == "mixed":
            raise UsageError(f"{history} mixes key-value and queue events: say which with --model")
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


def workload(
    out: Annotated[Path, typer.Option("--out", "-o", help="the history file to append to (JSON lines)")],
    server: Annotated[
        list[str],
        typer.Option("--server", "-s", help="a NATS (nats://) or etcd (http://) URL; repeat for each member"),
    ],
    replicas: Annotated[
        int, typer.Option("--replicas", help="JetStream replicas of the bucket and the stream")
    ] = 1,
    kv_ops: Annotated[int, typer.Option("--kv-ops", help="operations per key-value client (4 clients)")] = 40,
    messages: Annotated[int, typer.Option("--messages", help="jobs through the work queue")] = 200,
    seconds: Annotated[
        float | None,
        typer.Option("--seconds", help="run this long instead of by counts (KV operations every 20 ms)"),
    ] = None,
    origin: Annotated[
        float | None,
        typer.Option(
            "--origin", help="time.monotonic() the history counts from, shared with a fault injector"
        ),
    ] = None,
) -> None:
    """Record a history: KV reads/writes/deletes and a work queue (nats), or KV alone (etcd).

    Inject faults meanwhile (recorded by the process `nemesis` in another file with the same
    --origin), then `minga chaos check` the histories.
    """
    if not 1 <= replicas <= 5:
        raise UsageError(f"--replicas {replicas}: JetStream keeps 1 to 5 replicas")
    schemes = {url.split("://", 1)[0] for url in server}
    if not (schemes <= {"nats", "tls"} or schemes <= {"http", "https"}):
        raise UsageError(
            "--server: give nats:// URLs (a NATS cluster) or http:// URLs (an etcd cluster), not both"
        )
    recorder = Recorder(out, origin=origin if origin is not None else time.monotonic())
    try:
        if schemes <= {"http", "https"}:
            if seconds is None:
                raise UsageError("an etcd workload runs for a time: give --seconds")
            asyncio.run(run_etcd_workload(server, recorder, seconds=seconds))
        else:
            run = run_workloads(
                server, recorder, replicas=replicas, kv_operations=kv_ops, messages=messages, seconds=seconds
            )
            asyncio.run(run)
    finally:
        recorder.close()
    typer.echo(f"history written to {out}")
