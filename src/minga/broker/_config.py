"""The broker's configuration: plain frozen values, validated once."""

from __future__ import annotations

import errno
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from minga.broker._permissions import User
from minga.errors import UsageError
from minga.security import AuditLog, same_secret

__all__ = ["AuthConfig", "BrokerConfig", "BrokerTimeouts", "TLSConfig"]

MiB = 1024 * 1024
MIN_LAME_DUCK_DURATION = 30.0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Client authentication: a ``token``, a ``user`` with a ``password``, or ``users`` (each a
    :class:`User` with its own password and :class:`Permissions`); exactly one of the three.

    The secrets are left out of ``repr`` so that a logged config leaks nothing.
    """

    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    users: tuple[User, ...] = ()

    def __post_init__(self) -> None:
        given = (self.token is not None) + (self.user is not None or self.password is not None) + bool(self.users)
        if given > 1:
            raise UsageError("give either a token, a user and password, or a list of users; not several")
        if (self.user is None) != (self.password is None):
            raise UsageError("a user needs a password, and a password a user")
        if given == 0:
            raise UsageError("authentication needs a token, a user and password, or a list of users")
        if self.token == "" or self.user == "":
            raise UsageError("an empty token or user name is not a credential")
        names = [u.user for u in self.users]
        if len(set(names)) != len(names):
            raise UsageError("each broker user must have a distinct name")

    def accepts(self, options: dict[str, object]) -> bool:
        """True when a client's CONNECT ``options`` carry these credentials (compared in constant time)."""
        return self.authenticate(options) is not None

    def authenticate(self, options: dict[str, object]) -> User | None:
        """The user a client's CONNECT ``options`` authenticate as, or None when they are refused.

        Every credential is compared in constant time, and every user of the list is tried, so the
        time taken does not tell which user exists.
        """
        if self.token is not None:
            ok = same_secret(_text(options.get("auth_token")), self.token)
            return User("token", self.token) if ok else None
        name, password = _text(options.get("user")), _text(options.get("pass"))
        if self.user is not None:
            user_ok = same_secret(name, self.user)
            if same_secret(password, self.password) and user_ok:
                return User(self.user, self.password or "")
            return None
        found: User | None = None
        for user in self.users:
            user_ok = same_secret(name, user.user)
            if same_secret(password, user.password) and user_ok:
                found = user
        return found


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Serve TLS with ``cert``/``key`` (PEM files); with ``ca``, also require and verify client certificates."""

    cert: Path
    key: Path
    ca: Path | None = None

    @property
    def verify_clients(self) -> bool:
        return self.ca is not None

    def context(self) -> ssl.SSLContext:
        """The server-side SSL context. Raises :class:`~minga.errors.UsageError` when a file is unusable."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.cert, self.key)
            if self.ca is not None:
                ctx.load_verify_locations(cafile=self.ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load TLS files ({self.cert}, {self.key}, {self.ca}): {exc}") from None
        return ctx


@dataclass(frozen=True, slots=True)
class BrokerTimeouts:
    """The broker's timers, in seconds.

    ``auth``: a client must send CONNECT within it (and finish its TLS handshake, when TLS is
    required), whether or not authentication is on; one that does not is told
    ``-ERR 'Authentication Timeout'`` and closed.
    ``ping_interval``: the server pings an idle client this often; ``max_pings_out`` unanswered pings
    close it as stale. ``lame_duck``: how long a shutdown (:meth:`Broker.stop`) waits after the
    lame-duck notice before it closes the remaining clients. ``shutdown_flush``: how long it then
    lets them read what is still queued for them before their connections are cut.

    ``lame_duck_duration`` and ``lame_duck_grace`` shape lame-duck mode (:meth:`Broker.lame_duck`,
    SIGUSR2 for ``minga broker``) as nats-server's ``lame_duck_duration`` (2 min) and
    ``lame_duck_grace_period`` (10 s) do: no client is closed during the grace period, and the
    closes are then spread over the rest of the duration. As in nats-server, the duration is at
    least 30 s and the grace period shorter than it.
    """

    auth: float = 2.0
    ping_interval: float = 120.0
    max_pings_out: int = 2
    lame_duck: float = 0.0
    shutdown_flush: float = 2.0
    lame_duck_duration: float = 120.0
    lame_duck_grace: float = 10.0

    def __post_init__(self) -> None:
        if self.lame_duck_duration < MIN_LAME_DUCK_DURATION:
            raise UsageError(
                f"invalid lame duck duration of {self.lame_duck_duration:g}s, minimum is {MIN_LAME_DUCK_DURATION:g} seconds"
            )
        if self.lame_duck_grace < 0:
            raise UsageError("the lame duck grace period cannot be negative")
        if self.lame_duck_grace >= self.lame_duck_duration:
            raise UsageError(
                f"the lame duck grace period ({self.lame_duck_grace:g}s) must be shorter than the lame duck"
                f" duration ({self.lame_duck_duration:g}s)"
            )


@dataclass
class BrokerConfig:
    """Where the broker listens and what it enforces.

    ``port`` 0 picks a free port (``Broker.port`` tells which). ``max_payload`` (bytes) is advertised in
    INFO and enforced; ``max_pending`` (bytes) bounds what may wait to be written to one client before
    it is disconnected as a slow consumer. ``monitor_port`` serves /varz and /connz over HTTP (0: any).
    ``port_option`` is how the person running the broker sets its port, named when that port is taken.

    ``max_connections``: past it, a new client gets ``-ERR 'maximum connections exceeded'`` and is
    closed (nats-server's default, 65536). ``max_subscriptions``: per connection (0: no limit, as in
    nats-server); a SUB past it gets ``-ERR 'maximum subscriptions exceeded'`` and is not made, the
    connection stays open, as with nats-server. ``audit``: where refused connections and permission
    violations are recorded (area ``bus``).
    """

    host: str = "127.0.0.1"
    port: int = 4222
    auth: AuthConfig | None = None
    tls: TLSConfig | None = None
    max_payload: int = 1 * MiB
    max_pending: int = 64 * MiB
    max_control_line: int = 4096
    monitor_port: int | None = None
    server_name: str | None = None
    timeouts: BrokerTimeouts = field(default_factory=BrokerTimeouts)
    port_option: str = "--port"
    max_connections: int = 65536
    max_subscriptions: int = 0
    audit: AuditLog | None = None

    def __post_init__(self) -> None:
        if self.max_connections <= 0:
            raise UsageError(f"max_connections must be positive, not {self.max_connections}")
        if self.max_subscriptions < 0:
            raise UsageError(f"max_subscriptions cannot be negative, not {self.max_subscriptions}")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"port must be within 0..65535, not {self.port}")
        if self.monitor_port is not None and not 0 <= self.monitor_port <= 65535:
            raise UsageError(f"monitor port must be within 0..65535, not {self.monitor_port}")
        if self.max_payload <= 0 or self.max_pending <= 0:
            raise UsageError("max_payload and max_pending must be positive")
        if self.max_payload > self.max_pending:
            raise UsageError(f"max_payload ({self.max_payload}) cannot be higher than max_pending ({self.max_pending})")


def bind_error(host: str, port: int, exc: OSError, flag: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"{host}:{port} is already in use; choose another {flag}"
    return f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}"
