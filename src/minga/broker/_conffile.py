"""``minga broker -c FILE``: a subset of nats-server's configuration syntax, so one file runs both.

The syntax: ``key: value``, ``key = value`` or ``key value``, one per line or separated by ``,``
or ``;``; blocks in ``{ }``; lists in ``[ ]``; strings bare or quoted (``"..."``, ``'...'``);
numbers with an optional size suffix (``k``/``m``/``g``: powers of 1000; ``kb``/``mb``/``gb``:
powers of 1024); ``true``/``false``; comments from ``#`` or ``//`` to the end of the line;
``$NAME`` takes the value of the environment variable ``NAME`` (so that a password need not be
written in the file). JSON is valid syntax.

The keys read (any other is refused, never silently ignored)::

    listen: 127.0.0.1:4222          # or host / port
    server_name: hub
    max_connections: 1000
    max_subscriptions: 10000
    max_payload: 1MB
    max_pending: 64MB
    max_control_line: 4096
    http_port: 8222                 # the monitor (/varz, /connz), on the listen host
    authorization {
      token: $BROKER_TOKEN          # or user/password, or users
      users = [
        {user: orders, password: $ORDERS_PW, permissions: {
           publish: {allow: ["minga.events.>"], deny: []},
           subscribe: {allow: ["minga.rpc.orders.>"]},
           allow_responses: true}}
      ]
    }
    tls { cert_file: server.pem, key_file: server-key.pem, ca_file: ca.pem, verify: true }
    jetstream { store_dir: /var/lib/minga/js }
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minga.broker._config import AuthConfig, BrokerConfig, TLSConfig
from minga.broker._permissions import Permissions, SubjectPermission, User
from minga.errors import UsageError

__all__ = ["FileConfig", "load_config_file", "parse_conf", "render_conf"]

MAX_DEPTH = 32

_SIZES = {"k": 1000, "m": 1000**2, "g": 1000**3, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_SIZES.update({"ki": 1024, "mi": 1024**2, "gi": 1024**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3})
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_BARE_END = frozenset(" \t\r\n,;]}#")
_KEY_END = frozenset(" \t\r\n:=")


class _Parser:
    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.text = text
        self.pos = 0
        self.env = env

    def fail(self, message: str) -> UsageError:
        line = self.text.count("\n", 0, self.pos) + 1
        return UsageError(f"line {line}: {message}")

    def skip(self, newlines: bool = True) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c in " \t\r" or (newlines and c in "\n,;"):
                self.pos += 1
            elif c == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            else:
                break

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def pairs(self, closing: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            self.skip()
            c = self.peek()
            if c == closing:
                if c:
                    self.pos += 1
                return out
            if not c:
                raise self.fail(f"missing {closing!r}")
            key = self.key()
            self.skip(newlines=False)
            if self.peek() in (":", "="):
                self.pos += 1
            out[key] = self.value(depth)

    def key(self) -> str:
        c = self.peek()
        if c in "\"'":
            return self.quoted()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _KEY_END:
            if self.text[self.pos] in "{}[]":
                break
            self.pos += 1
        if self.pos == start:
            raise self.fail(f"expected a key, found {c!r}")
        return self.text[start : self.pos]

    def quoted(self) -> str:
        quote = self.text[self.pos]
        end = self.text.find(quote, self.pos + 1)
        while quote == '"' and end > 0 and self.text[end - 1] == "\\":
            end = self.text.find(quote, end + 1)
        if end < 0:
            raise self.fail("a quoted string is not closed")
        raw = self.text[self.pos + 1 : end]
        self.pos = end + 1
        if quote == '"':
            raw = raw.replace('\\"', '"').replace("\\\\", "\\")
        return raw

    def value(self, depth: int) -> Any:
        if depth >= MAX_DEPTH:
            raise self.fail(f"blocks nest deeper than {MAX_DEPTH} levels")
        self.skip(newlines=False)
        c = self.peek()
        if c == "{":
            self.pos += 1
            return self.pairs("}", depth + 1)
        if c == "[":
            self.pos += 1
            items: list[Any] = []
            while True:
                self.skip()
                if self.peek() == "]":
                    self.pos += 1
                    return items
                if not self.peek():
                    raise self.fail("missing ']'")
                items.append(self.value(depth + 1))
        if c in "\"'":
            return self.quoted()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _BARE_END:
            self.pos += 1
        word = self.text[start : self.pos]
        if not word:
            raise self.fail(f"expected a value, found {c!r}")
        return self.scalar(word)

    def scalar(self, word: str) -> Any:
        if word.startswith("$"):
            name = word[1:]
            if name not in self.env:
                raise self.fail(f"${name} is used but the environment variable {name} is not set")
            return self.env[name]
        lower = word.lower()
        if lower in _BOOLS:
            return _BOOLS[lower]
        digits = lower.lstrip("-")
        number = digits.rstrip("abcdefghijklmnopqrstuvwxyz")
        if number.isdigit():
            unit = digits[len(number) :]
            if unit == "":
                return int(lower)
            if unit in _SIZES:
                return int(lower[: len(lower) - len(unit)]) * _SIZES[unit]
        return word


def parse_conf(text: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The nats-server-style configuration ``text`` as nested dicts and lists (UsageError when wrong)."""
    return _Parser(text, os.environ if env is None else env).pairs("", 0)


@dataclass(frozen=True, slots=True)
class FileConfig:
    """What a configuration file sets: the broker's config, and the JetStream store when enabled."""

    broker: BrokerConfig
    store_dir: Path | None


def _take(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.pop(key, None)
    if (value is not None and not isinstance(value, kind)) or (isinstance(value, bool) and kind is int):
        raise UsageError(f"{where}{key} has the wrong type: {value!r}")
    return value


def _refuse_rest(doc: dict[str, Any], where: str) -> None:
    if doc:
        keys = ", ".join(sorted(doc))
        raise UsageError(f"{where}unsupported key(s) {keys}; docs/broker.md lists the ones minga broker reads")


def _patterns(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise UsageError(f"{where} must be a subject or a list of subjects")
    return tuple(items)


def _subject_permission(value: Any, where: str) -> SubjectPermission | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        # nats-server's short form: a list means the allow list
        return SubjectPermission(allow=_patterns(value, where))
    doc = dict(value)
    allow = doc.pop("allow", None)
    deny = doc.pop("deny", None)
    _refuse_rest(doc, f"{where}.")
    return SubjectPermission(
        allow=_patterns(allow, f"{where}.allow") if allow is not None else None,
        deny=_patterns(deny, f"{where}.deny") if deny is not None else (),
    )


def _user(value: Any, index: int) -> User:
    where = f"authorization.users[{index}]"
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a block with user and password")
    doc = dict(value)
    name = _take(doc, "user", str, f"{where}.")
    password = _take(doc, "password", str, f"{where}.")
    perms = _take(doc, "permissions", dict, f"{where}.")
    _refuse_rest(doc, f"{where}.")
    if not name or not password:
        raise UsageError(f"{where} needs a user and a password")
    permissions = None
    if perms is not None:
        perms = dict(perms)
        responses = perms.pop("allow_responses", False)
        if isinstance(responses, dict):
            responses = responses.get("max", 1)
        publish = _subject_permission(perms.pop("publish", None), f"{where}.permissions.publish")
        subscribe = _subject_permission(perms.pop("subscribe", None), f"{where}.permissions.subscribe")
        _refuse_rest(perms, f"{where}.permissions.")
        count = 1 if responses is True else int(responses) if isinstance(responses, int) else 0
        permissions = Permissions(publish=publish, subscribe=subscribe, allow_responses=count)
    return User(name, password, permissions)


def _auth(value: Any) -> AuthConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError("authorization must be a block")
    doc = dict(value)
    token = _take(doc, "token", str, "authorization.")
    user = _take(doc, "user", str, "authorization.")
    password = _take(doc, "password", str, "authorization.")
    users = _take(doc, "users", list, "authorization.") or []
    doc.pop("timeout", None)  # nats-server's auth timeout: the broker's CONNECT deadline applies
    _refuse_rest(doc, "authorization.")
    return AuthConfig(token=token, user=user, password=password, users=tuple(_user(u, i) for i, u in enumerate(users)))


def _tls(value: Any, base: Path) -> TLSConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError("tls must be a block")
    doc = dict(value)
    cert = _take(doc, "cert_file", str, "tls.")
    key = _take(doc, "key_file", str, "tls.")
    ca = _take(doc, "ca_file", str, "tls.")
    verify = _take(doc, "verify", bool, "tls.")
    doc.pop("timeout", None)
    _refuse_rest(doc, "tls.")
    if cert is None or key is None:
        raise UsageError("tls needs cert_file and key_file")
    if verify and ca is None:
        raise UsageError("tls verify needs a ca_file")
    return TLSConfig(base / cert, base / key, base / ca if ca is not None and verify else None)


def load_config_file(path: Path, env: Mapping[str, str] | None = None) -> FileConfig:
    """Read ``path`` (nats-server syntax, the subset above) into a :class:`FileConfig`.

    Raises :class:`~minga.errors.UsageError` naming the file and what is wrong. Relative paths in
    the file (TLS files, store_dir) are taken from the file's directory.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return _from_doc(parse_conf(text, env), path.parent)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _from_doc(doc: dict[str, Any], base: Path) -> FileConfig:
    doc = dict(doc)
    options: dict[str, Any] = {}
    listen = _take(doc, "listen", str, "")
    host = _take(doc, "host", str, "")
    net = _take(doc, "net", str, "")
    host = host if host is not None else net
    port = _take(doc, "port", int, "")
    if listen is not None:
        lhost, _, lport = listen.rpartition(":")
        if not lport.isdigit():
            raise UsageError(f"listen must be HOST:PORT, not {listen!r}")
        host, port = lhost or host, int(lport)
    if host is not None:
        options["host"] = host
    if port is not None:
        options["port"] = port
    for key in ("max_connections", "max_subscriptions", "max_payload", "max_pending", "max_control_line"):
        value = _take(doc, key, int, "")
        if value is not None:
            options[key] = value
    name = _take(doc, "server_name", str, "")
    if name is not None:
        options["server_name"] = name
    monitor = _take(doc, "http_port", int, "")
    if monitor is not None:
        options["monitor_port"] = monitor
    options["auth"] = _auth(doc.pop("authorization", None))
    options["tls"] = _tls(doc.pop("tls", None), base)
    store_dir = None
    js = doc.pop("jetstream", None)
    if js is not None:
        if isinstance(js, dict):
            js = dict(js)
            store = _take(js, "store_dir", str, "jetstream.")
            _refuse_rest(js, "jetstream.")
            if store is None:
                raise UsageError("jetstream needs a store_dir")
            store_dir = base / store
        elif isinstance(js, str) and js.lower() in ("enabled", "enable"):
            raise UsageError("jetstream needs a store_dir: jetstream { store_dir: DIR }")
        elif js is not False:
            raise UsageError(f"jetstream must be a block with store_dir, not {js!r}")
    _refuse_rest(doc, "")
    return FileConfig(BrokerConfig(**options), store_dir)


def _quote(text: str) -> str:
    """``text`` as a string of the configuration syntax; ``$NAME`` stays bare (an environment reference)."""
    if text.startswith("$") and text[1:].replace("_", "").isalnum():
        return text
    return json.dumps(text)


def _render_permissions(p: Permissions) -> str:
    parts = []
    for key, subjects in (("publish", p.publish), ("subscribe", p.subscribe)):
        if subjects is None:
            continue
        inner = []
        if subjects.allow is not None:
            inner.append("allow: [" + ", ".join(json.dumps(s) for s in subjects.allow) + "]")
        if subjects.deny:
            inner.append("deny: [" + ", ".join(json.dumps(s) for s in subjects.deny) + "]")
        parts.append(f"{key}: {{" + ", ".join(inner) + "}")
    if p.allow_responses:
        parts.append("allow_responses: true" if p.allow_responses == 1 else f"allow_responses: {{max: {p.allow_responses}}}")
    return "{\n        " + "\n        ".join(parts) + "\n      }"


def render_conf(
    *, listen: str, users: Sequence[tuple[str, str, Permissions | None]], store_dir: str | None = None
) -> str:
    """A configuration file, readable by nats-server and ``minga broker -c``, with ``users`` (name,
    password or ``$ENV_NAME``, permissions or None for all)."""
    lines = [f"listen: {_quote(listen)}", "authorization {", "  users = ["]
    for name, password, permissions in users:
        entry = f"    {{user: {_quote(name)}, password: {_quote(password)}"
        if permissions is not None:
            entry += ", permissions: " + _render_permissions(permissions)
        lines.append(entry + "}")
    lines += ["  ]", "}"]
    if store_dir is not None:
        lines.append(f"jetstream {{ store_dir: {_quote(store_dir)} }}")
    return "\n".join(lines) + "\n"
