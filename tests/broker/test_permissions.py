"""The embedded broker's per-user permissions and limits: matching rules, configuration checks, audit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from minga.broker import AuthConfig, Broker, BrokerConfig, Permissions, SubjectPermission, User
from minga.broker._permissions import ClientPermissions, pattern_covers
from minga.errors import UsageError
from minga.security import AuditLog, read_audit


@pytest.mark.parametrize(
    ("outer", "inner", "covered"),
    [
        ("foo.*", "foo.bar", True),
        ("foo.*", "foo.*", True),
        ("foo.*", "foo.>", False),
        ("foo.>", "foo.*.baz", True),
        ("foo.>", "foo", False),
        (">", "anything.at.all", True),
        ("foo.bar", "foo.*", False),
        ("*.bar", "foo.bar", True),
    ],
)
def test_pattern_covers(outer: str, inner: str, covered: bool) -> None:
    assert pattern_covers(outer.split("."), inner.split(".")) is covered


def test_publish_rules_and_responses() -> None:
    perms = ClientPermissions(
        Permissions(publish=SubjectPermission(allow=("a.>",), deny=("a.secret",)), allow_responses=1)
    )
    assert perms.may_publish(b"a.b")
    assert not perms.may_publish(b"a.secret")
    assert not perms.may_publish(b"inbox.1")
    # a request received with a reply subject allows exactly one publish to it
    assert perms.may_receive(b"a.b", b"inbox.1")
    assert perms.may_publish(b"inbox.1")
    assert not perms.may_publish(b"inbox.1")


def test_configuration_mistakes_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="not a valid subject pattern"):
        SubjectPermission(allow=("a..b",))
    with pytest.raises(UsageError, match="distinct name"):
        AuthConfig(users=(User("a", "x"), User("a", "y")))
    with pytest.raises(UsageError, match="not several"):
        AuthConfig(token="t", users=(User("a", "x"),))
    with pytest.raises(UsageError, match="max_connections"):
        BrokerConfig(max_connections=0)
    assert "pw" not in repr(User("a", "pw"))


def test_authenticate_finds_the_user() -> None:
    users = (User("a", "pa"), User("b", "pb", Permissions(subscribe=SubjectPermission(allow=("x",)))))
    auth = AuthConfig(users=users)
    found = auth.authenticate({"user": "b", "pass": "pb"})
    assert found is not None and found.user == "b"
    assert auth.authenticate({"user": "b", "pass": "pa"}) is None
    assert auth.authenticate({"user": "c", "pass": "pc"}) is None


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()  # INFO
        writer.write(data)
        await writer.drain()
        out = b""
        async with asyncio.timeout(5):
            while not out.endswith(b"PONG\r\n") and not reader.at_eof():
                out += await reader.read(4096)
        return out
    finally:
        writer.close()


async def test_refusals_are_audited(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    users = (User("app", "pw", Permissions(publish=SubjectPermission(allow=("ok",)))),)
    broker = Broker(BrokerConfig(port=0, auth=AuthConfig(users=users), audit=audit))
    await broker.start()
    try:
        out = await _exchange(broker.port, b'CONNECT {"verbose":false,"user":"app","pass":"pw"}\r\nPUB no 1\r\nx\r\nPING\r\n')
        assert out == b"-ERR 'Permissions Violation for Publish to \"no\"'\r\nPONG\r\n"
        out = await _exchange(broker.port, b'CONNECT {"verbose":false,"user":"app","pass":"bad"}\r\nPING\r\n')
        assert out == b"-ERR 'Authorization Violation'\r\n"
    finally:
        await broker.stop()
    records = read_audit(tmp_path)
    assert [(r.area, r.who, r.what, r.why) for r in records] == [
        ("bus", "app", "publish no", 'Permissions Violation for Publish to "no"'),
        ("bus", "app", "connect", "Authorization Violation"),
    ]
    assert "bad" not in (tmp_path / "audit.log").read_text()
