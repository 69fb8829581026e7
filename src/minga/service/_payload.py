"""Typed payloads: validate what arrives on the wire against a handler's annotations.

Pure functions over pydantic: bytes have already been decoded to JSON values by the
bus; this turns them into the keyword arguments a method is called with, or raises
:class:`~minga.errors.PayloadError` saying, field by field, what is wrong.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter

from minga.errors import PayloadError, UsageError

__all__ = ["Signature"]


def _errors(exc: pydantic.ValidationError, prefix: str = "") -> PayloadError:
    errors = [
        {"loc": ".".join(str(p) for p in (prefix, *e["loc"]) if p != "") or "payload", "msg": e["msg"]}
        for e in exc.errors(include_url=False)
    ]
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
    return PayloadError(f"invalid payload: {summary}", errors)


@dataclass(frozen=True)
class Signature:
    """The payload parameters of one handler method (``self`` excluded), with resolved annotations.

    ``special`` maps parameter names to types that are injected rather than read from the
    payload (an aiohttp request, for instance).
    """

    name: str
    params: tuple[inspect.Parameter, ...]
    hints: Mapping[str, Any]
    model: type[BaseModel]
    adapter: TypeAdapter[Any] | None  # the one parameter's type, when there is exactly one

    @classmethod
    def of(cls, func: Callable[..., Any], *, skip: tuple[type, ...] = ()) -> Signature:
        """Read ``func``'s signature; UsageError for ``*args`` / ``**kwargs`` or unresolvable annotations."""
        qualname = getattr(func, "__qualname__", repr(func))
        try:
            hints = typing.get_type_hints(func)
        except NameError as exc:
            raise UsageError(
                f"{qualname}: cannot resolve an annotation ({exc}); define the type at module level"
            ) from None
        params = list(inspect.signature(func).parameters.values())[1:]  # without self
        kept = []
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise UsageError(f"{qualname}: entrypoints take named parameters, not *{p.name}")
            if skip and isinstance(hints.get(p.name), type) and issubclass(hints[p.name], skip):
                continue
            kept.append(p)
        fields: dict[str, Any] = {
            p.name: (hints.get(p.name, Any), ... if p.default is p.empty else p.default) for p in kept
        }
        model = pydantic.create_model(
            f"{qualname}.payload",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        adapter = TypeAdapter(hints.get(kept[0].name, Any)) if len(kept) == 1 else None
        return cls(qualname, tuple(kept), hints, model, adapter)

    def kwargs(self, payload: Any) -> dict[str, Any]:
        """Keyword arguments from a JSON object payload (``None`` is ``{}``); PayloadError when invalid."""
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise PayloadError(
                f"invalid payload: expected a JSON object of {self._names()}, got {type(payload).__name__}"
            )
        try:
            # the model's validator itself: model_validate adds a Python call around it on every payload
            validated = self.model.__pydantic_validator__.validate_python(payload)
        except pydantic.ValidationError as exc:
            raise _errors(exc) from None
        # the model's fields are exactly the parameters; the fresh instance is dropped, so its dict is ours
        fields: dict[str, Any] = validated.__dict__
        return fields

    def value(self, payload: Any) -> dict[str, Any]:
        """Keyword arguments from an event or job payload.

        With one parameter the whole payload is that parameter's value; with several, the
        payload is a JSON object of them; with none, the payload is ignored.
        """
        if not self.params:
            return {}
        if len(self.params) > 1:
            return self.kwargs(payload)
        (param,) = self.params
        if payload is None and param.default is not param.empty:
            return {}
        assert self.adapter is not None
        try:
            value = self.adapter.validate_python(payload)
        except pydantic.ValidationError as exc:
            raise _errors(exc, param.name) from None
        return {param.name: value}

    def _names(self) -> str:
        return "{" + ", ".join(p.name for p in self.params) + "}"
