"""The servers every conformance test runs against: the embedded broker and a real nats-server.

Tests take ``start_server`` (a factory: ``await start_server(token="s3cret")``) or ``server``
(one with default options). Both are parametrized over the two kinds, so each test runs twice
with the same assertions. JetStream suites take ``js_url``, ``nc`` and ``js`` (a nats-py client and its JetStream context on
a server with JetStream). Options a suite needs beyond these go through
``jetstream=True`` (nats-server: ``jetstream { store_dir }``) and ``extensions=`` (embedded: a
callable taking the store directory and returning the broker extensions to run).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from nats.aio.client import Client
from nats.js import JetStreamContext

import support
from minga.broker import (
    AuthConfig,
    Broker,
    BrokerConfig,
    BrokerExtension,
    BrokerTimeouts,
    Permissions,
    SubjectPermission,
    TLSConfig,
    User,
)
from minga.broker.jetstream import JetStream, JetStreamConfig
from minga.errors import UsageError

KINDS = ("embedded", "nats-server")


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_context(self, *, with_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if with_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


@dataclass
class ServerOptions:
    """What a conformance test asks of the server; every field maps onto both kinds."""

    token: str | None = None
    user: str | None = None
    password: str | None = None
    tls: TLSFiles | None = None
    verify_clients: bool = False
    max_payload: int | None = None
    max_pending: int | None = None
    jetstream: bool = False
    monitor: bool = False
    # nats-server cuts a consumer whose socket write stays blocked this long (its default: 10 s)
    write_deadline: float = 2.0
    extensions: Callable[[Path], Sequence[BrokerExtension]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # nats-server's ``authorization { users = [...] }``: dicts with user, password and permissions
    # ({"publish": {"allow": [...], "deny": [...]}, "subscribe": {...}, "allow_responses": true})
    users: list[dict[str, Any]] | None = None
    max_connections: int | None = None
    max_subscriptions: int | None = None
    # how long a client may stay without sending CONNECT (embedded: its CONNECT deadline;
    # nats-server, which has none without auth: one unanswered ping after this long)
    connect_deadline: float | None = None


def broker_users(users: list[dict[str, Any]]) -> tuple[User, ...]:
    """The embedded broker's :class:`User` entries for nats-server-shaped ``users``."""

    def subjects(doc: dict[str, Any] | None) -> SubjectPermission | None:
        if doc is None:
            return None
        allow = doc.get("allow")
        return SubjectPermission(allow=tuple(allow) if allow is not None else None, deny=tuple(doc.get("deny", ())))

    out = []
    for u in users:
        perms = u.get("permissions")
        permissions = None
        if perms is not None:
            permissions = Permissions(
                publish=subjects(perms.get("publish")),
                subscribe=subjects(perms.get("subscribe")),
                allow_responses=1 if perms.get("allow_responses") else 0,
            )
        out.append(User(u["user"], u["password"], permissions))
    return tuple(out)


class RunningServer(Protocol):
    kind: str
    port: int
    store_dir: Path

    @property
    def url(self) -> str: ...

    @property
    def monitor_url(self) -> str:
        """``http://127.0.0.1:PORT`` of /varz and /connz (started with ``monitor=True``)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def restart(self) -> None: ...


class PortTaken(Exception):
    """Something else answered on the port a server was started on."""


class EmbeddedServer:
    """The embedded broker, in the test's own event loop."""

    kind = "embedded"

    def __init__(self, options: ServerOptions, store_dir: Path, port: int) -> None:
        self.options = options
        self.store_dir = store_dir
        self.port = port
        self.broker: Broker | None = None

    def _config(self) -> BrokerConfig:
        o = self.options
        auth = None
        if o.token is not None or o.user is not None:
            auth = AuthConfig(token=o.token, user=o.user, password=o.password)
        elif o.users is not None:
            auth = AuthConfig(users=broker_users(o.users))
        tls = None
        if o.tls is not None:
            tls = TLSConfig(o.tls.server_cert, o.tls.server_key, o.tls.ca if o.verify_clients else None)
        limits: dict[str, Any] = {}
        if o.max_connections is not None:
            limits["max_connections"] = o.max_connections
        if o.max_subscriptions is not None:
            limits["max_subscriptions"] = o.max_subscriptions
        if o.connect_deadline is not None:
            limits["timeouts"] = BrokerTimeouts(auth=o.connect_deadline)
        if o.max_payload is not None:
            limits["max_payload"] = o.max_payload
        if o.max_pending is not None:
            limits["max_pending"] = o.max_pending
        monitor_port = 0 if o.monitor else None
        return BrokerConfig(port=self.port, auth=auth, tls=tls, monitor_port=monitor_port, **limits, **o.extra)

    @property
    def url(self) -> str:
        scheme = "tls" if self.options.tls is not None else "nats"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        assert self.broker is not None and self.broker.monitor_port is not None, "started without monitor=True"
        return f"http://127.0.0.1:{self.broker.monitor_port}"

    async def start(self) -> None:
        extensions = self.options.extensions(self.store_dir) if self.options.extensions else ()
        self.broker = Broker(self._config(), extensions)
        await self.broker.start()

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


class NatsServer:
    """A real nats-server child process, configured through a config file."""

    kind = "nats-server"

    def __init__(self, options: ServerOptions, store_dir: Path, port: int) -> None:
        self.options = options
        self.store_dir = store_dir
        self.port = port
        self.name = f"conformance-{port}-{os.getpid()}"
        self.monitor_port = support.free_port() if options.monitor else None
        conf = store_dir / "nats.conf"
        conf.write_text(self._render())
        self.process = support.nats_server(store_dir, "-c", str(conf), port=port)

    def _render(self) -> str:
        o = self.options
        # a name of our own, checked in INFO: another suite's server may have grabbed the port first
        lines = [f'server_name: "{self.name}"']
        # a connection cut off as a slow consumer closes once its blocked write gives up (10s by default)
        lines.append(f'write_deadline: "{o.write_deadline:g}s"')
        if o.max_payload is not None:
            lines.append(f"max_payload: {o.max_payload}")
        if o.max_pending is not None:
            lines.append(f"max_pending: {o.max_pending}")
        if o.max_connections is not None:
            lines.append(f"max_connections: {o.max_connections}")
        if o.max_subscriptions is not None:
            lines.append(f"max_subscriptions: {o.max_subscriptions}")
        if o.connect_deadline is not None:
            lines.append(f'ping_interval: "{o.connect_deadline:g}s"')
            lines.append("ping_max: 1")
        if o.users is not None:
            lines.append("authorization { users = " + json.dumps(o.users) + " }")
        if o.token is not None:
            lines.append(f'authorization {{ token: "{o.token}" }}')
        elif o.user is not None:
            lines.append(f'authorization {{ user: "{o.user}", password: "{o.password}" }}')
        if o.tls is not None:
            tls = [f'cert_file: "{o.tls.server_cert}"', f'key_file: "{o.tls.server_key}"', "timeout: 2"]
            if o.verify_clients:
                tls += [f'ca_file: "{o.tls.ca}"', "verify: true"]
            lines.append("tls { " + ", ".join(tls) + " }")
        if o.jetstream:
            lines.append(f'jetstream {{ store_dir: "{self.store_dir / "js"}" }}')
        if self.monitor_port is not None:
            lines.append(f"http: 127.0.0.1:{self.monitor_port}")
        return "\n".join(lines) + "\n"

    @property
    def url(self) -> str:
        scheme = "tls" if self.options.tls is not None else "nats"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        assert self.monitor_port is not None, "started without monitor=True"
        return f"http://127.0.0.1:{self.monitor_port}"

    async def start(self) -> None:
        await asyncio.to_thread(self.process.start)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            async with asyncio.timeout(5):
                info = json.loads((await reader.readline())[5:])
        finally:
            writer.close()
        if info.get("server_name") != self.name:
            await self.stop()
            raise PortTaken(self.port)

    async def stop(self) -> None:
        await asyncio.to_thread(self.process.stop)

    async def restart(self) -> None:
        await self.stop()
        await self.start()


StartServer = Callable[..., Awaitable[RunningServer]]


class RawClient:
    """A bare TCP client speaking the protocol by hand, to see exactly what a server answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: dict[str, Any]) -> None:
        self.reader = reader
        self.writer = writer
        self.info = info

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, wait: float = 5.0) -> bytes:
        """The next protocol line (without CRLF); b"" at end of stream."""
        async with asyncio.timeout(wait):
            return (await self.reader.readline()).rstrip(b"\r\n")

    async def until_closed(self, wait: float = 5.0) -> bytes:
        """Everything the server sends until it closes the connection."""
        chunks = []
        async with asyncio.timeout(wait):
            while True:
                try:
                    chunk = await self.reader.read(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


RawConnect = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def raw_connect() -> AsyncIterator[RawConnect]:
    """``await raw_connect(server)``: a :class:`RawClient` that has read the server's INFO."""
    clients: list[RawClient] = []

    async def connect(server: RunningServer, **kwargs: Any) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, **kwargs)
        async with asyncio.timeout(5):
            first = await reader.readline()
        assert first.startswith(b"INFO "), first
        client = RawClient(reader, writer, json.loads(first[5:]))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


@pytest.fixture(params=KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def start_server(server_kind: str, tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await start_server(**ServerOptions fields)``: a started server of this test's kind."""
    started: list[RunningServer] = []

    async def start(**options: Any) -> RunningServer:
        opts = ServerOptions(**options)
        store = tmp_path / f"server{len(started)}"
        store.mkdir()
        port = support.free_port()
        server: RunningServer
        if server_kind == "embedded":
            server = EmbeddedServer(opts, store, port)
        else:
            server = NatsServer(opts, store, port)
        for _attempt in range(5):
            try:
                await server.start()
                break
            except (PortTaken, UsageError):
                # the free port was taken by a concurrent suite between the check and the bind
                server = type(server)(opts, store, support.free_port())  # type: ignore[call-arg]
        else:
            raise RuntimeError("no free port after 5 attempts")
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    return await start_server()


def with_jetstream(store: Path) -> list[BrokerExtension]:
    return [JetStream(JetStreamConfig(store_dir=store / "js"))]


@pytest.fixture
async def js_url(start_server: StartServer) -> str:
    """A server of the test's kind (embedded, nats-server) with JetStream on a file store."""
    server = await start_server(jetstream=True, extensions=with_jetstream)
    return str(server.url)


@pytest.fixture
async def nc(js_url: str) -> AsyncIterator[Client]:
    """A nats-py client of the JetStream server :func:`js_url`."""
    client = await nats.connect(js_url, allow_reconnect=False)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream(timeout=3)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA, a server certificate (127.0.0.1, localhost) and a client certificate, made for this run."""
    root = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(path: Path, data: bytes) -> Path:
        path.write_bytes(data)
        return path

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = key()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("minga test CA"))
        .issuer_name(name("minga test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier) -> tuple[bytes, bytes]:
        k = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(k)

    server_cert, server_key = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = leaf("minga test client", ExtendedKeyUsageOID.CLIENT_AUTH)
    return TLSFiles(
        ca=write(root / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM)),
        server_cert=write(root / "server.pem", server_cert),
        server_key=write(root / "server-key.pem", server_key),
        client_cert=write(root / "client.pem", client_cert),
        client_key=write(root / "client-key.pem", client_key),
    )

