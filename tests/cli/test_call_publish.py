"""``minga call`` and ``minga publish`` against a replica on a real broker."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from minga import Service, rpc
from minga.bus import Bus
from minga.cli import app
from minga.errors import PayloadError, ServiceUnavailable, UsageError
from minga.service.testing import ContainerFactory


class Greeter(Service):
    name = "greeter"

    @rpc
    async def greet(self, who: str, times: int = 1) -> dict[str, str]:
        if who == "nobody":
            raise LookupError("nobody to greet")
        return {"greeting": " ".join([f"hola {who}"] * times)}


async def _minga(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """``python -m minga ARGS``: the console entry, exit status and one-line errors included."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "minga",
        *args,
        "--file",
        str(tmp_path / "minga.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _invoke(tmp_path: Path, *args: str) -> Result:
    """The command in this process, on a worker thread (it runs its own event loop), without a
    new interpreter's start-up."""
    return await asyncio.to_thread(CliRunner().invoke, app, [*args, "--file", str(tmp_path / "minga.yaml")])


async def test_call_prints_the_json_result_and_errors_as_one_line(
    container_factory: ContainerFactory, minga_broker: str, tmp_path: Path
) -> None:
    async with container_factory(Greeter):
        result = await _invoke(
            tmp_path, "call", "greeter.greet", '{"who": "ana", "times": 2}', "--url", minga_broker
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"greeting": "hola ana hola ana"}
        result = await _invoke(tmp_path, "call", "greeter.greet", '{"who": 5}', "--url", minga_broker)
        assert isinstance(result.exception, PayloadError)
        assert "who: Input should be a valid string" in str(result.exception)
        result = await _invoke(tmp_path, "call", "greeter.wave", "{}", "--url", minga_broker)
        assert isinstance(result.exception, ServiceUnavailable)
        rc, _, err = await _minga(
            tmp_path, "call", "greeter.greet", '{"who": "nobody"}', "--url", minga_broker
        )
        assert rc == 1 and err.strip() == "error: LookupError: nobody to greet"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["call", "greeter", "{}"], "expected SERVICE.METHOD"),
        (["call", "greeter.greet", "{who"], "the payload is not valid JSON"),
        (["call", "greeter.greet", "[1]"], "must be a JSON object"),
        (["publish", "orders.*", "{}"], "topic 'orders.*'"),
        (["publish", "restock", "{}", "--queue", "--raw"], "cannot be combined"),
    ],
)
def test_mistakes_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*args, "--url", "nats://127.0.0.1:1"])
    assert isinstance(result.exception, UsageError) and message in str(result.exception)


async def test_publish_events_raw_subjects_and_queue_jobs(minga_broker: str, tmp_path: Path) -> None:
    async with Bus(minga_broker) as bus:
        events = await bus.nats.subscribe("minga.evt.orders.created")
        raw = await bus.nats.subscribe("custom.subject")
        await bus.nats.flush()
        await bus.nats.flush()
        result = await _invoke(tmp_path, "publish", "orders.created", '{"id": 1}', "--url", minga_broker)
        assert result.exit_code == 0 and result.stdout.strip() == "published on minga.evt.orders.created"
        assert json.loads((await events.next_msg(timeout=5)).data) == {"id": 1}
        result = await _invoke(
            tmp_path, "publish", "custom.subject", "[1, 2]", "--raw", "--url", minga_broker
        )
        assert result.exit_code == 0, result.output
        assert json.loads((await raw.next_msg(timeout=5)).data) == [1, 2]
        result = await _invoke(
            tmp_path, "publish", "restock", '{"sku": "a"}', "--queue", "--url", minga_broker
        )
        assert result.exit_code == 0 and result.stdout.strip() == "queued job 1 on restock", result.output
        info = await bus.jetstream.stream_info("MINGA_Q_restock")
        assert info.state.messages == 1
