"""The broker the system talks through: the embedded one, started here, or an external NATS URL."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from minga.broker import Broker, BrokerConfig
from minga.broker.jetstream import JetStream, JetStreamConfig

__all__ = ["BrokerHandle"]


class BrokerHandle:
    """``async with BrokerHandle(url, host, port, home) as nats_url``: the URL replicas connect to.

    With ``url`` set, nothing is started; otherwise the embedded broker listens on
    ``host:port`` (0: any free port), with JetStream stored under ``home/jetstream`` when
    ``jetstream`` is on. ``spec`` names the minga.yaml in the message when the port is taken.
    """

    def __init__(
        self, url: str | None, host: str, port: int, home: Path, *, jetstream: bool = True, spec: str = "minga.yaml"
    ) -> None:
        self.url = url
        self.spec = spec
        self.host = host
        self.port = port
        self.home = home
        self.jetstream = jetstream
        self.broker: Broker | None = None

    async def __aenter__(self) -> str:
        if self.url is not None:
            return self.url
        extensions = []
        if self.jetstream:
            extensions.append(JetStream(JetStreamConfig(store_dir=self.home / "jetstream")))
        option = f"`port:` under `broker:` in {self.spec} (0: any free port)"
        self.broker = Broker(BrokerConfig(host=self.host, port=self.port, port_option=option), extensions)
        await self.broker.start()  # UsageError when the port is taken
        return self.broker.url

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None
