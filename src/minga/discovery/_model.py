"""The records the registry keeps and the events its watchers see. JSON on the wire."""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from minga.security import check_host

MAX_METADATA_BYTES = 4096
"""How much metadata (keys and values, UTF-8) one instance may carry."""

Port = Annotated[int, Field(ge=1, le=65535)]
PortName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
Label = Annotated[str, Field(max_length=200)]


class Health(enum.StrEnum):
    """An instance's health, as Consul names it: pickers use passing ones, warning ones only when no
    instance is passing, critical ones never."""

    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"


class Instance(BaseModel):
    """One replica of a service, as registered.

    ``ports`` maps port names to numbers (``http``, ``metrics``...); ``started_at`` is Unix
    seconds; ``output`` is the last health check's output or the reason health changed;
    ``restarts`` counts how often the supervisor restarted this replica.

    Input is bounded, since a record crosses a trust boundary and reaches rendered configs:
    ``host`` is an IP address or a host name, ports 1-65535, metadata at most
    :data:`MAX_METADATA_BYTES`, at most 32 ports and 32 tags, no control characters anywhere.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    service: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = Field(default="", max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")
    host: str = Field(default="127.0.0.1", max_length=253)
    ports: dict[PortName, Port] = Field(default_factory=dict, max_length=32)
    tags: list[Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f,]*$")]] = Field(
        default_factory=list, max_length=32
    )
    metadata: dict[Label, str] = Field(default_factory=dict)
    started_at: float = Field(default_factory=time.time, allow_inf_nan=False)
    health: Health = Health.PASSING
    output: str = Field(default="", max_length=4096)
    restarts: int = Field(default=0, ge=0)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes, more than the {MAX_METADATA_BYTES} allowed")
        for key, item in value.items():
            if any(ord(c) < 32 or ord(c) == 127 for c in key + item):
                raise ValueError(f"metadata {key[:40]!r} holds a control character")
        return value

    @property
    def address(self) -> str | None:
        """``host:port`` of the ``http`` port, or of the only port; ``None`` without ports."""
        port = self.ports.get("http")
        if port is None and len(self.ports) == 1:
            port = next(iter(self.ports.values()))
        return None if port is None else f"{self.host}:{port}"

    def with_health(self, health: Health, output: str = "") -> Instance:
        """A copy with ``health`` and ``output`` changed."""
        return self.model_copy(update={"health": health, "output": output})


def new_instance_id(service: str) -> str:
    """A fresh instance id, ``service-<12 hex digits>``."""
    return f"{service}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A change seen by a watcher: ``put`` (registered or changed) or ``delete`` (gone).

    For ``delete``, ``instance`` is the last record known. ``revision`` grows with every change
    in the store.
    """

    kind: Literal["put", "delete"]
    instance: Instance
    revision: int

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "instance": self.instance.model_dump(mode="json"),
            "revision": self.revision,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WatchEvent:
        kind = data.get("kind")
        if kind not in ("put", "delete"):
            raise ValueError(f"unknown watch event kind {kind!r}")
        revision = data.get("revision", 0)
        return cls(kind, Instance.model_validate(data["instance"]), int(revision))  # type: ignore[call-overload]
