"""The registry as an attacker tries it: registering an impostor to take the gateway's traffic,
marking the real replicas critical, and records built to break what reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from security_harness import Plane

from minga.discovery import EmbeddedStore, Instance, Registry, ReplicaRegistrar, serve_registry
from minga.errors import DiscoveryError
from minga.gateway import Endpoint, render_haproxy
from minga.security import read_audit
from minga.spec import GatewaySpec

pytestmark = [pytest.mark.slow]

INSTANCES = "/v1/discovery/instances"


def record(instance_id: str, service: str = "web", host: str = "127.0.0.1", **ports: int) -> dict[str, Any]:
    return {"instance": {"id": instance_id, "service": service, "host": host, "ports": ports}, "ttl": 5}


async def test_an_impostor_cannot_register_without_a_credential(plane: Plane) -> None:
    status, body = await plane.call("PUT", f"{INSTANCES}/web-evil", json=record("web-evil", http=9999))
    assert status == 401 and body["error"].startswith("authentication required")
    status, body = await plane.call("PUT", f"{INSTANCES}/web-1/health", json={"health": "critical"})
    assert status == 401
    records = read_audit(plane.home)
    assert [r.what for r in records[-2:]] == [f"PUT {INSTANCES}/web-evil", f"PUT {INSTANCES}/web-1/health"]
    status, body = await plane.call("GET", f"{INSTANCES}/web-1", headers=plane.auth(plane.creds.read))
    assert status == 200 and body["health"] == "passing"


async def test_a_replica_writes_only_its_own_record_at_its_own_address(plane: Plane) -> None:
    assert plane.cp.supervisor is not None
    port = plane.cp.supervisor.ports("web-1")["http"]
    token = plane.auth(plane.creds.replica_token("web", "web-1"))
    attempts = [
        ("PUT", f"{INSTANCES}/web-evil", record("web-evil", http=port), "may only write its own instance, not 'web-evil'"),
        ("PUT", f"{INSTANCES}/web-1", record("web-1", http=9999), f"may only register the ports it was given ({port})"),
        ("PUT", f"{INSTANCES}/web-1", record("web-1", host="10.9.8.7", http=port), "may only register its own address"),
        ("PUT", f"{INSTANCES}/web-1", record("web-1", service="orders", http=port), "may only register as service 'web'"),
        ("PUT", f"{INSTANCES}/web-1/health", {"health": "critical"}, "health comes from the control plane's checks"),
        ("DELETE", f"{INSTANCES}/web-2", None, "may only write its own instance, not 'web-2'"),
        ("POST", f"{INSTANCES}/web-2/renew", None, "may only write its own instance"),
        ("GET", "/api/status", None, "a replica's credential only reaches the registry"),
    ]
    for method, path, body, why in attempts:
        status, answer = await plane.call(method, path, json=body, headers=token)
        assert status == 403, (method, path, answer)
        assert why in answer["error"], (why, answer)
        last = read_audit(plane.home)[-1]
        assert last.who == "replica:web/web-1" and why in last.why and last.what == f"{method} {path}"
    # its own record, at its own address and port: registered, renewed, deregistered
    status, answer = await plane.call("PUT", f"{INSTANCES}/web-1", json=record("web-1", http=port), headers=token)
    assert status == 200, answer
    assert (await plane.call("POST", f"{INSTANCES}/web-1/renew", headers=token))[0] == 200
    assert (await plane.call("DELETE", f"{INSTANCES}/web-1", headers=token))[0] == 200
    assert (await plane.call("GET", f"{INSTANCES}?service=web", headers=token))[0] == 200  # it may read


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_text()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


async def test_the_supervisor_hands_each_replica_its_own_credential(plane: Plane) -> None:
    assert plane.cp.supervisor is not None
    pid = plane.cp.supervisor.machine.instances["web-1"].pid
    assert pid is not None
    environ = _environ(pid)
    assert environ["MINGA_TOKEN"] == plane.creds.replica_token("web", "web-1")
    who = plane.creds.identify(environ["MINGA_TOKEN"])
    assert who is not None and (who.service, who.instance) == ("web", "web-1")
    assert plane.creds.admin not in environ.values() and plane.creds.read not in environ.values()


BAD_BODIES: list[tuple[str, str]] = [
    (json.dumps(record("x-1", host="127.0.0.1\n    http-request return status 200", http=80)), "instance.host"),
    (json.dumps(record("x-1", http=-5)), "instance.ports.http"),
    (json.dumps(record("x-1", http=70000)), "instance.ports.http"),
    (json.dumps({**record("x-1", http=80), "ttl": 1e12}), "ttl: expected seconds from 0.5 to 3600"),
    ('{"instance": {"id": "x-1", "service": "x", "ports": {"http": 80}}, "ttl": NaN}', "NaN is not a JSON number"),
    ('{"instance": {"id": "x-1", "service": "x", "ports": {"http": 80}}, "ttl": Infinity}', "Infinity is not a JSON number"),
    (json.dumps({"instance": {**record("x-1", http=80)["instance"], "metadata": {"blob": "x" * 100_000}}}), "metadata is"),
    ("[" * 2000 + "]" * 2000, "the JSON nests deeper than 32 levels"),
    ('{"a":' * 100 + "1" + "}" * 100, "the JSON nests deeper than 32 levels"),
]


@pytest.mark.parametrize(("body", "why"), BAD_BODIES, ids=[w[:24] for _, w in BAD_BODIES])
async def test_registry_input_is_bounded(body: str, why: str) -> None:
    async with (
        Registry(EmbeddedStore()) as registry,
        serve_registry(registry) as url,
        aiohttp.ClientSession() as http,
    ):
        headers = {"Content-Type": "application/json"}
        async with http.put(f"{url}{INSTANCES}/x-1", data=body, headers=headers) as resp:
            assert resp.status == 400, await resp.text()
            assert why in (await resp.json())["error"]
        good = record("x-1", service="x", http=80)
        async with http.put(f"{url}{INSTANCES}/x-1", json=good) as resp:
            assert resp.status == 200, await resp.text()


def test_the_haproxy_renderer_leaves_out_a_host_that_would_add_lines() -> None:
    spec = GatewaySpec.model_validate({"routes": [{"path": "/api/web", "service": "web"}]})
    evil = Endpoint("web-9", "127.0.0.1:1\n    http-request return status 200", 80)
    text = render_haproxy(spec, {"web": [Endpoint("web-1", "127.0.0.1", 8001), evil]})
    assert "server web-1 127.0.0.1:8001" in text
    assert "http-request return" not in text and "web-9" not in text


def test_instance_hosts_are_addresses_or_host_names() -> None:
    for host in ("127.0.0.1", "::1", "orders.internal", "node-7.example.com"):
        assert Instance(id="a-1", service="a", host=host).host == host
    for host in ("", "a b", "evil\nexample", "x" * 300, "-bad.example", "a..b"):
        with pytest.raises(ValueError, match="host"):
            Instance(id="a-1", service="a", host=host)


async def test_scrape_targets_leave_out_link_local_addresses(plane: Plane) -> None:
    registry = plane.cp.registry
    assert registry is not None
    await registry.register(Instance(id="meta-1", service="meta", host="169.254.169.254", ports={"metrics": 80}))
    await registry.register(Instance(id="near-1", service="near", host="127.0.0.1", ports={"metrics": 81}))
    urls = [t.url for t in await plane.cp._scrape_targets()]
    assert "http://127.0.0.1:81/metrics" in urls and not any("169.254" in u for u in urls)
    plane.cp.scrape_allow = ("169.254.0.0/16",)  # what monitor.scrape_allow configures
    urls = [t.url for t in await plane.cp._scrape_targets()]
    assert "http://169.254.169.254:80/metrics" in urls


async def test_a_record_refused_for_its_content_is_audited(plane: Plane) -> None:
    admin = plane.auth(plane.creds.admin)
    injected = record("web-7", host="127.0.0.1\n    http-request return status 200", http=80)
    status, body = await plane.call("PUT", f"{INSTANCES}/web-7", json=injected, headers=admin)
    assert status == 400 and body["error"].startswith("instance.host: Value error, a host must be")
    status, body = await plane.call("PUT", f"{INSTANCES}/web-7", data="[" * 2000 + "]" * 2000, headers=admin)
    assert status == 400 and body["error"] == "the JSON nests deeper than 32 levels"
    records = read_audit(plane.home)[-2:]
    assert [(r.area, r.who, r.what) for r in records] == [("registry", "admin", f"PUT {INSTANCES}/web-7")] * 2
    assert records[0].why.startswith("instance.host:") and records[1].why == body["error"]


async def test_the_sdk_registers_a_replica_with_the_credential_it_was_given(plane: Plane) -> None:
    assert plane.cp.supervisor is not None
    port = plane.cp.supervisor.ports("web-1")["http"]
    env = {"MINGA_TOKEN": plane.creds.replica_token("web", "web-1"), "MINGA_DISCOVERY_TTL": "5"}
    registrar = ReplicaRegistrar(f"{plane.url}/v1/discovery", env)
    await registrar.register(_Info("web-1", "web", port))  # what `python -m minga.service` does
    try:
        found = await plane.cp.registry.get("web-1")  # type: ignore[union-attr]
        assert found is not None and found.ports == {"http": port} and found.metadata.get("registered_by") is None
    finally:
        await registrar.deregister()
    impostor = ReplicaRegistrar(f"{plane.url}/v1/discovery", env)
    with pytest.raises(DiscoveryError, match="403 replica:web/web-1 may only write its own instance, not 'web-2'"):
        await impostor.register(_Info("web-2", "web", port))
    await impostor.deregister()


@dataclass
class _Info:
    id: str
    service: str
    port: int
    version: str = ""
    host: str = "127.0.0.1"
    started_at: float = 0.0

    @property
    def ports(self) -> dict[str, int]:
        return {"http": self.port}
