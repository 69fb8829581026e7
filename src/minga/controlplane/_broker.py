"""The broker the system talks through: the embedded one, started here, or an external NATS URL."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from minga.errors import UsageError

__all__ = ["BrokerHandle"]


class BrokerHandle:
    """``async with BrokerHandle(url, host, port, home) as nats_url``: the URL replicas connect to.

    With ``url`` set, nothing is started; otherwise the embedded broker listens on
    ``host:port`` (0: any free port) with JetStream stored under ``home/jetstream``.
    """

    def __init__(self, url: str | None, host: str, port: int, home: Path) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.home = home

    async def __aenter__(self) -> str:
        if self.url is not None:
            return self.url
        raise UsageError("this build has no embedded broker yet: set `broker: nats://host:port` in minga.yaml")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
