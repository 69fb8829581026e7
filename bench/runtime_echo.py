"""The responders bench/runtime.py measures: a minga Service, and the same echo in raw nats-py.

``python -m minga.service runtime_echo:Echo`` runs the service (``minga up`` does it);
``python runtime_echo.py`` runs the raw responder on MINGA_NATS_URL, queue group ``raw``.
"""

from __future__ import annotations

import asyncio
import os
import signal

import nats

from minga import Service, rpc


class Echo(Service):
    name = "echo"

    @rpc
    async def ping(self, n: int, pad: str = "") -> dict[str, object]:
        return {"n": n, "pad": pad}


async def raw_responder() -> None:
    nc = await nats.connect(os.environ["MINGA_NATS_URL"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(msg.data)  # the same JSON comes back, as the service's reply does

    await nc.subscribe("raw.echo", queue="raw", cb=answer)
    await stop.wait()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(raw_responder())
