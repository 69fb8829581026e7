"""Authentication and TLS, against both servers."""

from __future__ import annotations

import gc
import ssl
import warnings
from typing import Any

import nats

import support

NO_RETRY: dict[str, Any] = {"allow_reconnect": False, "max_reconnect_attempts": 0, "connect_timeout": 3}


async def roundtrip(nc: Any) -> bytes:
    sub = await nc.subscribe("secure.echo")
    await support.nats_barrier(nc)
    await nc.publish("secure.echo", b"ok")
    msg = await sub.next_msg(timeout=5)
    return bytes(msg.data)


async def refused(url: str, **kwargs: Any) -> str:
    """Connect with nats-py, expecting refusal; the error text it reports."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    with warnings.catch_warnings():
        # nats-py drops its transport unclosed when a connect is refused; collect it here,
        # where that is expected, rather than in whichever test the garbage collector next runs
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            nc = await nats.connect(url, error_cb=on_error, **NO_RETRY, **kwargs)
        except Exception as exc:
            text = " ".join([f"{type(exc).__name__}: {exc}", *errors])
        else:
            await nc.close()
            raise AssertionError("the connection was accepted")
        gc.collect()
    return text


async def test_token(start_server: Any, raw_connect: Any) -> None:
    server = await start_server(token="s3cret")
    nc = await nats.connect(server.url, token="s3cret")
    try:
        assert await roundtrip(nc) == b"ok"
    finally:
        await nc.close()
    assert "Authorization Violation" in await refused(server.url, token="wrong")
    raw = await raw_connect(server)
    assert raw.info["auth_required"] is True
    await raw.send(b'CONNECT {"verbose":false,"auth_token":"nope"}\r\nPING\r\n')
    assert await raw.until_closed() == b"-ERR 'Authorization Violation'\r\n"


async def test_user_and_password(start_server: Any, raw_connect: Any) -> None:
    server = await start_server(user="alice", password="pa55")
    nc = await nats.connect(server.url, user="alice", password="pa55")
    try:
        assert await roundtrip(nc) == b"ok"
    finally:
        await nc.close()
    assert "Authorization Violation" in await refused(server.url, user="alice", password="wrong")
    raw = await raw_connect(server)
    await raw.send(b'CONNECT {"verbose":false,"user":"alice","pass":"nope"}\r\n')
    assert await raw.until_closed() == b"-ERR 'Authorization Violation'\r\n"
    # operations before an authenticated CONNECT are refused the same way
    raw = await raw_connect(server)
    await raw.send(b"SUB foo 1\r\n")
    assert await raw.until_closed() == b"-ERR 'Authorization Violation'\r\n"


async def test_tls(start_server: Any, tls_files: Any, raw_connect: Any) -> None:
    server = await start_server(tls=tls_files)
    raw = await raw_connect(server)
    assert raw.info["tls_required"] is True
    nc = await nats.connect(server.url, tls=tls_files.client_context(with_cert=False))
    try:
        assert await roundtrip(nc) == b"ok"
    finally:
        await nc.close()
    # a client that does not trust the CA cannot connect
    assert await refused(server.url, tls=ssl.create_default_context())


async def test_mutual_tls(start_server: Any, tls_files: Any) -> None:
    server = await start_server(tls=tls_files, verify_clients=True)
    nc = await nats.connect(server.url, tls=tls_files.client_context(with_cert=True))
    try:
        assert await roundtrip(nc) == b"ok"
    finally:
        await nc.close()
    assert await refused(server.url, tls=tls_files.client_context(with_cert=False))


async def test_tls_with_token(start_server: Any, tls_files: Any) -> None:
    server = await start_server(tls=tls_files, token="both")
    nc = await nats.connect(server.url, tls=tls_files.client_context(with_cert=False), token="both")
    try:
        assert await roundtrip(nc) == b"ok"
    finally:
        await nc.close()
    assert "Authorization Violation" in await refused(
        server.url, tls=tls_files.client_context(with_cert=False), token="nope"
    )
