"""The control plane's credentials: tokens for people and the CLI, one credential per replica.

``minga up`` creates them once (:meth:`Credentials.load_or_create`) in ``home/credentials.json``,
mode 0600 in the 0700 home; the CLI reads the admin token from there (:func:`read_token`), so
nobody types it. A replica's credential is derived from a key in the same file and names the
one instance it may speak for; the supervisor hands it over in ``MINGA_TOKEN``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from minga.errors import UsageError
from minga.security._compare import same_secret
from minga.security._files import write_private

__all__ = ["CREDENTIALS_FILE", "Credentials", "Identity", "Role", "read_token"]

CREDENTIALS_FILE = "credentials.json"

_ADMIN_PREFIX = "mga_"
_READ_PREFIX = "mgr_"
_REPLICA_PREFIX = "mgi_"


class Role(enum.StrEnum):
    """What a caller may do: ``admin`` everything, ``read`` look, ``replica`` its own registration."""

    ADMIN = "admin"
    READ = "read"
    REPLICA = "replica"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from: a role and, for a replica, its service and instance."""

    role: Role
    service: str | None = None
    instance: str | None = None

    @property
    def name(self) -> str:
        """How audit records name it: ``admin``, ``read``, ``replica:orders/orders-1``."""
        if self.role is Role.REPLICA:
            return f"replica:{self.service}/{self.instance}"
        return self.role.value


@dataclass(frozen=True)
class Credentials:
    """The admin and read-only tokens and the key replica credentials are derived from."""

    admin: str
    read: str
    replica_key: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            admin=_ADMIN_PREFIX + secrets.token_urlsafe(32),
            read=_READ_PREFIX + secrets.token_urlsafe(32),
            replica_key=secrets.token_urlsafe(32),
        )

    @staticmethod
    def file(home: Path) -> Path:
        """Where the credentials of the system under ``home`` are kept (``home/credentials.json``)."""
        return home / CREDENTIALS_FILE

    @classmethod
    def load_or_create(cls, home: Path) -> Credentials:
        """The credentials kept under ``home``; created (0600) when there are none yet.

        Raises UsageError when the file exists but cannot be read.
        """
        path = home / CREDENTIALS_FILE
        if path.exists():
            return cls.load(path)
        creds = cls.generate()
        write_private(path, json.dumps({"admin": creds.admin, "read": creds.read,
                                        "replica_key": creds.replica_key}, indent=2) + "\n")  # fmt: skip
        return creds

    @classmethod
    def load(cls, path: Path) -> Credentials:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(admin=str(doc["admin"]), read=str(doc["read"]), replica_key=str(doc["replica_key"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"cannot read the credentials in {path} ({type(exc).__name__}): remove the file to create new ones"
            ) from None

    def replica_token(self, service: str, instance: str) -> str:
        """The credential of replica ``instance`` of ``service`` (what it finds in ``MINGA_TOKEN``)."""
        return f"{_REPLICA_PREFIX}{service}/{instance}/{self._sign(service, instance)}"

    def _sign(self, service: str, instance: str) -> str:
        message = f"replica\0{service}\0{instance}".encode()
        return hmac.new(self.replica_key.encode(), message, hashlib.sha256).hexdigest()

    def identify(self, token: str | None) -> Identity | None:
        """The identity ``token`` proves, or ``None`` (every comparison in constant time)."""
        if not token:
            return None
        if same_secret(token, self.admin):
            return Identity(Role.ADMIN)
        if same_secret(token, self.read):
            return Identity(Role.READ)
        if token.startswith(_REPLICA_PREFIX):
            parts = token[len(_REPLICA_PREFIX) :].split("/")
            if len(parts) == 3 and all(parts):
                service, instance, signature = parts
                if same_secret(signature, self._sign(service, instance)):
                    return Identity(Role.REPLICA, service=service, instance=instance)
        return None


def read_token(home: Path, role: Role = Role.ADMIN) -> str | None:
    """The token a client of the control plane under ``home`` presents: ``MINGA_TOKEN`` when set,
    else the ``role`` token kept in ``home`` (``None`` when there is none)."""
    env = os.environ.get("MINGA_TOKEN")
    if env:
        return env
    path = home / CREDENTIALS_FILE
    if not path.exists():
        return None
    creds = Credentials.load(path)
    return creds.admin if role is Role.ADMIN else creds.read
