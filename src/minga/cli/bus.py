"""``minga call SERVICE.METHOD '{json}'`` and ``minga publish TOPIC '{json}'``: the bus from a shell.

The broker is ``--url``, else ``MINGA_NATS_URL``, else the one of the ``minga up`` running
for ``--file`` (its state under MINGA_HOME), else ``nats://127.0.0.1:4222``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from minga.bus import Bus, Timeout, check_name, event_subject
from minga.controlplane import read_state
from minga.errors import UsageError
from minga.security import is_redacted
from minga.spec import home_dir, load_spec

__all__ = ["call", "publish", "resolve_url"]

DEFAULT_URL = "nats://127.0.0.1:4222"

Url = Annotated[
    str | None, typer.Option("--url", help="the broker (default: MINGA_NATS_URL or `minga up`'s)")
]
SpecFile = Annotated[Path, typer.Option("--file", "-f", help="the system spec whose running broker to use")]


def resolve_url(url: str | None, file: Path) -> str:
    """The broker to talk to (see the module docstring)."""
    if url:
        return url
    if os.environ.get("MINGA_NATS_URL"):
        return os.environ["MINGA_NATS_URL"]
    state = read_state(home_dir(file), required=False)
    if state is None:
        return DEFAULT_URL
    if is_redacted(state.nats_url):  # the state file keeps no password: the spec has it
        return load_spec(file).broker.url or state.nats_url
    return state.nats_url


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): {text!r}") from None


def call(
    target: Annotated[str, typer.Argument(help="SERVICE.METHOD, for example inventory.reserve")],
    payload: Annotated[str, typer.Argument(help="the keyword arguments as a JSON object")] = "{}",
    url: Url = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for the reply")] = 5.0,
    file: SpecFile = Path("minga.yaml"),
) -> None:
    """Call an RPC method of a service and print its JSON result."""
    service, dot, method = target.partition(".")
    if not dot:
        raise UsageError(f"expected SERVICE.METHOD, got {target!r} (for example inventory.reserve)")
    check_name("service", service)
    check_name("method", method)
    kwargs = _json(payload, "the payload")
    if not isinstance(kwargs, dict):
        raise UsageError(f"the payload must be a JSON object of keyword arguments, got {payload!r}")
    if timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds, got {timeout:g}")

    async def go() -> Any:
        async with Bus(resolve_url(url, file), timeout=Timeout(request=timeout)) as bus:
            return await bus.request(service, method, kwargs)

    typer.echo(json.dumps(asyncio.run(go()), indent=2))


def publish(
    topic: Annotated[str, typer.Argument(help="the event topic (minga.evt.TOPIC), or a queue with --queue")],
    payload: Annotated[str, typer.Argument(help="the payload as JSON")] = "null",
    url: Url = None,
    queue: Annotated[bool, typer.Option("--queue", help="put a job on the durable work queue TOPIC")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="publish on the subject exactly as written")] = False,
    file: SpecFile = Path("minga.yaml"),
) -> None:
    """Publish an event (or, with --queue, enqueue a durable job) with a JSON payload."""
    if queue and raw:
        raise UsageError("--queue and --raw cannot be combined")
    value = _json(payload, "the payload")
    if queue:
        check_name("queue", topic)
    elif not raw:
        event_subject(topic)

    async def go() -> str:
        async with Bus(resolve_url(url, file)) as bus:
            if queue:
                seq = await bus.enqueue(topic, value)
                return f"queued job {seq} on {topic}"
            if raw:
                await bus.nats.publish(topic, json.dumps(value).encode())
                await bus.nats.flush()
                return f"published on {topic}"
            await bus.publish(topic, value)
            await bus.nats.flush()
            return f"published on {event_subject(topic)}"

    typer.echo(asyncio.run(go()))
