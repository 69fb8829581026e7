"""The records the registry keeps and the events its watchers see. JSON on the wire."""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    service: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = ""
    host: str = "127.0.0.1"
    ports: dict[str, int] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    started_at: float = Field(default_factory=time.time)
    health: Health = Health.PASSING
    output: str = ""
    restarts: int = Field(default=0, ge=0)

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
