"""Per-user subject permissions, as nats-server's ``authorization { users [...] }`` enforces them.

A user may be given ``publish`` and ``subscribe`` lists: ``allow`` (when given, only subjects it
covers are permitted) and ``deny`` (subjects it covers are refused even when allowed), both of
subject patterns with ``*`` and ``>``. ``allow_responses`` lets a user publish to the reply subject
of a request it received (at most ``allow_responses`` times per request); given without
``publish``, it is the only publishing the user may do.

The rules, as nats-server applies them:

- ``PUB s`` is allowed when ``s`` matches an allow pattern (or no allow list is given) and no deny
  pattern; otherwise ``-ERR 'Permissions Violation for Publish to "s"'`` and the message is dropped.
- ``SUB p`` is allowed when every subject ``p`` can match is covered by an allow pattern and ``p``
  itself is not matched by a deny pattern; otherwise ``-ERR 'Permissions Violation for Subscription
  to "p"'`` (with `` using queue "q"`` for a queue subscription). A permitted wildcard subscription
  still receives no message on a denied subject.
- Neither closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minga.broker._subjects import is_valid_subject, tokens_match
from minga.errors import UsageError

__all__ = ["ClientPermissions", "Permissions", "SubjectPermission", "User", "pattern_covers"]

# how many publish decisions a connection remembers (nats-server caches them the same way)
_CACHE_MAX = 1024


@dataclass(frozen=True, slots=True)
class SubjectPermission:
    """``allow`` (None: everything not denied) and ``deny`` subject patterns."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for pattern in (*(self.allow or ()), *self.deny):
            if not isinstance(pattern, str) or not is_valid_subject(pattern):
                raise UsageError(f"{pattern!r} is not a valid subject pattern in a permission")


@dataclass(frozen=True, slots=True)
class Permissions:
    """What one user may publish and subscribe to; ``allow_responses``: replies allowed per request
    received (0: none beyond ``publish``)."""

    publish: SubjectPermission | None = None
    subscribe: SubjectPermission | None = None
    allow_responses: int = 0

    def __post_init__(self) -> None:
        if self.allow_responses < 0:
            raise UsageError("allow_responses cannot be negative")


@dataclass(frozen=True, slots=True)
class User:
    """A user of the broker: a name, a password (kept out of ``repr``) and its permissions (None: all)."""

    user: str
    password: str = field(repr=False)
    permissions: Permissions | None = None

    def __post_init__(self) -> None:
        if not self.user or not self.password:
            raise UsageError("a broker user needs a name and a password")


def _split(patterns: tuple[str, ...]) -> list[list[str]]:
    return [p.split(".") for p in patterns]


def pattern_covers(outer: list[str], inner: list[str]) -> bool:
    """True when every subject the pattern ``inner`` matches is matched by ``outer`` (tokens)."""
    for i, token in enumerate(outer):
        if token == ">":
            return i < len(inner)
        if i >= len(inner):
            return False
        mine = inner[i]
        if mine == ">":
            return False
        if token != "*" and token != mine:
            return False
    return len(outer) == len(inner)


class ClientPermissions:
    """:class:`Permissions` compiled for one connection, with the replies it may still send."""

    __slots__ = ("_pub_allow", "_pub_cache", "_pub_deny", "_sub_allow", "_sub_deny", "replies", "responses")

    def __init__(self, permissions: Permissions) -> None:
        publish = permissions.publish
        if publish is None and permissions.allow_responses:
            publish = SubjectPermission(allow=())
        self._pub_allow = _split(publish.allow) if publish is not None and publish.allow is not None else None
        self._pub_deny = _split(publish.deny) if publish is not None else []
        subscribe = permissions.subscribe
        self._sub_allow = _split(subscribe.allow) if subscribe is not None and subscribe.allow is not None else None
        self._sub_deny = _split(subscribe.deny) if subscribe is not None else []
        self._pub_cache: dict[bytes, bool] = {}
        self.responses = permissions.allow_responses
        # reply subject -> publishes still allowed to it
        self.replies: dict[bytes, int] = {}

    @property
    def filters_deliveries(self) -> bool:
        """True when deliveries to this client must go through :meth:`may_receive`."""
        return bool(self._sub_deny) or self.responses > 0

    def may_publish(self, subject: bytes) -> bool:
        cached = self._pub_cache.get(subject)
        if cached is None:
            tokens = subject.decode("utf-8", "surrogateescape").split(".")
            allow = self._pub_allow
            cached = (allow is None or any(tokens_match(p, tokens) for p in allow)) and not any(
                tokens_match(p, tokens) for p in self._pub_deny
            )
            if len(self._pub_cache) >= _CACHE_MAX:
                self._pub_cache.clear()
            self._pub_cache[subject] = cached
        if cached:
            return True
        left = self.replies.get(subject)
        if left is None:
            return False
        if left <= 1:
            del self.replies[subject]
        else:
            self.replies[subject] = left - 1
        return True

    def may_subscribe(self, subject: bytes) -> bool:
        tokens = subject.decode("utf-8", "surrogateescape").split(".")
        allow = self._sub_allow
        if allow is not None and not any(pattern_covers(p, tokens) for p in allow):
            return False
        return not any(tokens_match(p, tokens) for p in self._sub_deny)

    def may_receive(self, subject: bytes, reply: bytes | None) -> bool:
        """Whether a message on ``subject`` reaches this client; a request it may answer is noted."""
        if self._sub_deny:
            tokens = subject.decode("utf-8", "surrogateescape").split(".")
            if any(tokens_match(p, tokens) for p in self._sub_deny):
                return False
        if reply and self.responses:
            if len(self.replies) >= _CACHE_MAX * 64:
                self.replies.pop(next(iter(self.replies)))
            self.replies[reply] = self.responses
        return True
