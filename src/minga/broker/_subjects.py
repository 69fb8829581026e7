"""Subjects: validation and matching, as nats-server understands them.

A subject is a dot-separated list of non-empty tokens without whitespace. In a
subscription pattern, the token ``*`` matches exactly one token and ``>`` (only
as the last token) matches one or more. A token that merely *contains* ``*`` or
``>`` (``foo*``) is a literal, as in nats-server.
"""

from __future__ import annotations

__all__ = ["is_literal_subject", "is_valid_subject", "subject_matches"]

_WHITESPACE = frozenset(" \t\r\n\f")


def is_valid_subject(subject: str) -> bool:
    """True when ``subject`` is a valid subscription pattern (wildcards allowed).

    >>> is_valid_subject("orders.*.created"), is_valid_subject("orders.>.x"), is_valid_subject("a..b")
    (True, False, False)
    """
    if not subject:
        return False
    full_wildcard_seen = False
    for token in subject.split("."):
        if not token or full_wildcard_seen:
            return False
        if len(token) > 1:
            if not _WHITESPACE.isdisjoint(token):
                return False
            continue
        if token == ">":
            full_wildcard_seen = True
        elif token in _WHITESPACE:
            return False
    return True


def is_literal_subject(subject: str) -> bool:
    """True when ``subject`` is valid and has no wildcard token: what a message may be published to."""
    if not is_valid_subject(subject):
        return False
    return all(token not in ("*", ">") for token in subject.split("."))


def subject_matches(pattern: str, subject: str) -> bool:
    """True when the literal ``subject`` matches the subscription ``pattern``.

    >>> subject_matches("orders.>", "orders.eu.created"), subject_matches("orders.*", "orders.eu.created")
    (True, False)
    """
    return tokens_match(pattern.split("."), subject.split("."))


def tokens_match(pattern: list[str] | list[bytes], subject: list[str] | list[bytes]) -> bool:
    """:func:`subject_matches` over already split tokens (``str`` or ``bytes``, not mixed)."""
    star: str | bytes
    full: str | bytes
    star, full = ("*", ">") if pattern and isinstance(pattern[0], str) else (b"*", b">")
    n = len(subject)
    for i, token in enumerate(pattern):
        if token == full:
            return i < n and i == len(pattern) - 1
        if i >= n:
            return False
        if token != star and token != subject[i]:
            return False
    return len(pattern) == n
