"""haproxy.cfg rendered from the registry, checked and run by the real haproxy (Debian package)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from minga.discovery import DiscoveryClient, EmbeddedStore, Instance, Registry, serve_registry
from minga.errors import UsageError
from minga.gateway import DiscoverySource, Endpoint, Haproxy, follow_registry, render_haproxy
from minga.spec import GatewaySpec, RouteSpec
from support import ServerProcess, free_port, python_module, wait_for_port

pytestmark = pytest.mark.engine

SPEC = GatewaySpec(
    port=0,
    routes=[
        RouteSpec(path="/api/shop", service="shop", strip_prefix=True),
        RouteSpec(path="/", service="web", host="www.example"),
    ],
)


def test_render_turns_routes_into_acls_backends_and_servers(tmp_path: Path) -> None:
    text = render_haproxy(
        SPEC,
        {"shop": [Endpoint("shop-2", "127.0.0.1", 8002), Endpoint("shop-1", "127.0.0.1", 8001)]},
        port=9000,
    )
    assert "    bind 127.0.0.1:9000" in text
    assert "    acl route_0 path /api/shop\n    acl route_0 path_beg /api/shop/" in text
    assert (
        "    http-request set-var(txn.route) int(1) if route_1 route_1_host !{ var(txn.route) -m found }"
        in text
    )
    assert "    http-request replace-path ^/api/shop/?(.*)$ /\\1 if { var(txn.route) -m int 0 }" in text
    assert "    use_backend svc_web if { var(txn.route) -m int 1 }" in text
    assert text.index("use_backend svc_shop") < text.index("use_backend svc_web"), "longest prefix first"
    assert "server shop-1 127.0.0.1:8001 check" in text
    assert text.index("shop-1 ") < text.index("shop-2 "), "servers in a stable order"
    assert "backend svc_web\n    balance random(2)\n    option httpchk GET /healthz\n" in text
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    Haproxy(cfg).check()  # the real haproxy accepts it


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as r:
        return r.status, (await r.json())["replica"] if r.status == 200 else ""


async def test_haproxy_follows_the_registry_and_reloads_without_failing_requests(
    tmp_path: Path, replicas: Callable[..., list[ServerProcess]]
) -> None:
    a, b, c = replicas("a", "b", "c")
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    runner = Haproxy(cfg, log=tmp_path / "haproxy.log")
    async with (
        Registry(EmbeddedStore()) as registry,
        DiscoveryClient(registry.store, close_store=False) as client,
        aiohttp.ClientSession() as http,
    ):
        for name, proc in (("a", a), ("b", b)):
            await registry.register(
                Instance(id=f"shop-{name}", service="shop", ports={"http": proc.port}), ttl=None
            )
        await client.cache.wait_for(lambda cache: len(cache.candidates("shop")) == 2)
        follower = asyncio.create_task(
            follow_registry(SPEC, DiscoverySource(client.cache), cfg, haproxy=runner, port=port)
        )
        try:
            await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 10.0)
            url = f"http://127.0.0.1:{port}/api/shop/hello"
            seen = {(await _get(http, url))[1] for _ in range(20)}
            assert seen == {"a", "b"}
            # c joins and a leaves while requests keep flowing through the reload
            statuses: list[int] = []
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    statuses.append((await _get(http, url))[0])

            loader = asyncio.create_task(load())
            await registry.register(Instance(id="shop-c", service="shop", ports={"http": c.port}), ttl=None)
            await registry.deregister("shop-a")
            seen = set()
            async with asyncio.timeout(10):
                while seen != {"b", "c"}:
                    seen = {(await _get(http, url))[1] for _ in range(20)}
            stop.set()
            await loader
            assert "shop-c" in cfg.read_text() and "shop-a" not in cfg.read_text()
            assert statuses and set(statuses) == {200}, "the graceful reload dropped no request"
        finally:
            follower.cancel()
            await runner.stop()


async def test_cli_renders_from_a_control_plane_url(
    tmp_path: Path, replicas: Callable[..., list[ServerProcess]]
) -> None:
    (a,) = replicas("a")
    spec = tmp_path / "minga.yaml"
    spec.write_text(
        "services:\n  shop: {command: [python, app.py], ports: [http]}\n"
        "gateway:\n  listen: 127.0.0.1:18080\n  routes: [{path: /api/shop, service: shop, strip_prefix: true}]\n"
    )
    async with Registry(EmbeddedStore()) as registry:
        await registry.register(Instance(id="shop-1", service="shop", ports={"http": a.port}), ttl=None)
        async with serve_registry(registry) as url:
            out = tmp_path / "out.cfg"
            argv = _gateway_cli("render", "haproxy", "-o", str(out), spec=spec, url=url)
            result = await asyncio.to_thread(
                subprocess.run, argv, capture_output=True, timeout=60, check=False
            )
            assert result.returncode == 0, result.stderr.decode()
            text = out.read_text()
            assert f"server shop-1 127.0.0.1:{a.port} check" in text and "bind 127.0.0.1:18080" in text
            Haproxy(out).check()  # every file the command writes is one haproxy accepts
            await _serve_through_the_cli(tmp_path, spec, url)
            await _watch_and_run_through_the_cli(tmp_path, spec, url, registry, a.port)


SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "minga.yaml"


async def test_cli_refuses_port_0_naming_listen_and_renders_with_it(tmp_path: Path) -> None:
    """examples/shop's gateway listens on port 0, which haproxy cannot bind: the command says to pass
    --listen, and with it writes a file the real haproxy accepts."""
    async with Registry(EmbeddedStore()) as registry, serve_registry(registry) as url:
        await registry.register(Instance(id="orders-1", service="orders", ports={"http": 8001}), ttl=None)
        out = tmp_path / "haproxy.cfg"
        argv = _gateway_cli("render", "haproxy", "-o", str(out), spec=SHOP, url=url)
        refused = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert "--listen" in refused.stderr and "port 0" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and not out.exists()

        port = free_port()
        argv = _gateway_cli(
            "render", "haproxy", "-o", str(out), "--listen", f"127.0.0.1:{port}", spec=SHOP, url=url
        )
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        text = out.read_text()
        assert f"bind 127.0.0.1:{port}\n" in text and "server orders-1 127.0.0.1:8001 check" in text
        Haproxy(out).check()


def _gateway_cli(*args: str, spec: Path, url: str) -> list[str]:
    """``minga gateway ARGS -f SPEC --discovery URL`` in a fresh interpreter."""
    return python_module("minga", ["gateway", *args, "-f", str(spec), "--discovery", url])


async def _serve_through_the_cli(tmp_path: Path, spec: Path, url: str) -> None:
    """`minga gateway serve` on the same registry answers through the gateway and logs JSON lines."""
    port = free_port()
    log = tmp_path / "serve.log"
    argv = _gateway_cli("serve", "--listen", f"127.0.0.1:{port}", "--access-log", spec=spec, url=url)
    server = ServerProcess(argv, port, log=log)
    await asyncio.to_thread(server.start, 30.0)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/api/shop/hello") as r:
            assert r.status == 200 and (await r.json()) == {"replica": "a"}
    finally:
        await asyncio.to_thread(server.stop)
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and '"path":"/api/shop/hello"' in lines[-1] and '"status":200' in lines[-1]


def test_the_haproxy_binary_is_there() -> None:
    assert shutil.which("haproxy"), "`make test` installs haproxy (Debian package haproxy)"


async def _watch_and_run_through_the_cli(
    tmp_path: Path, spec: Path, url: str, registry: Registry, port: int
) -> None:
    """`render haproxy --watch --run` runs haproxy, re-renders on a registry change, and stops it on SIGTERM."""
    cfg = tmp_path / "watched.cfg"
    listen = free_port()
    argv = _gateway_cli(
        "render",
        "haproxy",
        "-o",
        str(cfg),
        "--listen",
        f"127.0.0.1:{listen}",
        "--watch",
        "--run",
        spec=spec,
        url=url,
    )
    cli = ServerProcess(argv, listen, log=tmp_path / "watch.log")
    await asyncio.to_thread(cli.start, 30.0)
    try:
        async with aiohttp.ClientSession() as http:
            assert (await _get(http, f"http://127.0.0.1:{listen}/api/shop/hello")) == (200, "a")
        await registry.register(Instance(id="shop-2", service="shop", ports={"http": port}), ttl=None)
        async with asyncio.timeout(10), aiohttp.ClientSession() as http:
            # the new server is in the file, then in the reloaded haproxy's answers (both replicas are `a`)
            while "shop-2" not in cfg.read_text():  # noqa: ASYNC110 - another process writes it: no event to await
                await asyncio.sleep(0.05)
            assert (await _get(http, f"http://127.0.0.1:{listen}/api/shop/hello")) == (200, "a")
    finally:
        await asyncio.to_thread(cli.stop)
    assert cli.proc is not None and cli.proc.returncode == 0
    with pytest.raises(OSError):  # haproxy went away with the command
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", listen), 2)


def test_a_route_with_auth_is_not_rendered_unprotected() -> None:
    route = RouteSpec.model_validate(
        {"path": "/api", "service": "web", "auth": {"api_keys": {"ci": "0" * 64}}}
    )
    spec = GatewaySpec(port=8080, routes=[route])
    with pytest.raises(
        UsageError, match=r"the route /api has auth:, which a rendered haproxy\.cfg cannot enforce"
    ):
        render_haproxy(spec, {"web": [Endpoint("web-1", "127.0.0.1", 9000)]})
