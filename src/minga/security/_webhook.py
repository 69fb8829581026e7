"""Verifying webhook deliveries signed with HMAC-SHA256.

Two header shapes: GitHub's ``X-Hub-Signature-256: sha256=<hex>`` over the raw body, and a
generic pair ``X-Minga-Signature: sha256=<hex>`` with ``X-Minga-Timestamp: <unix seconds>``,
signed over ``"<timestamp>.<body>"`` so that a captured delivery cannot be replayed once the
timestamp leaves the window. The comparison is constant-time::

    verify_github(secret, body, request.headers.get("X-Hub-Signature-256"))      # raises SignatureError
    verify_signed(secret, body, headers["X-Minga-Signature"], headers["X-Minga-Timestamp"])
"""

from __future__ import annotations

import hashlib
import hmac
import time

from minga.errors import SecurityError
from minga.security._compare import same_secret

__all__ = [
    "GITHUB_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "sign",
    "verify_github",
    "verify_signed",
]

GITHUB_HEADER = "X-Hub-Signature-256"
SIGNATURE_HEADER = "X-Minga-Signature"
TIMESTAMP_HEADER = "X-Minga-Timestamp"

_PREFIX = "sha256="


class SignatureError(SecurityError):
    """A webhook delivery whose signature is missing, malformed, wrong or too old."""


def _digest(secret: str | bytes, message: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body``: over the body alone (GitHub's form) when
    ``timestamp`` is None, else over ``"<timestamp>.<body>"``."""
    message = body if timestamp is None else f"{timestamp}.".encode() + body
    return _PREFIX + _digest(secret, message)


def _check(secret: str | bytes, message: bytes, header: str | None, name: str) -> None:
    if not secret:
        raise SignatureError("no webhook secret is configured: refusing every delivery")
    if not header:
        raise SignatureError(f"the delivery has no {name} header")
    if not header.startswith(_PREFIX):
        raise SignatureError(f"{name} must be sha256=<hex digest>")
    if not same_secret(header[len(_PREFIX) :].strip().lower(), _digest(secret, message)):
        raise SignatureError(f"{name} does not match the body: wrong secret or altered delivery")


def verify_github(secret: str | bytes, body: bytes, header: str | None) -> None:
    """Check GitHub's ``X-Hub-Signature-256`` over the raw ``body``; raises :class:`SignatureError`."""
    _check(secret, body, header, GITHUB_HEADER)


def verify_signed(
    secret: str | bytes,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    window: float = 300.0,
    now: float | None = None,
) -> None:
    """Check the generic signature and that ``timestamp`` (Unix seconds) is within ``window``
    seconds of ``now``; raises :class:`SignatureError`."""
    if not timestamp:
        raise SignatureError(f"the delivery has no {TIMESTAMP_HEADER} header")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds, found {timestamp[:40]!r}") from None
    now = time.time() if now is None else now
    if abs(now - sent) > window:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {abs(now - sent):.0f}s away from now, outside the {window:g}s window (a replay?)"
        )
    _check(secret, f"{sent}.".encode() + body, signature, SIGNATURE_HEADER)
