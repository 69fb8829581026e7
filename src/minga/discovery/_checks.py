"""Active health checks: one HTTP GET or TCP connect against an instance, as the control plane runs them."""

from __future__ import annotations

import asyncio

import aiohttp

from minga.discovery._model import Health, Instance
from minga.spec import HealthCheckSpec


async def check_once(
    instance: Instance, spec: HealthCheckSpec, session: aiohttp.ClientSession
) -> tuple[Health, str]:
    """Run ``spec`` once against ``instance``: (health, output). Never raises.

    HTTP: a 2xx answer is passing, 429 is warning, anything else (or no answer within
    ``spec.timeout`` seconds) is critical. TCP: a connection accepted in time is passing.
    """
    port = instance.ports.get(spec.port)
    if port is None:
        return Health.CRITICAL, f"the instance has no port named {spec.port!r}"
    try:
        async with asyncio.timeout(spec.timeout):
            if spec.http is not None:
                url = f"http://{instance.host}:{port}{spec.http}"
                async with session.get(url, allow_redirects=False) as resp:
                    await resp.read()
                    status = resp.status
                if 200 <= status < 300:
                    return Health.PASSING, f"GET {spec.http}: {status}"
                if status == 429:
                    return Health.WARNING, f"GET {spec.http}: {status}"
                return Health.CRITICAL, f"GET {spec.http}: {status}"
            _, writer = await asyncio.open_connection(instance.host, port)
            writer.close()
            await writer.wait_closed()
            return Health.PASSING, f"TCP {instance.host}:{port}: connected"
    except TimeoutError:
        return Health.CRITICAL, f"no answer within {spec.timeout:g}s"
    except (OSError, aiohttp.ClientError) as exc:
        return Health.CRITICAL, f"{type(exc).__name__}: {exc}"
