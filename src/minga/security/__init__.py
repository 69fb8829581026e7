"""Security: the layer every block uses. It sits low, beside ``spec``.

- Credentials (:class:`Credentials`): ``minga up`` creates an admin and a read-only token in
  ``home/credentials.json`` (0600); each replica gets its own credential in ``MINGA_TOKEN``,
  naming the one instance it may register. :func:`read_token` is how the CLI finds its token.
- The control plane's HTTP guard (:class:`HttpGuard`): Host and Origin checks, bearer token or
  the dashboard's cookie, roles; :func:`refuse` answers and audits a refusal.
- The audit trail (:class:`AuditLog`, :func:`read_audit`, :func:`follow_audit`): one JSON line
  per refusal in ``home/audit.log``.
- Secrets (:class:`SecretStore`): values encrypted with AES-GCM in ``home/secrets.json``, the
  key apart in ``home/secrets.key``; ``minga secret`` manages them, replicas get them in their
  environment.
- Private files (:func:`secure_home`, :func:`private_umask`, :func:`write_private`).
- Input at trust boundaries (:func:`load_json` with a depth bound, :func:`check_host`,
  :func:`refused_address`), secrets compared in constant time (:func:`same_secret`) and
  hidden in URLs (:func:`redact_url`), webhook signatures (:func:`verify_github`,
  :func:`verify_signed`).

A runnable example::

    from minga.security import Credentials, redact_url, verify_github, sign

    creds = Credentials.generate()
    token = creds.replica_token("orders", "orders-1")
    assert creds.identify(token).instance == "orders-1"
    assert redact_url("nats://admin:pw@127.0.0.1:4222") == "nats://admin:***@127.0.0.1:4222"
    verify_github("s3cret", b"{}", sign("s3cret", b"{}"))   # raises SignatureError when wrong

The HTTP guard (aiohttp) and the secret store are imported on first use: the broker uses this
layer too, and a restarted broker must accept its clients' reconnections quickly.
"""

from __future__ import annotations

import importlib
import typing

from minga.security._audit import AuditLog, AuditRecord, follow_audit, read_audit
from minga.security._compare import same_secret
from minga.security._files import private_umask, secure_home, write_private
from minga.security._input import check_host, json_depth, load_json, refused_address
from minga.security._redact import is_redacted, redact_url
from minga.security._tokens import Credentials, Identity, Role, read_token
from minga.security._webhook import SignatureError, sign, verify_github, verify_signed

if typing.TYPE_CHECKING:
    from minga.security._http import HttpGuard, identity_of, record_refusal, refuse
    from minga.security._secrets import SecretInfo, SecretStore

__all__ = [
    "AuditLog",
    "AuditRecord",
    "Credentials",
    "HttpGuard",
    "Identity",
    "Role",
    "SecretInfo",
    "SecretStore",
    "SignatureError",
    "check_host",
    "follow_audit",
    "identity_of",
    "is_redacted",
    "json_depth",
    "load_json",
    "private_umask",
    "read_audit",
    "read_token",
    "record_refusal",
    "redact_url",
    "refuse",
    "refused_address",
    "same_secret",
    "secure_home",
    "sign",
    "verify_github",
    "verify_signed",
    "write_private",
]

_LAZY = {
    "HttpGuard": "_http",
    "identity_of": "_http",
    "record_refusal": "_http",
    "refuse": "_http",
    "SecretInfo": "_secrets",
    "SecretStore": "_secrets",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"minga.security.{module}"), name)
    globals()[name] = value
    return value
