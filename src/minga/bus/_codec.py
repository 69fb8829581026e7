"""JSON on the wire: payload encoding and the RPC reply envelope, as pure functions.

A reply body is one JSON object, either ``{"result": <value>}`` or
``{"error": {"type": "ValueError", "module": "builtins", "message": "..."}}``,
so any NATS client can call a minga service and read the answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic_core

from minga.errors import PayloadError, RemoteError

__all__ = [
    "ErrorAllowList",
    "decode",
    "encode",
    "error_reply",
    "parse_reply",
    "result_reply",
]


def encode(value: Any) -> bytes:
    """``value`` as compact JSON bytes; pydantic models, dataclasses, datetimes... become JSON values.

    Raises :class:`PayloadError` when the value has no JSON form.
    """
    try:
        return pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise PayloadError(f"cannot send {type(value).__name__} as JSON: {exc}") from None


def decode(data: bytes) -> Any:
    """The JSON value in ``data``; an empty body is ``None``. Raises :class:`PayloadError` on bad JSON."""
    if not data:
        return None
    try:
        return pydantic_core.from_json(data)  # several times faster than json.loads on small bodies
    except ValueError as exc:
        raise PayloadError(f"payload is not valid JSON: {exc}") from None


def result_reply(value: Any) -> bytes:
    """The reply body for a handler that returned ``value``."""
    return b'{"result":' + encode(value) + b"}"


def error_reply(exc: BaseException) -> bytes:
    """The reply body for a handler that raised ``exc``: its type, module and message, no traceback."""
    cls = type(exc)
    body: dict[str, Any] = {"type": cls.__qualname__, "module": cls.__module__, "message": str(exc)}
    if isinstance(exc, PayloadError) and exc.errors:
        body["errors"] = exc.errors
    return json.dumps({"error": body}).encode()


class ErrorAllowList:
    """Exception types that are rebuilt on the caller when a remote handler raises them.

    Anything else arrives as :class:`RemoteError`. A type is matched by module and
    qualified name, and rebuilt as ``cls(message)``; one that cannot be built from a
    message alone also arrives as :class:`RemoteError`.
    """

    def __init__(self, types: Iterable[type[BaseException]] = ()) -> None:
        self._types: dict[tuple[str, str], type[BaseException]] = {}
        kinds: list[type[BaseException]] = [PayloadError, *types]
        for kind in kinds:
            self._types[(kind.__module__, kind.__qualname__)] = kind

    def __contains__(self, cls: object) -> bool:
        return isinstance(cls, type) and (cls.__module__, cls.__qualname__) in self._types

    def rebuild(self, error: Mapping[str, Any]) -> BaseException:
        """The exception a caller raises for the ``error`` part of a reply."""
        type_name = str(error.get("type", "Exception"))
        module = str(error.get("module", ""))
        message = str(error.get("message", ""))
        cls = self._types.get((module, type_name))
        if cls is not None:
            try:
                rebuilt = cls(message)
            except Exception:  # a constructor that wants more than a message: fall through
                pass
            else:
                if isinstance(rebuilt, PayloadError):
                    rebuilt.errors = [dict(e) for e in error.get("errors", [])]
                return rebuilt
        return RemoteError(type_name, message)


def parse_reply(data: bytes, allowed: ErrorAllowList) -> Any:
    """The result carried by a reply body; raises what the remote side raised (see :class:`ErrorAllowList`)."""
    body = decode(data)
    if not isinstance(body, dict) or not ("result" in body or "error" in body):
        raise PayloadError(f"reply is not a minga envelope: {data[:200]!r}")
    if "error" in body:
        error = body["error"]
        raise allowed.rebuild(error if isinstance(error, dict) else {"message": str(error)})
    return body["result"]
