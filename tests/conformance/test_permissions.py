"""Per-user subject permissions (``authorization { users = [...] }``), against both servers."""

from __future__ import annotations

from typing import Any

import nats

import support

USERS: list[dict[str, Any]] = [
    {
        "user": "app",
        "password": "app-pw",
        "permissions": {
            "publish": {"allow": ["foo.>", "req.*"], "deny": ["foo.secret"]},
            "subscribe": {"allow": ["foo.*", "q.>"], "deny": ["foo.bar"]},
        },
    },
    {"user": "svc", "password": "svc-pw", "permissions": {"subscribe": {"allow": ["svc.>"]}, "allow_responses": True}},
    {"user": "admin", "password": "admin-pw"},
]


def connect_line(user: str, password: str) -> bytes:
    return b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"%s"}\r\n' % (user.encode(), password.encode())


async def test_publish_and_subscribe_permissions(start_server: Any, raw_connect: Any) -> None:
    server = await start_server(users=USERS)
    app = await raw_connect(server)
    await app.send(
        connect_line("app", "app-pw")
        + b"SUB foo.* 1\r\nSUB > 2\r\nSUB foo.bar 3\r\nSUB bar 4\r\nSUB q.x grp 5\r\nSUB bar grp 6\r\n"
        + b"PUB foo.secret 1\r\nx\r\nPUB bar 1\r\nx\r\nPUB foo.x 1\r\nx\r\nPING\r\n"
    )
    expected = [
        b"-ERR 'Permissions Violation for Subscription to \">\"'",
        b"-ERR 'Permissions Violation for Subscription to \"foo.bar\"'",
        b"-ERR 'Permissions Violation for Subscription to \"bar\"'",
        b"-ERR 'Permissions Violation for Subscription to \"bar\" using queue \"grp\"'",
        b"-ERR 'Permissions Violation for Publish to \"foo.secret\"'",
        b"-ERR 'Permissions Violation for Publish to \"bar\"'",
        b"MSG foo.x 1 1",
        b"x",
        b"PONG",
    ]
    assert [await app.line() for _ in expected] == expected
    # a permitted wildcard subscription receives nothing on a denied subject
    admin = await raw_connect(server)
    await admin.send(connect_line("admin", "admin-pw") + b"PUB foo.bar 1\r\ny\r\nPUB foo.baz 1\r\nz\r\nPING\r\n")
    assert await admin.line() == b"PONG"
    await app.send(b"PING\r\n")
    assert [await app.line() for _ in range(3)] == [b"MSG foo.baz 1 1", b"z", b"PONG"]


async def test_allow_responses(start_server: Any, raw_connect: Any) -> None:
    """A user with ``allow_responses`` and no publish permission may publish only a reply, once,
    to a request it received."""
    server = await start_server(users=USERS)
    svc = await raw_connect(server)
    await svc.send(connect_line("svc", "svc-pw") + b"SUB svc.x 1\r\nPUB other 1\r\nx\r\nPING\r\n")
    assert await svc.line() == b"-ERR 'Permissions Violation for Publish to \"other\"'"
    assert await svc.line() == b"PONG"
    caller = await raw_connect(server)
    await caller.send(connect_line("admin", "admin-pw") + b"SUB inbox.1 9\r\nPUB svc.x inbox.1 2\r\nhi\r\nPING\r\n")
    assert await caller.line() == b"PONG"
    assert [await svc.line() for _ in range(2)] == [b"MSG svc.x 1 inbox.1 2", b"hi"]
    await svc.send(b"PUB inbox.1 3\r\nans\r\nPUB inbox.1 4\r\nans2\r\nPING\r\n")
    assert await svc.line() == b"-ERR 'Permissions Violation for Publish to \"inbox.1\"'"
    assert await svc.line() == b"PONG"
    await caller.send(b"PING\r\n")
    assert [await caller.line() for _ in range(3)] == [b"MSG inbox.1 9 3", b"ans", b"PONG"]
    # the reply subject is not a subscription permission
    await svc.send(b"SUB inbox.1 2\r\nPING\r\n")
    assert await svc.line() == b"-ERR 'Permissions Violation for Subscription to \"inbox.1\"'"


async def test_request_reply_with_nats_py(start_server: Any) -> None:
    """nats-py's request/reply works through allow_responses; a refused publish reaches the
    client's error callback and the connection stays usable."""
    server = await start_server(users=USERS)
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    svc = await nats.connect(server.url, user="svc", password="svc-pw", allow_reconnect=False, error_cb=on_error)
    admin = await nats.connect(server.url, user="admin", password="admin-pw", allow_reconnect=False)
    try:

        async def answer(msg: Any) -> None:
            await msg.respond(b"pong:" + msg.data)

        await svc.subscribe("svc.ping", cb=answer)
        await support.nats_barrier(svc)
        reply = await admin.request("svc.ping", b"1", timeout=5)
        assert reply.data == b"pong:1"
        await svc.publish("elsewhere", b"no")
        await svc.flush(timeout=5)
        for _ in range(50):  # the -ERR arrives asynchronously; bounded
            if errors:
                break
            await support.nats_barrier(svc)
        assert any('permissions violation for publish to "elsewhere"' in e.lower() for e in errors), errors
        assert svc.is_connected
        reply = await admin.request("svc.ping", b"2", timeout=5)
        assert reply.data == b"pong:2"
    finally:
        await svc.close()
        await admin.close()


async def test_verbose_client_gets_no_ok_for_a_refusal(start_server: Any, raw_connect: Any) -> None:
    server = await start_server(users=USERS)
    raw = await raw_connect(server)
    await raw.send(
        b'CONNECT {"verbose":true,"user":"app","pass":"app-pw"}\r\n'
        b"PUB bar 1\r\nx\r\nSUB bar 1\r\nSUB foo.x 3\r\nSUB foo.y 3\r\nSUB x 4\r\nPING\r\n"
    )
    expected = [
        b"+OK",
        b"-ERR 'Permissions Violation for Publish to \"bar\"'",
        b"-ERR 'Permissions Violation for Subscription to \"bar\"'",
        b"+OK",
        b"+OK",
        b"-ERR 'Permissions Violation for Subscription to \"x\"'",
        b"PONG",
    ]
    assert [await raw.line() for _ in expected] == expected
