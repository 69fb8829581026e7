"""The nats-server configuration syntax that ``minga broker -c FILE`` reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from minga.broker._conffile import load_config_file, parse_conf
from minga.errors import UsageError


def test_syntax() -> None:
    doc = parse_conf(
        """
        # a comment
        a: 1
        b = "two" // another comment
        c 3KB
        d: 2m; e: 1MB, f: true
        g { h: [1, 2
               3], 'i': 'single' }
        "j": {"k": [{"l": null_is_a_word}]}
        k: $PW
        """,
        {"PW": "from-env"},
    )
    assert doc == {
        "a": 1, "b": "two", "c": 3072, "d": 2_000_000, "e": 1024 * 1024, "f": True,
        "g": {"h": [1, 2, 3], "i": "single"}, "j": {"k": [{"l": "null_is_a_word"}]}, "k": "from-env",
    }


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: {", "missing '}'"),
        ("a: [1, 2", "missing ']'"),
        ('a: "open', "not closed"),
        ("a: $MISSING_VAR", "MISSING_VAR is not set"),
        ("a: " + "{b: " * 40 + "1" + "}" * 40, "deeper than 32"),
    ],
)
def test_syntax_errors(text: str, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        parse_conf(text, {})


def test_file_to_config(tmp_path: Path) -> None:
    conf = tmp_path / "b.conf"
    conf.write_text(
        "listen: 127.0.0.1:4333\nmax_connections: 10\nmax_subscriptions: 5\nmax_payload: 1KB\n"
        "authorization { users = [ {user: a, password: $A_PW, permissions: {publish: [x.>], "
        "subscribe: {deny: y}, allow_responses: true}} ] }\njetstream { store_dir: js }\n"
    )
    loaded = load_config_file(conf, {"A_PW": "pw"})
    config = loaded.broker
    assert (config.host, config.port, config.max_connections, config.max_subscriptions) == ("127.0.0.1", 4333, 10, 5)
    assert config.max_payload == 1024
    assert loaded.store_dir == tmp_path / "js"
    assert config.auth is not None
    (user,) = config.auth.users
    assert user.user == "a" and user.password == "pw"
    assert user.permissions is not None
    assert user.permissions.publish is not None and user.permissions.publish.allow == ("x.>",)
    assert user.permissions.subscribe is not None and user.permissions.subscribe.deny == ("y",)
    assert user.permissions.allow_responses == 1


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("cluster { port: 1 }", "unsupported key"),
        ("authorization { users = [ {user: a, password: b, permissions: {publish: {allow: 'a..b'}}} ] }", "not a valid subject"),
        ("authorization { users = [ {user: a} ] }", "needs a user and a password"),
        ("max_connections: lots", "wrong type"),
        ("listen: nowhere", "HOST:PORT"),
        ("jetstream: enabled", "store_dir"),
        ("tls { cert_file: a.pem }", "cert_file and key_file"),
    ],
)
def test_file_mistakes_name_the_file(tmp_path: Path, text: str, said: str) -> None:
    conf = tmp_path / "b.conf"
    conf.write_text(text + "\n")
    with pytest.raises(UsageError, match=said) as info:
        load_config_file(conf, {})
    assert str(conf) in str(info.value)


def test_render_reads_back(tmp_path: Path) -> None:
    from minga.broker import Permissions, SubjectPermission, render_conf

    perms = Permissions(
        publish=SubjectPermission(allow=("a.>", "$JS.API.INFO"), deny=("a.b",)),
        subscribe=SubjectPermission(allow=("_INBOX.>",)),
        allow_responses=1,
    )
    conf = tmp_path / "r.conf"
    conf.write_text(render_conf(listen="127.0.0.1:4444", users=[("x", "$X_PW", perms), ("admin", "plain", None)], store_dir="js"))
    loaded = load_config_file(conf, {"X_PW": "secret"})
    assert loaded.broker.auth is not None
    x, admin = loaded.broker.auth.users
    assert (x.user, x.password, x.permissions) == ("x", "secret", perms)
    assert (admin.user, admin.password, admin.permissions) == ("admin", "plain", None)
    assert loaded.store_dir == tmp_path / "js"
