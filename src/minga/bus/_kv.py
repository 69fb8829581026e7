"""Key-value buckets of JSON values on JetStream: what a service keeps that every replica must see."""

from __future__ import annotations

from typing import Any

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from minga.bus._codec import decode, encode
from minga.errors import BusError

__all__ = ["Bucket", "open_bucket"]


class Bucket:
    """One JetStream key-value bucket (``KV_<name>`` stream); values are JSON, like the bus's payloads.

    A key is what a NATS subject token allows: letters, digits and ``-_/=.``.
    """

    def __init__(self, name: str, kv: KeyValue) -> None:
        self.name = name
        self._kv = kv

    async def get(self, key: str) -> Any | None:
        """The value of ``key``, or None when it was never put or was deleted."""
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:  # deleted keys raise its subclass KeyDeletedError
            return None
        return None if entry.value is None else decode(entry.value)

    async def put(self, key: str, value: Any) -> int:
        """Store ``value`` under ``key``; the bucket's new revision."""
        return int(await self._kv.put(key, encode(value)))

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._kv.delete(key)


async def open_bucket(js: JetStreamContext, name: str, *, history: int = 1) -> Bucket:
    """The bucket ``name``, created (keeping ``history`` values per key) when it does not exist yet."""
    try:
        kv = await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        try:
            kv = await js.create_key_value(bucket=name, history=history)
        except nats.js.errors.Error as exc:  # another replica may have created it meanwhile
            try:
                kv = await js.key_value(name)
            except nats.js.errors.Error:
                raise BusError(f"cannot create the key-value bucket {name!r}: {exc}") from exc
    return Bucket(name, kv)
