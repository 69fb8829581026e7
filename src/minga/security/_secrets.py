"""Secrets kept in minga's home, encrypted with AES-256-GCM (``cryptography``).

Two files, both 0600 in the 0700 home: ``secrets.key`` holds the key and its id, and
``secrets.json`` the encrypted values, each with its own random 96-bit nonce and the secret's
name as associated data (a value moved under another name does not decrypt). The key never
lies in the same file as the data, so the data file alone (a backup, a copied home) reveals
nothing.

:meth:`SecretStore.rotate` re-encrypts every value under a new key: the new key is written
first beside the old one (``secrets.key.next``), then the data under it, then the key file
replaced; a store interrupted between two steps still opens, with whichever key its data names.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from minga.errors import UsageError
from minga.security._files import secure_home, write_private

__all__ = ["SECRET_NAME_PATTERN", "SecretInfo", "SecretStore"]

SECRET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(SECRET_NAME_PATTERN)
MAX_SECRET_BYTES = 64 * 1024
KEY_FILE = "secrets.key"
DATA_FILE = "secrets.json"


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown of a secret: its name, its size in bytes and when it was last set."""

    name: str
    size: int
    updated: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class SecretStore:
    """The secrets of the system whose home is ``home``.

    ::

        store = SecretStore(home)
        store.set("db", b"s3cret")
        assert store.get("db") == b"s3cret"
        store.rotate()                     # same values, a new key

    Raises :class:`~minga.errors.UsageError` for a bad name, an unknown secret, a value too
    large, or files that do not decrypt (with what to do about it).
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.key_path = home / KEY_FILE
        self.next_key_path = home / (KEY_FILE + ".next")
        self.data_path = home / DATA_FILE

    # -- files ---------------------------------------------------------------------------------

    def _read_key(self, path: Path) -> tuple[str, bytes] | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return str(doc["id"]), _unb64(doc["key"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{path} is not a minga secrets key: restore it from a backup") from None

    def _new_key(self, path: Path) -> tuple[str, bytes]:
        key_id, key = os.urandom(8).hex(), AESGCM.generate_key(bit_length=256)
        write_private(path, json.dumps({"id": key_id, "key": _b64(key)}))
        return key_id, key

    def _load(self) -> tuple[str, dict[str, dict[str, str]]]:
        """The key id the data is encrypted under, and the entries."""
        try:
            doc = json.loads(self.data_path.read_text(encoding="utf-8"))
            return str(doc["key_id"]), dict(doc["secrets"])
        except FileNotFoundError:
            return "", {}
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{self.data_path} is damaged: restore it from a backup, or remove it") from None

    def _key_for(self, key_id: str) -> tuple[str, bytes]:
        """The key that opens data written under ``key_id`` (a new one when there is no data yet)."""
        for path in (self.key_path, self.next_key_path):
            found = self._read_key(path)
            if found is not None and (found[0] == key_id or not key_id):
                if path == self.next_key_path:
                    os.replace(self.next_key_path, self.key_path)  # finish an interrupted rotation
                return found
        if key_id:
            raise UsageError(
                f"{self.key_path} does not open {self.data_path}: restore the key file from a backup"
            )
        secure_home(self.home)
        return self._new_key(self.key_path)

    def _save(self, key_id: str, entries: dict[str, dict[str, str]]) -> None:
        write_private(
            self.data_path, json.dumps({"key_id": key_id, "secrets": entries}, indent=1, sort_keys=True)
        )

    @staticmethod
    def _seal(key: bytes, name: str, value: bytes, updated: str) -> dict[str, str]:
        nonce = os.urandom(12)  # random 96-bit nonces: far below the 2**32 messages a key may seal
        sealed = AESGCM(key).encrypt(nonce, value, name.encode())
        return {"nonce": _b64(nonce), "data": _b64(sealed), "updated": updated}

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise UsageError(f"bad secret name {name!r}: use letters, digits, '.', '_' and '-' (at most 64)")

    # -- the API -------------------------------------------------------------------------------

    def set(self, name: str, value: bytes) -> None:
        """Store ``value`` as ``name``, replacing what it held."""
        self._check_name(name)
        if len(value) > MAX_SECRET_BYTES:
            raise UsageError(f"secret {name} is {len(value)} bytes; at most {MAX_SECRET_BYTES} are kept")
        key_id, entries = self._load()
        key_id, key = self._key_for(key_id)
        entries[name] = self._seal(key, name, value, datetime.now(UTC).isoformat(timespec="seconds"))
        self._save(key_id, entries)

    def get(self, name: str) -> bytes:
        """The value of ``name``."""
        key_id, entries = self._load()
        entry = entries.get(name)
        if entry is None:
            raise UsageError(f"no secret named {name}: set it with `minga secret set {name}`")
        _, key = self._key_for(key_id)
        try:
            return AESGCM(key).decrypt(_unb64(entry["nonce"]), _unb64(entry["data"]), name.encode())
        except (InvalidTag, KeyError, ValueError):
            raise UsageError(f"secret {name} does not decrypt with {self.key_path}: set it again") from None

    def infos(self) -> list[SecretInfo]:
        """The stored secrets (names, sizes, times: never values), by name."""
        _, entries = self._load()
        return [
            SecretInfo(name, max(0, len(_unb64(e["data"])) - 16), e.get("updated", ""))
            for name, e in sorted(entries.items())
        ]

    def remove(self, name: str) -> None:
        """Forget ``name``."""
        key_id, entries = self._load()
        if entries.pop(name, None) is None:
            raise UsageError(f"no secret named {name}: `minga secret list` shows those kept")
        self._save(key_id, entries)

    def rotate(self) -> int:
        """Re-encrypt every secret under a new key; returns how many were re-encrypted."""
        key_id, entries = self._load()
        plain = {name: self.get(name) for name in entries}
        self._key_for(key_id)  # the home and a key exist even when nothing is stored yet
        new_id, new_key = self._new_key(self.next_key_path)
        sealed = {
            name: self._seal(new_key, name, value, entries[name].get("updated", ""))
            for name, value in plain.items()
        }
        self._save(new_id, sealed)
        os.replace(self.next_key_path, self.key_path)
        return len(sealed)
