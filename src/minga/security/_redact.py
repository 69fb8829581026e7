"""Showing addresses without the secrets they carry: ``nats://admin:***@127.0.0.1:4222``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "is_redacted", "redact_url"]

MASK = "***"


def is_redacted(url: str) -> bool:
    """``url`` came out of :func:`redact_url` with a secret masked: the real one is elsewhere."""
    return f"{MASK}@" in url or f":{MASK}@" in url


def redact_url(url: str) -> str:
    """``url`` with its password (or its token, when the userinfo has no user name part) masked.

    ``nats://admin:pw@host:4222`` → ``nats://admin:***@host:4222``; ``nats://s3cret@host`` →
    ``nats://***@host``; a URL without credentials comes back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:{MASK}" if colon else MASK
    return urlunsplit(parts._replace(netloc=f"{shown}@{hostport}"))
