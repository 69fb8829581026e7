"""The broker the system talks through: the embedded one, started here, or an external NATS URL."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import nats
import nats.errors
import nats.js.errors

from minga.broker import Broker, BrokerConfig
from minga.broker.jetstream import JetStream, JetStreamConfig
from minga.errors import UsageError
from minga.security import AuditLog

__all__ = ["BrokerHandle", "require_jetstream"]

_PROBE_TIMEOUT = 5.0  # seconds to connect, and for JetStream's API to answer

MAX_SUBSCRIPTIONS = 10_000
"""Subscriptions one connection may hold on the embedded broker of a running system: a replica holds
a handful, and a client that makes 100,000 must not grow the broker by hundreds of MB."""


async def _quiet(exc: Exception) -> None:
    """nats-py logs every connection error by default; the caller reports the one that matters."""


async def require_jetstream(url: str) -> None:
    """Raise :class:`~minga.errors.UsageError`, in one line, unless the NATS server at ``url``
    answers JetStream's API (``$JS.API.INFO``): a nats-server started without ``-js`` does not,
    and every durable queue would fail on it."""
    try:
        nc = await nats.connect(
            url, connect_timeout=_PROBE_TIMEOUT, allow_reconnect=False, max_reconnect_attempts=0, error_cb=_quiet
        )
    except Exception as exc:
        raise UsageError(
            f"cannot connect to the broker at {url} (`broker:` in minga.yaml): {exc or type(exc).__name__}"
        ) from None
    try:
        await nc.jsm(timeout=_PROBE_TIMEOUT).account_info()
    except (nats.errors.Error, nats.js.errors.Error) as exc:
        # no responder (JetStream off), an API error (off for this account), or no answer at all
        why = getattr(exc, "description", None)
        raise UsageError(
            f"the broker at {url} offers no JetStream{f' ({why})' if why else ''}, which durable queues need: start "
            "nats-server with JetStream (`nats-server -js`), or set `broker: {url: ..., jetstream: false}` "
            "in minga.yaml when no service uses a queue"
        ) from None
    finally:
        await nc.close()


class BrokerHandle:
    """``async with BrokerHandle(url, host, port, home) as nats_url``: the URL replicas connect to.

    With ``url`` set, nothing is started, and when ``jetstream`` is on the server there must offer
    it (:func:`require_jetstream`); otherwise the embedded broker listens on ``host:port`` (0: any
    free port), with JetStream stored under ``home/jetstream`` when ``jetstream`` is on, at most
    :data:`MAX_SUBSCRIPTIONS` per connection, and its refusals in the home's audit log. ``spec``
    names the minga.yaml in the message when the port is taken.
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
            if self.jetstream:
                await require_jetstream(self.url)
            return self.url
        extensions = []
        if self.jetstream:
            extensions.append(JetStream(JetStreamConfig(store_dir=self.home / "jetstream")))
        option = f"`port:` under `broker:` in {self.spec} (0: any free port)"
        config = BrokerConfig(
            host=self.host,
            port=self.port,
            port_option=option,
            max_subscriptions=MAX_SUBSCRIPTIONS,
            audit=AuditLog.in_home(self.home),
        )
        self.broker = Broker(config, extensions)
        await self.broker.start()  # UsageError when the port is taken
        return self.broker.url

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None
