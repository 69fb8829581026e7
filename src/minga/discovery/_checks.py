"""Active health checks: one HTTP GET or TCP connect against an instance, as the control plane runs them.

A check proves who answered, not merely that something listens on the port: a minga replica's
``GET /healthz`` names its instance id and its pid, and an answer naming another instance (or
another process) is critical. That is what a replica whose port was already taken by someone
else's process looks like.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiohttp

from minga.discovery._model import Health, Instance
from minga.spec import HealthCheckSpec

__all__ = ["Identity", "check_once", "probe"]


@dataclass(frozen=True)
class Identity:
    """Who must answer an HTTP check: the replica ``instance`` and, when known, its process ``pid``.

    With ``required``, an answer that does not say which instance it is fails too (a minga
    replica's ``/healthz`` always says it).
    """

    instance: str
    pid: int | None = None
    required: bool = False

    def problem(self, body: bytes) -> str | None:
        """Why ``body`` (an HTTP answer) does not come from this replica, or None when it does."""
        try:
            doc = json.loads(body) if body else None
        except (UnicodeDecodeError, ValueError):
            doc = None
        named = doc.get("instance") if isinstance(doc, dict) else None
        if named is None:
            return "the answer does not name its instance" if self.required else None
        if named != self.instance:
            return f"answered by {named}, not {self.instance} (is the port taken by another process?)"
        pid = doc.get("pid") if isinstance(doc, dict) else None
        if self.pid is not None and isinstance(pid, int) and pid != self.pid:
            return f"answered by pid {pid}, not {self.pid} (is the port taken by another process?)"
        return None


async def probe(
    host: str,
    port: int,
    *,
    http: str | None,
    wait: float,
    session: aiohttp.ClientSession,
    identity: Identity | None = None,
) -> tuple[Health, str]:
    """GET ``http`` (a path) on ``host:port``, or connect over TCP when ``http`` is None: (health, output).

    HTTP: a 2xx answer from the expected ``identity`` is passing, 429 is warning, anything else
    (or no answer within ``wait`` seconds) is critical. TCP: a connection accepted in time is
    passing. Never raises.
    """
    try:
        async with asyncio.timeout(wait):
            if http is not None:
                url = f"http://{host}:{port}{http}"
                async with session.get(url, allow_redirects=False) as resp:
                    body = await resp.read()
                    status = resp.status
                problem = identity.problem(body) if identity is not None else None
                if problem is not None:
                    return Health.CRITICAL, f"GET {http}: {status}, {problem}"
                if 200 <= status < 300:
                    return Health.PASSING, f"GET {http}: {status}"
                if status == 429:
                    return Health.WARNING, f"GET {http}: {status}"
                return Health.CRITICAL, f"GET {http}: {status}"
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            await writer.wait_closed()
            return Health.PASSING, f"TCP {host}:{port}: connected"
    except TimeoutError:
        return Health.CRITICAL, f"no answer within {wait:g}s"
    except (OSError, aiohttp.ClientError) as exc:
        return Health.CRITICAL, f"{type(exc).__name__}: {exc}"


async def check_once(
    instance: Instance, spec: HealthCheckSpec, session: aiohttp.ClientSession
) -> tuple[Health, str]:
    """Run ``spec`` once against ``instance``: (health, output). Never raises.

    See :func:`probe`; an HTTP answer that names another instance id, or another pid than the
    one the record's metadata carries, is critical. (A record the supervisor made for a
    ``command:`` replica carries the pid of the command, which may run the server as a child: its
    pid is not compared.)
    """
    port = instance.ports.get(spec.port)
    if port is None:
        return Health.CRITICAL, f"the instance has no port named {spec.port!r}"
    by_supervisor = instance.metadata.get("registered_by") == "supervisor"
    pid = "" if by_supervisor else instance.metadata.get("pid", "")
    identity = Identity(instance.id, int(pid) if pid.isdigit() else None)
    return await probe(
        instance.host, port, http=spec.http, wait=spec.timeout, session=session, identity=identity
    )
